import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { RedisBroker, type RedisBrokerOptions } from '../src/redis.js';
import { until } from './support/until.js';
import { brokerContract } from './support/broker-contract.js';
import { RedisServer } from './support/redis-server.js';

let redis: RedisServer;

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

before(async () => {
  redis = await RedisServer.start();
});

after(async () => {
  await redis.stop();
});

brokerContract('RedisBroker', async () => {
  // A key prefix per test isolates it from the others on the same server.
  const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
  return { make: () => new RedisBroker({ url: redis.url, keyPrefix }) };
});

describe('RedisBroker when Redis fails', () => {
  const brokers: RedisBroker[] = [];

  afterEach(async () => {
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
  });

  async function started(url: string, options: Partial<RedisBrokerOptions> = {}): Promise<{ broker: RedisBroker; received: string[] }> {
    const broker = new RedisBroker({ url, keyPrefix: 'fail:', ...options });
    brokers.push(broker);
    const received: string[] = [];
    await broker.start(randomUUID(), (_channel, payload) => received.push(payload));
    return { broker, received };
  }

  it('degrades without throwing, bounds what it keeps, and restores subscriptions and presence', async () => {
    const a = await started(redis.url, { maxPendingPublishes: 5 });
    const b = await started(redis.url);
    await b.broker.subscribe('r:x');
    await a.broker.addPresence('room', 'alice');
    await b.broker.addPresence('room', 'bob');
    a.broker.publish('r:x', 'before');
    await until(() => b.received.length === 1, 'the first payload');

    await redis.kill();
    await until(() => a.broker.health().status === 'degraded' && b.broker.health().status === 'degraded', 'degraded health');
    assert.match(a.broker.health().detail ?? '', /./);
    for (let i = 0; i < 8; i++) {
      a.broker.publish('r:x', `down ${i}`);
    }
    assert.equal(a.broker.droppedPublishes, 3);
    // Nothing rejects while Redis is down; presence falls back to what this instance knows.
    await b.broker.subscribe('r:y');
    await a.broker.unsubscribe('r:nothing');
    await a.broker.removePresence('room', 'nobody');
    assert.deepEqual(await a.broker.presence('room'), ['alice']);

    await redis.run();
    await until(() => a.broker.health().status === 'ok' && b.broker.health().status === 'ok', 'recovery', 10_000);
    // Redis restarted empty: presence and subscriptions came back from the instances.
    await until(async () => (await b.broker.presence('room')).sort().join() === 'alice,bob', 'restored presence');
    const seen = b.received.length;
    a.broker.publish('r:x', 'after');
    a.broker.publish('r:y', 'new channel');
    await until(() => b.received.includes('after') && b.received.includes('new channel'), 'delivery after recovery');
    // The five kept payloads were flushed on reconnection, in order; b sees those sent
    // after it had re-subscribed itself (pub/sub keeps nothing for absent subscribers).
    const kept = b.received.filter((payload) => payload.startsWith('down'));
    const expected = ['down 0', 'down 1', 'down 2', 'down 3', 'down 4'];
    assert.deepEqual(kept, expected.slice(expected.length - kept.length));
    assert.ok(seen >= 1 + kept.length);
  });

  it('starts while Redis is down, and connects once it is up', async () => {
    const later = await RedisServer.reserve();
    try {
      const a = await started(later.url);
      assert.equal(a.broker.health().status, 'degraded');
      await a.broker.subscribe('r:z');
      await later.run();
      await until(() => a.broker.health().status === 'ok', 'the first connection', 10_000);
      const b = await started(later.url);
      b.broker.publish('r:z', 'hello');
      await until(() => a.received.includes('hello'), 'a subscription made while down');
    } finally {
      await later.stop();
    }
  });
});
