import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import { type RealtimeModuleOptions } from '../src/index.js';
import { RedisBroker } from '../src/redis.js';
import { RedisServer } from './support/redis-server.js';
import { startRoomsApp, type RoomsApp } from './support/rooms-app.js';
import { until } from './support/until.js';
import { TestClient } from './support/ws-client.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

/** The client's next presence push (other frames, replies included, are skipped). */
async function nextPresence(client: TestClient): Promise<Record<string, unknown>> {
  for (;;) {
    const frame = await client.nextJson();
    if (frame.event === 'presence') {
      return frame;
    }
  }
}

describe('presence events (protocol §9)', () => {
  const apps: RoomsApp[] = [];
  const clients: TestClient[] = [];
  let redis: RedisServer | undefined;

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await redis?.stop();
    redis = undefined;
  });

  async function start(options: RealtimeModuleOptions, broker?: RedisBroker): Promise<RoomsApp> {
    const app = await startRoomsApp(broker, undefined, 0, options);
    apps.push(app);
    return app;
  }

  /** Two instances on a throw-away Redis, with fast presence events and broker deadlines short enough to see a stall. */
  async function twoOnStallingRedis(): Promise<[RoomsApp, RoomsApp]> {
    redis = await RedisServer.start();
    const keyPrefix = `p${randomUUID().slice(0, 8)}:`;
    const options: RealtimeModuleOptions = { presence: { events: true, debounceMs: 20, resyncMs: 100 } };
    const broker = (): RedisBroker => new RedisBroker({ url: redis!.url, keyPrefix, commandTimeoutMs: 200, healthCheckMs: 100 });
    return [await start(options, broker()), await start(options, broker())];
  }

  async function joined(app: RoomsApp, sub: string, room = 'r'): Promise<TestClient> {
    const client = await app.connect(sub);
    clients.push(client);
    const reply = await client.request({ event: 'join', id: `join-${sub}`, data: { room } });
    assert.equal(reply.event, 'join', JSON.stringify(reply));
    return client;
  }

  async function leave(client: TestClient, room = 'r'): Promise<void> {
    client.send({ event: 'leave', id: 'leave', data: { room } });
  }

  it("tells a room's members when a user joins and leaves: once per user, not per connection", async () => {
    const app = await start({ presence: { events: true, debounceMs: 20 } });
    const bob = await joined(app, 'bob');
    const alice = await joined(app, 'alice');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'alice' } });
    // A second connection of alice's, then the first one leaving: alice is still in the room.
    const alice2 = await joined(app, 'alice');
    await leave(alice);
    const carol = await joined(app, 'carol');
    // The next thing bob hears is about carol: alice's second connection and first leave changed nothing.
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'carol' } });
    // A joiner hears of itself too, after its join's reply (which may already list it).
    assert.deepEqual(await nextPresence(carol), { event: 'presence', room: 'r', data: { joined: 'carol' } });
    alice2.close(); // her last connection: she leaves
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { left: 'alice' } });
    assert.deepEqual(await nextPresence(carol), { event: 'presence', room: 'r', data: { left: 'alice' } });
  });

  it('does not flap for a user who leaves and comes back within the debounce', async () => {
    const app = await start({ presence: { events: true, debounceMs: 400 } });
    const bob = await joined(app, 'bob');
    const alice = await joined(app, 'alice');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'alice' } });
    // A reconnection: the old connection goes, a new one joins, well within 400 ms.
    alice.close();
    await joined(app, 'alice');
    await joined(app, 'dave');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'dave' } });
  });

  it("lists a user who is within the leave grace to a newcomer, as the events tell it: one who comes back is not missing from the newcomer's list", async () => {
    // yve is told as leaving about twice the debounce after going, unless back: 2 s of margin for the steps below.
    const app = await start({ presence: { events: true, debounceMs: 1000 } });
    const bob = await joined(app, 'bob');
    const yve = await joined(app, 'yve');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'yve' } });
    yve.close(); // a reconnection begins: the broker no longer has yve
    await until(() => app.hub.localClientsOf('yve').length === 0, "yve's connection to close");
    const zed = await joined(app, 'zed');
    const members = (await zed.request({ event: 'presence', id: 'members', data: { room: 'r' } })).data;
    assert.deepEqual(members, ['bob', 'yve', 'zed']);
    await joined(app, 'yve'); // back within the grace: no event about yve, to anyone
    await new Promise((resolve) => setTimeout(resolve, 2200)); // past the grace yve would have been told as leaving in
    await joined(app, 'dave');
    assert.deepEqual(await nextPresence(zed), { event: 'presence', room: 'r', data: { joined: 'zed' } });
    assert.deepEqual(await nextPresence(zed), { event: 'presence', room: 'r', data: { joined: 'dave' } });
  });

  it('gives each user who goes their own grace, whatever else changed in the room meanwhile', async () => {
    const app = await start({ presence: { events: true, debounceMs: 600 } });
    const bob = await joined(app, 'bob');
    const alice = await joined(app, 'alice');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'alice' } });
    // carol's arrival makes the room compare about 600 ms from now; alice goes before that
    // and is back after it: she has been gone for less than 600 ms all along.
    const carolAt = Date.now();
    await joined(app, 'carol');
    await until(() => Date.now() >= carolAt + 100, 'a moment');
    alice.close();
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'carol' } });
    await until(() => Date.now() >= carolAt + 700, 'the compare after carol to be over');
    await joined(app, 'alice');
    await joined(app, 'dave');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'dave' } });
  });

  it('refuses bad options at startup', async () => {
    await assert.rejects(
      start({ presence: { events: true, debounceMs: -1 } }),
      /presence\.debounceMs must be a whole number of ms, at least 0 and at most 2147483647, got -1/,
    );
    await assert.rejects(
      start({ presence: { events: true, resyncMs: 2 ** 31 } }),
      /presence\.resyncMs must be a whole number of ms, at least 100 and at most 2147483647, got 2147483648/,
    );
    await assert.rejects(
      start({ presence: { events: true, resyncMs: 50 } }),
      /presence\.resyncMs must be a whole number of ms, at least 100/,
    );
    await assert.rejects(start({ presence: 'on' as never }), /Realtime option presence must be an object, got "on"/);
    await assert.rejects(
      start({ presence: { event: true } as never }),
      /presence has no "event" \(it takes events, debounceMs, resyncMs\)/,
    );
    await assert.rejects(start({ presence: { events: 'yes' } as never }), /presence\.events must be true or false, got "yes"/);
  });

  it('spans instances on Redis: every instance tells its members, once per user across instances', async () => {
    redis = await RedisServer.start();
    const keyPrefix = `p${randomUUID().slice(0, 8)}:`;
    // No resync within the test: what the instances hear from each other is what tells.
    const options: RealtimeModuleOptions = { presence: { events: true, debounceMs: 20, resyncMs: 60_000 } };
    const [a, b] = [
      await start(options, new RedisBroker({ url: redis.url, keyPrefix })),
      await start(options, new RedisBroker({ url: redis.url, keyPrefix })),
    ];
    const bob = await joined(a, 'bob');
    const erin = await joined(b, 'erin');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'erin' } });
    const alice = await joined(b, 'alice');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'alice' } });
    assert.deepEqual(await nextPresence(erin), { event: 'presence', room: 'r', data: { joined: 'alice' } });
    // alice on the other instance too, then gone from b: still in the room.
    const aliceOnA = await joined(a, 'alice');
    alice.close();
    const carol = await joined(a, 'carol');
    assert.deepEqual(await nextPresence(erin), { event: 'presence', room: 'r', data: { joined: 'carol' } });
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'carol' } });
    assert.deepEqual(await nextPresence(carol), { event: 'presence', room: 'r', data: { joined: 'carol' } });
    aliceOnA.close();
    for (const member of [bob, carol, erin]) {
      assert.deepEqual(await nextPresence(member), { event: 'presence', room: 'r', data: { left: 'alice' } });
    }
  });

  it('does not take a stalled broker for everyone leaving: no events while it cannot answer', async () => {
    const [a, b] = await twoOnStallingRedis();
    const bob = await joined(a, 'bob');
    await joined(b, 'erin');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'erin' } });
    const pausedAt = Date.now();
    redis!.pause();
    try {
      // Reads at the command deadline answer with a's own members only (bob): the resyncs
      // while Redis is stalled (every 100 ms) must not tell bob that erin left. Every read
      // started before the stall has met its deadline (200 ms) well before the thaw.
      await until(() => a.hub.health().status === 'degraded', 'the broker to be found stalled', 5000);
      await until(() => Date.now() >= pausedAt + 4 * 200, 'the reads made during the stall to meet their deadline', 5000);
    } finally {
      redis!.resume();
    }
    await until(() => a.hub.health().status === 'ok', 'the broker to be back', 10_000);
    await joined(b, 'frank');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'frank' } });
  });

  it('tells a member who opened a room while the broker was stalled of the users elsewhere once it answers again', async () => {
    const [a, b] = await twoOnStallingRedis();
    await joined(b, 'erin');
    redis!.pause();
    let alice: TestClient;
    try {
      await until(() => a.hub.health().status === 'degraded', 'the broker to be found stalled', 5000);
      // alice opens the room on a: her list can only be a's own users (her), erin is elsewhere.
      alice = await joined(a, 'alice');
      const members = (await alice.request({ event: 'presence', id: 'members', data: { room: 'r' } })).data;
      assert.deepEqual(members, ['alice']);
    } finally {
      redis!.resume();
    }
    await until(() => a.hub.health().status === 'ok', 'the broker to be back', 10_000);
    assert.deepEqual(await nextPresence(alice), { event: 'presence', room: 'r', data: { joined: 'erin' } });
  });

  it("tells the members of the other instances that an instance's users left when it goes away (at the next resync)", async () => {
    redis = await RedisServer.start();
    const keyPrefix = `p${randomUUID().slice(0, 8)}:`;
    const options: RealtimeModuleOptions = { presence: { events: true, debounceMs: 20, resyncMs: 200 } };
    const [a, b] = [
      await start(options, new RedisBroker({ url: redis.url, keyPrefix })),
      await start(options, new RedisBroker({ url: redis.url, keyPrefix })),
    ];
    const bob = await joined(a, 'bob');
    await joined(b, 'erin');
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { joined: 'erin' } });
    await b.close();
    apps.splice(apps.indexOf(b), 1);
    assert.deepEqual(await nextPresence(bob), { event: 'presence', room: 'r', data: { left: 'erin' } });
  });
});
