import { ConsoleLogger, Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { BrokerUnavailableError } from '../src/index.js';
import { RedisBroker, type RedisBrokerOptions } from '../src/redis.js';
import { Redis } from 'ioredis';
import { presenceKeyExpiryOnlyGrows } from './support/presence-expiry.js';
import { until } from './support/until.js';
import { brokerContract } from '../src/testing/index.js';
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
    await a.broker.subscribe('r:x');
    await b.broker.subscribe('r:x');
    await a.broker.addPresence('room', 'alice');
    await a.broker.addPresence('room', 'gone');
    await b.broker.addPresence('room', 'bob');
    await a.broker.publish('r:x', 'before');
    await until(() => b.received.length === 1 && a.received.length === 1, 'the first payload');

    await redis.kill();
    await until(() => a.broker.health().status === 'degraded' && b.broker.health().status === 'degraded', 'degraded health');
    assert.match(a.broker.health().detail ?? '', /./);
    const outcomes: string[] = [];
    const publishes = Array.from({ length: 8 }, (_, i) =>
      a.broker.publish('r:x', `down ${i}`).then(
        () => outcomes.push(`taken ${i}`),
        (error: unknown) => outcomes.push(error instanceof BrokerUnavailableError ? `refused ${i}` : `failed ${i}: ${String(error)}`),
      ),
    );
    // Five are kept (pending until Redis takes them); the three beyond the bound are refused at once.
    await until(() => outcomes.length === 3, 'the refusals');
    assert.deepEqual(outcomes, ['refused 5', 'refused 6', 'refused 7']);
    assert.equal(a.broker.droppedPublishes, 3);
    // Nothing rejects while Redis is down; presence falls back to what this instance knows.
    await b.broker.subscribe('r:y');
    await a.broker.unsubscribe('r:nothing');
    await a.broker.removePresence('room', 'gone');
    assert.deepEqual(await a.broker.presence('room'), ['alice']);

    await redis.run();
    await until(() => a.broker.health().status === 'ok' && b.broker.health().status === 'ok', 'recovery', 10_000);
    // Redis restarted empty: presence and subscriptions came back from the instances.
    await until(async () => (await b.broker.presence('room')).sort().join() === 'alice,bob', 'restored presence');
    // a flushes what it kept only once its own subscriptions are back, so it sees all five, in order.
    await until(() => a.received.length === 6, 'the kept payloads');
    assert.deepEqual(a.received, ['before', 'down 0', 'down 1', 'down 2', 'down 3', 'down 4']);
    // Each kept publish resolved only once Redis took it.
    await Promise.all(publishes);
    assert.deepEqual(outcomes.slice(3), ['taken 0', 'taken 1', 'taken 2', 'taken 3', 'taken 4']);
    await a.broker.publish('r:x', 'after');
    await a.broker.publish('r:y', 'new channel');
    await until(() => b.received.includes('after') && b.received.includes('new channel'), 'delivery after recovery');
    // b may have re-subscribed after a flushed (pub/sub keeps nothing for absent
    // subscribers), but what it got of the kept payloads came once each, in order.
    const kept = b.received.filter((payload) => payload.startsWith('down'));
    assert.deepEqual(kept, [...new Set(kept)]);
    assert.deepEqual(kept, [...kept].sort());
  });

  it('does not believe a connection that no longer answers: bounded, degraded, then back', async () => {
    const a = await started(redis.url, { maxPendingPublishes: 20, commandTimeoutMs: 300, healthCheckMs: 100 });
    await a.broker.subscribe('r:s');
    redis.pause();
    try {
      const refused: unknown[] = [];
      const taken: string[] = [];
      for (let i = 0; i < 500; i++) {
        a.broker.publish('r:s', `stalled ${i}`).then(
          () => taken.push(`stalled ${i}`),
          (error: unknown) => refused.push(error),
        );
      }
      // Beyond the 20 in flight, every publish is refused at once, and said so.
      await until(() => refused.length === 480, 'the refusals', 1000);
      assert.ok(refused.every((error) => error instanceof BrokerUnavailableError));
      assert.equal(a.broker.droppedPublishes, 480);
      await until(() => a.broker.health().status === 'degraded', 'degraded while stalled', 3000);
      assert.match(a.broker.health().detail ?? '', /timed out after 300 ms/);
      // The 20 in flight are not given up on: Redis may still take them.
      assert.deepEqual(taken, []);
    } finally {
      redis.resume();
    }
    await until(() => a.broker.health().status === 'ok', 'ok once Redis answers again', 5000);
    // Once it answers, the 20 sent before the stall was noticed are taken, and delivered.
    await until(() => a.received.filter((payload) => payload.startsWith('stalled')).length === 20, 'the 20 in flight', 5000);
    const payload = `after ${randomUUID()}`;
    await a.broker.publish('r:s', payload);
    await until(() => a.received.includes(payload), 'delivery after the stall');
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
      await b.broker.publish('r:z', 'hello');
      await until(() => a.received.includes('hello'), 'a subscription made while down');
    } finally {
      await later.stop();
    }
  });
});

describe('RedisBroker presence in Redis', () => {
  it("never moves a room key's expiry earlier: a shorter TTL cannot take a longer one's entries with it", async () => {
    const inspector = new Redis(redis.url);
    try {
      await presenceKeyExpiryOnlyGrows((options) => new RedisBroker({ url: redis.url, ...options }), inspector);
    } finally {
      inspector.disconnect();
    }
  });

  it('reports a command that fails inside a presence transaction instead of passing over it', async () => {
    const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    const inspector = new Redis(redis.url);
    const broker = new RedisBroker({ url: redis.url, keyPrefix });
    const warnings: string[] = [];
    Logger.overrideLogger({
      log: () => undefined,
      error: (line: string) => warnings.push(line),
      warn: (line: string) => warnings.push(line),
    });
    try {
      await broker.start('one', () => undefined);
      // Redis takes the transaction, then fails its commands one by one (WRONGTYPE): EXEC
      // answers with their errors rather than failing.
      await inspector.set(`${keyPrefix}presence:lobby`, 'not a sorted set');
      await broker.addPresence('lobby', 'alice');
      assert.deepEqual(await broker.presence('lobby'), ['alice'], 'what Redis could not answer, the instance answers from what it knows');
      assert.match(warnings.join('\n'), /presence failed: WRONGTYPE/);
    } finally {
      Logger.overrideLogger(process.env.TEST_LOGS ? new ConsoleLogger() : false);
      await broker.close();
      inspector.disconnect();
    }
  });
});
