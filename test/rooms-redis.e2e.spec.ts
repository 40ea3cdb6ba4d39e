import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RedisBroker, type RedisBrokerOptions } from '../src/redis.js';
import { redisTargets, useRedisTarget } from './support/redis-targets.js';
import { startRoomsApp, type RoomsApp, ROOMS_SECRET, tokenFor } from './support/rooms-app.js';
import { startSampleApp } from './support/sample-app.js';
import { until } from './support/until.js';
import { TestClient } from './support/ws-client.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

/** What a bound on a configured deadline allows past it: the event loop's lateness, not a second deadline. */
const LATE_MS = 300;

for (const target of redisTargets())
  describe(`rooms across instances (Redis broker, ${target.name})`, () => {
    const apps: RoomsApp[] = [];
    const clients: TestClient[] = [];
    const redis = useRedisTarget(target, { apps, clients });

    /** `count` instances of one application sharing the Redis (a key prefix per test isolates it). */
    async function instances(
      count: number,
      keyPrefix = `t${randomUUID().slice(0, 8)}:`,
      presenceTtlMs?: number,
      broker: RedisBrokerOptions = {},
    ): Promise<RoomsApp[]> {
      const started = await Promise.all(
        Array.from({ length: count }, () =>
          // The ordering test sends 1,000 messages at once: over the default rate limit.
          startRoomsApp(target.broker({ keyPrefix, presenceTtlMs, ...broker }), undefined, 0, {
            limits: { messageRate: false, userMessageRate: false },
          }),
        ),
      );
      apps.push(...started);
      return started;
    }

    async function joined(app: RoomsApp, sub: string, room: string): Promise<TestClient> {
      const client = await app.connect(sub);
      clients.push(client);
      const reply = await client.request({ event: 'join', id: 'j', data: { room } });
      assert.equal(reply.event, 'join', JSON.stringify(reply));
      return client;
    }

    /** The client got nothing more: the reply to a request it sends now is its next frame. */
    async function nothingMore(client: TestClient): Promise<void> {
      const id = randomUUID();
      assert.equal((await client.request({ event: 'rooms', id })).id, id);
    }

    it("answers a sender's acknowledged send after its own copy of the message, every time", async () => {
      // The publish's answer and the message come back from Redis on two connections: the reply waits for the copy.
      const [one] = await instances(1);
      const alice = await joined(one!, 'alice', 'acked');
      for (let i = 0; i < 30; i++) {
        alice.send({ event: 'send-acked', id: i, data: { room: 'acked', text: String(i) } });
        const [first, second] = [await alice.nextJson(), await alice.nextJson()];
        assert.deepEqual([first.event, second.event, second.id], ['message', 'send-acked', i], `send ${i}`);
        assert.equal((second.data as { offset: number }).offset, first.offset);
      }
    });

    it('delivers 1,000 room messages to members on three instances, each once and in order', async () => {
      const [one, two, three] = await instances(3);
      const alice = await joined(one!, 'alice', 'lobby');
      const bob = await joined(two!, 'bob', 'lobby');
      const carol = await joined(three!, 'carol', 'lobby');
      const outsider = await joined(two!, 'dave', 'elsewhere');
      for (let i = 0; i < 1000; i++) {
        alice.send({ event: 'send', data: { room: 'lobby', text: String(i) } });
      }
      for (const client of [alice, bob, carol]) {
        const texts: number[] = [];
        for (let i = 0; i < 1000; i++) {
          const frame = await client.nextJson();
          assert.equal(frame.event, 'message');
          assert.equal(frame.room, 'lobby');
          texts.push(Number((frame.data as { text: string }).text));
        }
        assert.deepEqual(
          texts,
          Array.from({ length: 1000 }, (_, i) => i),
        );
        await nothingMore(client);
      }
      await nothingMore(outsider);
    });

    it('targets a user on every instance, broadcasts to all, and disconnects a user everywhere', async () => {
      const [one, two, three] = await instances(3);
      const alice1 = await one!.connect('alice');
      const alice3 = await three!.connect('alice');
      const bob = await two!.connect('bob');
      clients.push(alice1, alice3, bob);
      // No wait: an instance subscribes to a user's channel before it completes the upgrade.
      bob.send({ event: 'whisper', data: { to: 'alice', text: 'secret' } });
      for (const client of [alice1, alice3]) {
        assert.deepEqual(await client.nextJson(), { event: 'whisper', data: { from: 'bob', text: 'secret' } });
        await nothingMore(client);
      }
      alice3.send({ event: 'shout', data: { text: 'everyone' } });
      for (const client of [alice1, alice3, bob]) {
        assert.deepEqual(await client.nextJson(), { event: 'shout', data: { text: 'everyone' } });
      }
      bob.send({ event: 'kick', data: { user: 'alice' } });
      assert.deepEqual(await alice1.waitClosed(), { code: 4003, reason: 'banned' });
      assert.deepEqual(await alice3.waitClosed(), { code: 4003, reason: 'banned' });
      await nothingMore(bob);
    });

    it('shares presence across instances', async () => {
      const [one, two, three] = await instances(3);
      await joined(one!, 'alice', 'lobby');
      const bob = await two!.connect('bob');
      clients.push(bob);
      const reply = (await bob.request({ event: 'join', id: 1, data: { room: 'lobby' } })).data as Record<string, unknown>;
      assert.deepEqual(reply, { room: 'lobby', members: ['alice', 'bob'], offset: 0, epoch: reply.epoch });
      assert.deepEqual(await three!.hub.presence('lobby'), ['alice', 'bob']);
      await bob.request({ event: 'leave', id: 2, data: { room: 'lobby' } });
      assert.deepEqual(await three!.hub.presence('lobby'), ['alice']);
    });

    // Tests that inspect, kill or freeze the one server.
    if (target.kind === 'cluster') {
      return;
    }

    it('subscribes an instance only to the rooms it has members in, and unsubscribes after the last', async () => {
      const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
      const [one, two] = await instances(2, keyPrefix);
      const inspector = new Redis(redis.url);
      const subscribers = async (room: string): Promise<number> =>
        Number(((await inspector.pubsub('NUMSUB', `${keyPrefix}r:${room}`)) as [string, number])[1]);
      try {
        const alice = await joined(one!, 'alice', 'lobby');
        assert.equal(await subscribers('lobby'), 1);
        const bob = await joined(two!, 'bob', 'lobby');
        const bob2 = await joined(two!, 'bob', 'lobby');
        assert.equal(await subscribers('lobby'), 2);
        assert.equal(await subscribers('games'), 0);
        await bob.request({ event: 'leave', id: 1, data: { room: 'lobby' } });
        assert.equal(await subscribers('lobby'), 2);
        bob2.close();
        await until(async () => (await subscribers('lobby')) === 1, 'instance two to unsubscribe');
        await alice.request({ event: 'leave', id: 2, data: { room: 'lobby' } });
        assert.equal(await subscribers('lobby'), 0);
      } finally {
        inspector.disconnect();
      }
    });

    it('takes its connection settings from an existing ioredis client', async () => {
      const existing = new Redis(redis.url, { lazyConnect: true });
      const keyPrefix = `t${randomUUID().slice(0, 8)}:`;
      const [one, two] = await Promise.all([
        startRoomsApp(new RedisBroker({ client: existing, keyPrefix })),
        startRoomsApp(new RedisBroker({ client: existing, keyPrefix })),
      ]);
      apps.push(one, two);
      assert.equal(existing.status, 'wait', 'the given client itself is left alone');
      const alice = await joined(one, 'alice', 'lobby');
      const bob = await joined(two, 'bob', 'lobby');
      bob.send({ event: 'send', data: { room: 'lobby', text: 'via copied settings' } });
      assert.deepEqual((await alice.nextJson()).data, { from: 'bob', text: 'via copied settings' });
    });

    it("expires a killed instance's presence, and only its own: a live instance's members stay present throughout", async () => {
      // The sample app uses the default key prefix, so these instances do too. This one has
      // the default presenceTtlMs (30 s); the sample app below a much shorter one.
      const [one] = await instances(1, 'rt:');
      await joined(one!, 'alice', 'lobby');
      const ttlMs = 600;
      const child = await startSampleApp({ REDIS_URL: redis.url, PRESENCE_TTL_MS: String(ttlMs), JWT_SECRET: ROOMS_SECRET });
      try {
        const chatUrl = child.wsUrl.replace(/\/echo$/, '/chat');
        const dave = await TestClient.connect(chatUrl, { headers: { authorization: `Bearer ${tokenFor('dave')}` } });
        clients.push(dave);
        assert.deepEqual(((await dave.request({ event: 'join', id: 1, data: { room: 'lobby' } })).data as { members: string[] }).members, [
          'alice',
          'dave',
        ]);
        const exited = once(child.child, 'exit');
        child.child.kill('SIGKILL');
        await exited;
        // Its last refresh came before this: its entries lapse by killedAt + ttlMs.
        const killedAt = Date.now();
        // Waiting for time to pass is the point here: the killed instance's entries, and the
        // expiry it gave the room's key (2 × its TTL), lapse with time, not with an event.
        // Presence is read over and over from right after the kill until 5 × its TTL: past
        // its entries' expiry, past its key expiry, and on.
        const reads: { after: number; members: string[] }[] = [];
        await until(
          async () => {
            const after = Date.now() - killedAt;
            reads.push({ after, members: await one!.hub.presence('lobby') });
            return after >= 5 * ttlMs;
          },
          `presence reads until ${5 * ttlMs} ms after the kill`,
          10 * ttlMs,
        );
        const missing = reads.find((read) => !read.members.includes('alice'));
        assert.equal(
          missing,
          undefined,
          `alice, connected to the live instance, was missing from presence ${missing?.after} ms after the other instance was killed`,
        );
        const lingering = reads.find((read) => read.after > ttlMs && read.members.includes('dave'));
        assert.equal(lingering, undefined, `dave was still present ${lingering?.after} ms after his instance was killed`);
        assert.ok(
          reads.some((read) => read.after > 2 * ttlMs && read.after < 3 * ttlMs),
          'no read between 2 and 3 TTLs after the kill',
        );
        assert.deepEqual(reads.at(-1)!.members, ['alice']);
      } finally {
        child.child.kill('SIGKILL');
      }
    });

    it('while Redis is down: reports degraded, keeps room messages for it, then every member gets them once, in order', async () => {
      const [one, two] = await instances(2, 'rt:');
      const child = await startSampleApp({ REDIS_URL: redis.url, JWT_SECRET: ROOMS_SECRET });
      const health = async (): Promise<{ status: string; broker: { type: string; status: string } }> =>
        (await fetch(child.wsUrl.replace(/^ws:/, 'http:').replace(/\/echo$/, '/health'))).json() as never;
      try {
        assert.deepEqual((await health()).broker, { type: 'redis', status: 'ok' });
        const alice = await joined(one!, 'alice', 'lobby');
        const carol = await joined(one!, 'carol', 'lobby');
        const bob = await joined(two!, 'bob', 'lobby');

        await redis.kill();
        await until(() => one!.hub.health().status === 'degraded' && two!.hub.health().status === 'degraded', 'degraded brokers');
        await until(async () => (await health()).status === 'degraded', 'the sample app to report degraded');
        assert.equal((await health()).broker.status, 'degraded');
        // Kept for Redis: offsets come from it, so nobody gets the message before it is back.
        alice.send({ event: 'send', data: { room: 'lobby', text: 'during the outage' } });
        // A new member while Redis is down still joins, with what this instance knows.
        const erin = await one!.connect('erin');
        clients.push(erin);
        assert.deepEqual(((await erin.request({ event: 'join', id: 1, data: { room: 'lobby' } })).data as { members: string[] }).members, [
          'alice',
          'carol',
          'erin',
        ]);
        // Nobody got it yet: each one's next frame is the reply to a request sent after it.
        for (const client of [alice, carol, bob, erin]) {
          await nothingMore(client);
        }

        await redis.run();
        await until(() => one!.hub.health().status === 'ok' && two!.hub.health().status === 'ok', 'recovery', 10_000);
        await until(async () => (await health()).status === 'ok', 'the sample app to recover', 10_000);
        alice.send({ event: 'send', data: { room: 'lobby', text: 'after' } });
        // Redis came back empty (a new epoch): each instance reads the new epoch from its
        // start, so bob gets the kept message even if his instance re-subscribed after it went.
        // Each member: the kept message, then the later one, then nothing (no second copy).
        for (const client of [alice, carol, bob, erin]) {
          const first = await client.nextJson();
          const second = await client.nextJson();
          assert.deepEqual(
            [first.offset, (first.data as { text: string }).text, second.offset, (second.data as { text: string }).text],
            [1, 'during the outage', 2, 'after'],
          );
          await nothingMore(client);
        }
        assert.deepEqual(await two!.hub.presence('lobby'), ['alice', 'bob', 'carol', 'erin']);
        assert.ok(child.child.exitCode === null, 'the sample app died');
      } finally {
        child.child.kill('SIGKILL');
      }
    });
    it('waits on a frozen Redis for one command timeout at most: handshakes, joins and health; subscriptions made meanwhile catch up', async () => {
      const commandTimeoutMs = 400;
      const healthCheckMs = 200;
      const [one, two] = await instances(2, undefined, undefined, { commandTimeoutMs, healthCheckMs });
      const bob = await joined(two!, 'bob', 'lobby');
      // Idle: the health check finds the stall within its interval plus the timeout.
      redis.pause();
      try {
        let started = performance.now();
        await until(() => one!.hub.health().status === 'degraded', 'the idle instance to report degraded', 2000);
        // The bounds below are the claims: each is the configured deadline it must beat,
        // plus LATE_MS for the event loop (and this poll) to get round to it.
        const noticed = performance.now() - started;
        assert.ok(
          noticed < healthCheckMs + commandTimeoutMs + LATE_MS,
          `degraded after ${Math.round(noticed)} ms: later than one health check (${healthCheckMs} ms) and its ${commandTimeoutMs} ms timeout`,
        );
        // Once it knows, a new user's handshake and first join do not wait on Redis at all.
        started = performance.now();
        const carol = await joined(one!, 'carol', 'lobby');
        const took = performance.now() - started;
        assert.ok(
          took < commandTimeoutMs,
          `handshake and join took ${Math.round(took)} ms: they waited on Redis's ${commandTimeoutMs} ms timeout`,
        );
        assert.deepEqual((await carol.request({ event: 'presence', id: 'p', data: { room: 'lobby' } })).data, ['carol']);
        redis.resume();
        await until(() => one!.hub.health().status === 'ok' && two!.hub.health().status === 'ok', 'recovery', 5000);
        // carol's room and user subscriptions, made while Redis was frozen, are in place now.
        bob.send({ event: 'send', data: { room: 'lobby', text: 'after the stall' } });
        assert.deepEqual((await carol.nextJson()).data, { from: 'bob', text: 'after the stall' });
        bob.send({ event: 'whisper', data: { to: 'carol', text: 'psst' } });
        assert.deepEqual((await carol.nextJson()).data, { from: 'bob', text: 'psst' });
        assert.deepEqual(await two!.hub.presence('lobby'), ['bob', 'carol']);
      } finally {
        redis.resume();
      }
    });

    it('bounds a handshake and a join by the command timeout when they are the first to meet a frozen Redis', async () => {
      const commandTimeoutMs = 400;
      // A health check too rare to notice the stall first.
      const [one] = await instances(1, undefined, undefined, { commandTimeoutMs, healthCheckMs: 60_000 });
      redis.pause();
      try {
        let started = performance.now();
        const dave = await one!.connect('dave');
        clients.push(dave);
        const handshake = performance.now() - started;
        assert.ok(
          handshake < commandTimeoutMs + LATE_MS,
          `the handshake took ${Math.round(handshake)} ms: more than one ${commandTimeoutMs} ms command timeout`,
        );
        assert.equal(one!.hub.health().status, 'degraded');
        started = performance.now();
        assert.equal((await dave.request({ event: 'join', id: 'j', data: { room: 'frozen' } })).event, 'join');
        const join = performance.now() - started;
        assert.ok(
          join < commandTimeoutMs + LATE_MS,
          `the join took ${Math.round(join)} ms: more than one ${commandTimeoutMs} ms command timeout`,
        );
      } finally {
        redis.resume();
      }
      await until(() => one!.hub.health().status === 'ok', 'recovery', 5000);
    });
  });
