import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Cluster } from 'ioredis';
import { RedisBroker } from '../src/redis.js';
import { brokerContract } from '../src/testing/index.js';
import { presenceKeyExpiryOnlyGrows } from './support/presence-expiry.js';
import { RedisCluster } from './support/redis-cluster.js';
import type { RedisServer } from './support/redis-server.js';
import { until } from './support/until.js';

let cluster: RedisCluster;

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

before(async () => {
  cluster = await RedisCluster.start();
});

after(async () => {
  await cluster.stop();
});

brokerContract('RedisBroker on a Redis Cluster (3 masters)', async () => {
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  return { make: () => new RedisBroker({ cluster: { nodes: cluster.startupNodes }, keyPrefix }) };
});

describe('RedisBroker presence on a Redis Cluster, on instances with different TTLs', () => {
  it("never moves a room key's expiry earlier", async () => {
    const inspector = new Cluster(cluster.startupNodes);
    try {
      await presenceKeyExpiryOnlyGrows((options) => new RedisBroker({ cluster: { nodes: cluster.startupNodes }, ...options }), inspector);
    } finally {
      inspector.disconnect();
    }
  });
});

describe('RedisBroker cluster options', () => {
  it('refuses an empty node list and an ioredis keyPrefix with a message that says what to give', () => {
    assert.throws(() => new RedisBroker({ cluster: { nodes: [] } }), /cluster\.nodes must list at least one node/);
    assert.throws(
      () => new RedisBroker({ cluster: { nodes: [{ host: '127.0.0.1', port: 1 }], options: { keyPrefix: 'x:' } } }),
      /use the broker keyPrefix/,
    );
    // Redis hashes the first {…} of a key that holds something: an empty one would split a room's keys across slots.
    for (const keyPrefix of ['rt{}:', '{}', 'a{}b{c}:']) {
      assert.throws(() => new RedisBroker({ keyPrefix }), /RedisBroker keyPrefix must not hold an empty \{\}/, keyPrefix);
    }
    assert.throws(() => new RedisBroker({ keyPrefix: 7 as never }), /RedisBroker keyPrefix must be a string, got number/);
    for (const keyPrefix of ['{myapp}:', 'a}b', 'rt{', 'x{y']) {
      assert.doesNotThrow(() => new RedisBroker({ keyPrefix, url: 'redis://127.0.0.1:1' }), keyPrefix);
    }
    assert.doesNotThrow(() => new RedisBroker({ keyPrefix: 'app:v2:', url: 'redis://127.0.0.1:1' }));
  });
});

describe('RedisBroker on a Redis Cluster that loses a shard (cluster-require-full-coverage no)', () => {
  /** Two channels whose slots are on different masters: the first on `victim`. */
  async function channelsOnTwoShards(on: RedisCluster, keyPrefix: string): Promise<{ lost: string; healthy: string; victim: RedisServer }> {
    const victim = await on.masterOf(`${keyPrefix}{room:lost}:m`);
    for (let i = 0; ; i++) {
      if ((await on.masterOf(`${keyPrefix}{room:healthy-${i}}:m`)) !== victim) {
        return { lost: 'room:lost', healthy: `room:healthy-${i}`, victim };
      }
    }
  }

  async function started(on: RedisCluster, keyPrefix: string, received: string[]): Promise<RedisBroker> {
    const broker = new RedisBroker({ cluster: { nodes: on.startupNodes }, keyPrefix, commandTimeoutMs: 300, healthCheckMs: 100 });
    await broker.start(randomUUID(), (channel, payload) => received.push(`${channel}=${payload}`));
    return broker;
  }

  /**
   * Every running node frozen (a stall): the broker degrades, `meanwhile` runs; then
   * `victim`, if any, dies, the others come back, and the broker is ok again.
   */
  async function stall(on: RedisCluster, broker: RedisBroker, meanwhile: () => Promise<void>, victim?: RedisServer): Promise<void> {
    const running = on.nodes.filter((node) => node.pid !== undefined);
    running.forEach((node) => node.pause());
    await until(() => broker.health().status === 'degraded', 'degraded by the stall');
    await meanwhile();
    if (victim) {
      await on.kill(victim);
    }
    running.filter((node) => node !== victim).forEach((node) => node.resume());
    await until(() => broker.health().status === 'ok', 'ok again with a shard down', 10_000);
  }

  it('ends a restore ok while a shard is down, and the other shards deliver', async () => {
    const on = await RedisCluster.start({ fullCoverage: false });
    try {
      const { lost, healthy, victim } = await channelsOnTwoShards(on, 'a:');
      const received: string[] = [];
      const broker = await started(on, 'a:', received);
      try {
        await broker.subscribe(healthy);
        // The restore subscribes `lost` on the dead shard: that must not fail the restore.
        await stall(on, broker, () => broker.subscribe(lost), victim);
        await broker.publish(healthy, 'after');
        await until(() => received.includes(`${healthy}=after`), 'the healthy shard to deliver');
        assert.equal(broker.health().status, 'ok');
      } finally {
        await broker.close();
      }
    } finally {
      await on.stop();
    }
  });

  it('does not deliver a room it left while degraded once the room shard is back', async () => {
    const on = await RedisCluster.start({ fullCoverage: false });
    try {
      const { lost, victim } = await channelsOnTwoShards(on, 'b:');
      const received: string[] = [];
      const broker = await started(on, 'b:', received);
      try {
        await on.kill(victim);
        await on.waitMarkedFailed(victim);
        await broker.subscribe(lost); // its shard is down: ioredis keeps the channel to subscribe it later
        await stall(on, broker, () => broker.unsubscribe(lost));
        await on.restart(victim);
        const publisher = await started(on, 'b:', []);
        try {
          await publisher.publish(lost, 'not for it');
          await publisher.subscribe(lost);
          await publisher.publish(lost, 'probe');
          await new Promise((resolve) => setTimeout(resolve, 300));
          assert.deepEqual(received, []);
        } finally {
          await publisher.close();
        }
      } finally {
        await broker.close();
      }
    } finally {
      await on.stop();
    }
  });
});
