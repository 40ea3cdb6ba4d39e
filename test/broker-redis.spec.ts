import { ConsoleLogger, Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { BrokerUnavailableError, type StreamPosition } from '../src/index.js';
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
    await assert.rejects(a.broker.presence('room', { strict: true }), BrokerUnavailableError);

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

  /**
   * A TCP proxy to the test's Redis. For each connection, `link` says what passes each way
   * (`up`: to Redis, `down`: back; false drops the bytes) and may act on the sockets.
   */
  async function proxyToRedis(
    link: (client: Socket, server: Socket) => { up(bytes: Buffer): boolean; down(bytes: Buffer): boolean },
  ): Promise<{ url: string; close(): void }> {
    const sockets: Socket[] = [];
    const proxy = createServer((client) => {
      const server = createConnection(redis.port, '127.0.0.1');
      sockets.push(client, server);
      const pass = link(client, server);
      client.on('data', (bytes) => pass.up(bytes) && server.write(bytes));
      server.on('data', (bytes) => pass.down(bytes) && client.write(bytes));
      for (const [one, other] of [
        [client, server],
        [server, client],
      ]) {
        one.on('error', () => undefined);
        one.on('close', () => other.destroy());
      }
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    return {
      url: `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      close: () => {
        sockets.forEach((socket) => socket.destroy());
        proxy.close();
      },
    };
  }

  it('never sends a publish twice when the connection drops after Redis ran it but before its answer came', async () => {
    // Cuts the connection right after Redis answered the marked publish: the answer is lost with it.
    let cut = false;
    const proxy = await proxyToRedis((client, server) => {
      let marked = false;
      return {
        up: (bytes) => ((marked ||= !cut && bytes.includes('only-once')), true),
        down: () => {
          if (marked && !cut) {
            cut = true;
            client.destroy();
            server.destroy();
            return false;
          }
          return true;
        },
      };
    });
    try {
      const keyPrefix = `once${randomUUID().slice(0, 8)}:`;
      const { broker } = await started(proxy.url, { keyPrefix });
      const policy = { size: 10, ttlMs: 60_000 };
      const outcome = await broker.publish('r:once', 'only-once', policy).then(
        (position) => `taken at ${position?.offset}`,
        (error: unknown) => (error instanceof BrokerUnavailableError ? 'refused' : `failed: ${String(error)}`),
      );
      assert.ok(cut, 'the proxy cut the connection');
      assert.equal(outcome, 'refused', 'the sender is told it may not have been taken');
      await until(() => broker.health().status === 'ok', 'reconnected', 10_000);
      await new Promise((resolve) => setTimeout(resolve, 200)); // a resent command would have run by now
      const page = await broker.history('r:once', undefined, policy);
      assert.equal(page.position.offset, 1, 'the publish ran once: one offset taken');
    } finally {
      proxy.close();
    }
  });

  it('reconnects a subscriber connection that no longer answers while Redis does (a middlebox dropped it silently)', async () => {
    // Once told, carries nothing either way on the subscriber connections open then, without closing them.
    const subscribers = new Set<Socket>();
    const silenced = new Set<Socket>();
    const proxy = await proxyToRedis((client) => ({
      up: (bytes) => {
        if (bytes.toString('latin1').toLowerCase().includes('subscribe')) {
          subscribers.add(client);
        }
        return !silenced.has(client);
      },
      down: () => !silenced.has(client),
    }));
    try {
      const keyPrefix = `mute${randomUUID().slice(0, 8)}:`;
      const behind = await started(proxy.url, { keyPrefix, healthCheckMs: 100, commandTimeoutMs: 300 });
      const publisher = await started(redis.url, { keyPrefix });
      await behind.broker.subscribe('r:x');
      await publisher.broker.publish('r:x', 'before');
      await until(() => behind.received.includes('before'), 'the first payload');
      subscribers.forEach((socket) => silenced.add(socket));
      await publisher.broker.publish('r:x', 'lost');
      await until(
        async () => {
          await publisher.broker.publish('r:x', 'after');
          return behind.received.includes('after');
        },
        'a payload through a new subscriber connection',
        10_000,
      );
      assert.equal(behind.broker.health().status, 'ok');
    } finally {
      proxy.close();
    }
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

  it('leaves no subscription behind when a SUBSCRIBE answered after its deadline and the room was left meanwhile', async () => {
    const keyPrefix = `late${randomUUID().slice(0, 8)}:`;
    const a = await started(redis.url, { keyPrefix, commandTimeoutMs: 300, healthCheckMs: 100 });
    const observer = new Redis(redis.port, '127.0.0.1');
    const subscribers = async (): Promise<number> => {
      const [, count] = (await observer.pubsub('NUMSUB', `${keyPrefix}r:late`)) as [string, number];
      return Number(count);
    };
    try {
      redis.pause();
      try {
        await a.broker.subscribe('r:late'); // times out: Redis runs it once it answers again
        await until(() => a.broker.health().status === 'degraded', 'degraded while stalled', 3000);
        await a.broker.unsubscribe('r:late'); // the room emptied meanwhile
      } finally {
        redis.resume();
      }
      await until(() => a.broker.health().status === 'ok', 'ok once Redis answers again', 5000);
      await until(async () => (await subscribers()) === 0, 'no subscriber left on the channel', 3000);
    } finally {
      observer.disconnect();
    }
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

describe('RedisBroker when Redis refuses or stalls its commands', () => {
  const brokers: RedisBroker[] = [];
  let inspector: Redis;
  /** An ACL user of this test's broker `a`, whose rights the test takes away and gives back. */
  let user: string;
  let keyPrefix: string;

  beforeEach(async () => {
    user = `acl${randomUUID().slice(0, 8)}`;
    keyPrefix = `t${randomUUID().slice(0, 8)}:`;
    inspector = new Redis(redis.url);
    await inspector.call('ACL', 'SETUSER', user, 'reset', 'on', '>pw', '~*', '&*', '+@all');
  });

  afterEach(async () => {
    redis.resume();
    await Promise.all(brokers.splice(0).map((broker) => broker.close()));
    await inspector.call('ACL', 'DELUSER', user);
    inspector.disconnect();
  });

  /** A started broker on this test's keys: as the ACL user, or as the default user. */
  async function started(
    as: 'user' | 'default',
    options: Partial<RedisBrokerOptions> = {},
  ): Promise<{ broker: RedisBroker; received: string[] }> {
    const url = as === 'user' ? `redis://${user}:pw@127.0.0.1:${new URL(redis.url).port}` : redis.url;
    const broker = new RedisBroker({ url, keyPrefix, ...options });
    brokers.push(broker);
    const received: string[] = [];
    await broker.start(randomUUID(), (_channel, payload) => received.push(payload));
    assert.equal(broker.health().status, 'ok');
    return { broker, received };
  }

  /** How many commands of the ACL user Redis refused (its ACL LOG), of `reason` on `object` (a command or a channel). */
  async function refusals(reason: 'command' | 'channel', object: string): Promise<number> {
    const entries = (await inspector.call('ACL', 'LOG', '128')) as (string | number)[][];
    let count = 0;
    for (const entry of entries) {
      const fields = new Map<string, string | number>();
      for (let i = 0; i < entry.length; i += 2) {
        fields.set(String(entry[i]), entry[i + 1]!);
      }
      if (fields.get('username') === user && fields.get('reason') === reason && fields.get('object') === object) {
        count += Number(fields.get('count'));
      }
    }
    return count;
  }

  it("a publish Redis refused does not cost the next one its move of the history's expiry", async () => {
    const { broker } = await started('user');
    const policy = { size: 100, ttlMs: 5000 };
    await broker.publish('r:ttl', 'one', policy); // a new history: its keys expire in 1.1 × ttlMs
    await new Promise((resolve) => setTimeout(resolve, 600)); // past a tenth of the TTL: the next publish moves the expiry
    await inspector.call('ACL', 'SETUSER', user, '-evalsha', '-eval');
    await assert.rejects(broker.publish('r:ttl', 'two', policy), /NOPERM/);
    await inspector.call('ACL', 'SETUSER', user, '+evalsha', '+eval');
    await broker.publish('r:ttl', 'three', policy);
    const ttl = await inspector.pttl(`${keyPrefix}{r:ttl}:m`);
    // Unmoved, it would be about 5500 - 600 ms: the history would outlive its last message by less than ttlMs.
    assert.ok(ttl > 5300, `the history expires in ${ttl} ms`);
  });

  it('retries a restore that Redis refused, without waiting for a health check, until it goes through', async () => {
    // No health check within the test: only the restore's own retry can bring it back.
    const a = await started('user', { healthCheckMs: 600_000 });
    const b = await started('default');
    await a.broker.subscribe('r:acl');
    // Redis drops a's subscriber (its channels are no longer allowed) and refuses its SUBSCRIBE once it is back.
    await inspector.call('ACL', 'SETUSER', user, 'resetchannels');
    await until(() => /restoring failed: NOPERM/.test(a.broker.health().detail ?? ''), 'the refused restore', 5000);
    assert.equal(a.broker.health().status, 'degraded');
    await until(async () => (await refusals('channel', `${keyPrefix}r:acl`)) >= 2, 'the restore to be tried again', 5000);

    await inspector.call('ACL', 'SETUSER', user, 'allchannels');
    await until(() => a.broker.health().status === 'ok', 'the retried restore to go through', 5000);
    await b.broker.publish('r:acl', 'after');
    await until(() => a.received.includes('after'), "a's subscription, restored by the retry");
  });

  it('tries a refused restore again at every health check, and is ok once Redis takes it', async () => {
    const a = await started('user', { healthCheckMs: 50 });
    await a.broker.subscribe('r:acl');
    await inspector.call('ACL', 'SETUSER', user, 'resetchannels');
    await until(() => /restoring failed: NOPERM/.test(a.broker.health().detail ?? ''), 'the refused restore', 5000);
    const first = await refusals('channel', `${keyPrefix}r:acl`);
    // A health check every 50 ms tries again (the restore's own retry alone would take 5 s for as many).
    await until(async () => (await refusals('channel', `${keyPrefix}r:acl`)) >= first + 5, 'five more tries', 2000);
    await inspector.call('ACL', 'SETUSER', user, 'allchannels');
    await until(() => a.broker.health().status === 'ok', 'ok again', 5000);
  });

  it('puts back the presence removals a restore could not make, and makes them at the next one', async () => {
    const a = await started('user');
    const b = await started('default');
    await a.broker.addPresence('room', 'alice');
    await a.broker.addPresence('room', 'gone');
    await b.broker.addPresence('room', 'bob');
    assert.deepEqual((await b.broker.presence('room')).sort(), ['alice', 'bob', 'gone']);

    // Redis refuses a's ZREM: the removal waits for a restore, which Redis refuses too.
    await inspector.call('ACL', 'SETUSER', user, '-zrem');
    await a.broker.removePresence('room', 'gone');
    await inspector.call('CLIENT', 'KILL', 'USER', user);
    await until(async () => (await refusals('command', 'zrem')) >= 2, "the restore's removal to be refused", 5000);
    await until(() => a.broker.health().status === 'ok', 'the restore to finish', 5000);
    assert.deepEqual((await b.broker.presence('room')).sort(), ['alice', 'bob', 'gone'], 'Redis was told nothing yet');

    // Redis takes ZREM again; the next restore (after a dropped connection) makes the removal.
    await inspector.call('ACL', 'SETUSER', user, '+zrem');
    await inspector.call('CLIENT', 'KILL', 'USER', user);
    await until(async () => (await b.broker.presence('room')).sort().join() === 'alice,bob', 'the removal to reach Redis', 5000);
  });

  it('keeps one presence removal per member for the next restore, however often it left, and none once it is back', async () => {
    const a = await started('user');
    const b = await started('default');
    await a.broker.addPresence('room', 'flappy');
    await a.broker.addPresence('room', 'back');
    await b.broker.addPresence('room', 'bob');
    await inspector.call('ACL', 'SETUSER', user, '-zrem');
    // Each removal Redis refuses waits for the next restore; the member's return cancels it.
    for (let i = 0; i < 20; i++) {
      await a.broker.removePresence('room', 'flappy');
      await a.broker.addPresence('room', 'flappy');
    }
    await a.broker.removePresence('room', 'flappy');
    await a.broker.removePresence('room', 'back');
    await a.broker.addPresence('room', 'back');
    const before = await refusals('command', 'zrem');
    assert.equal(before, 22, 'every removal was tried at once');
    await inspector.call('CLIENT', 'KILL', 'USER', user);
    await until(async () => (await refusals('command', 'zrem')) > before, "the restore's removals to be refused", 5000);
    await until(() => a.broker.health().status === 'ok', 'the restore to finish', 5000);
    // One restore round per reconnected connection may send it: the publisher's, and maybe the subscriber's after it.
    const sent = (await refusals('command', 'zrem')) - before;
    assert.ok(sent >= 1 && sent <= 2, `the restore sent ${sent} removals, not flappy's alone, once per round`);
    await inspector.call('ACL', 'SETUSER', user, '+zrem');
    await inspector.call('CLIENT', 'KILL', 'USER', user);
    await until(async () => (await b.broker.presence('room')).sort().join() === 'back,bob', 'the removal to reach Redis', 5000);
  });

  it("answers presence from this instance's members while Redis stalls, at the deadline and then at once", async () => {
    const a = await started('default', { commandTimeoutMs: 1000, healthCheckMs: 600_000 });
    const b = await started('default');
    await a.broker.addPresence('room', 'alice');
    await b.broker.addPresence('room', 'bob');
    assert.deepEqual((await a.broker.presence('room')).sort(), ['alice', 'bob']);

    redis.pause();
    try {
      // Not known to be stalled yet: asked, and answered from what a knows at the command deadline.
      let started = performance.now();
      assert.deepEqual(await a.broker.presence('room'), ['alice']);
      assert.ok(performance.now() - started >= 990, 'answered before the deadline, while Redis could not have');
      assert.equal(a.broker.health().status, 'degraded');
      // Known to be stalled: not asked again until it answers.
      started = performance.now();
      assert.deepEqual(await a.broker.presence('room'), ['alice']);
      const took = performance.now() - started;
      assert.ok(took < 500, `a stalled Redis was asked again (${Math.round(took)} ms)`);
    } finally {
      redis.resume();
    }
    await until(() => a.broker.health().status === 'ok', 'ok once Redis answers again', 5000);
    assert.deepEqual((await a.broker.presence('room')).sort(), ['alice', 'bob']);
  });
});

describe('RedisBroker history when Redis comes back with an older state (a snapshot after a crash)', () => {
  const policy = { size: 100, ttlMs: 60_000 };

  /**
   * A broker with members in `r:room` (it sees every offset) publishes 1 to 5, Redis saves a
   * snapshot, the broker publishes 6 to 8, and Redis crashes and comes back with the
   * snapshot. `then` gets the broker, reconnected, and the positions of offsets 5 and 8.
   */
  async function afterRollback(then: (broker: RedisBroker, saved: StreamPosition, last: StreamPosition) => Promise<void>): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'realtime-redis-'));
    const server = await RedisServer.start(['--dir', dir, '--dbfilename', 'snapshot.rdb']);
    const broker = new RedisBroker({ url: server.url, keyPrefix: 'snap:' });
    const admin = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
    try {
      await broker.start(randomUUID(), () => undefined);
      await broker.subscribe('r:room');
      let saved: StreamPosition | undefined;
      for (let i = 1; i <= 5; i++) {
        saved = await broker.publish('r:room', `saved ${i}`, policy);
      }
      await admin.connect();
      await admin.save(); // the snapshot holds offsets 1 to 5
      admin.disconnect();
      let last: StreamPosition | undefined;
      for (let i = 6; i <= 8; i++) {
        last = await broker.publish('r:room', `lost ${i}`, policy);
      }
      assert.equal(last?.offset, 8);
      await server.kill(); // a crash: Redis comes back with the snapshot, offsets 6 to 8 gone
      await server.run();
      await until(() => broker.health().status === 'ok', 'reconnected', 10_000);
      await then(broker, saved!, last);
    } finally {
      await broker.close();
      admin.disconnect();
      await server.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('starts a new epoch at the next publish of an instance that saw the lost offsets: none is handed out twice under one epoch', async () => {
    await afterRollback(async (broker, _saved, last) => {
      const next = await broker.publish('r:room', 'after the restart', policy);
      assert.notEqual(next?.epoch, last.epoch, `offset ${next?.offset} handed out again under the same epoch`);
      assert.equal(next?.offset, 1);
      const page = await broker.history('r:room', last, policy);
      assert.equal(page.complete, false, 'a position from before the restart recovered');
    });
  });

  it('starts a new epoch at the next history read of an instance that saw the lost offsets: a join is not told it recovered them', async () => {
    await afterRollback(async (broker, saved) => {
      // A client that saw offset 3 before the crash: Redis alone would replay 4 and 5 as all it missed.
      const page = await broker.history('r:room', { offset: 3, epoch: saved.epoch }, policy);
      assert.equal(page.complete, false, `recovered ${JSON.stringify(page.entries.map((entry) => entry.offset))}, offsets 6 to 8 missing`);
      assert.notEqual(page.position.epoch, saved.epoch);
      assert.equal((await broker.publish('r:room', 'after the restart', policy))?.epoch, page.position.epoch);
    });
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
      // A strict read (presence events) fails instead: this instance's members alone would
      // make every other instance's users seem gone.
      await assert.rejects(broker.presence('lobby', { strict: true }), /WRONGTYPE/);
    } finally {
      Logger.overrideLogger(process.env.TEST_LOGS ? new ConsoleLogger() : false);
      await broker.close();
      inspector.disconnect();
    }
  });
});
