import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { RealtimeClient, type RoomRejoin } from '../src/client/index.js';
import type { RedisBrokerOptions } from '../src/redis.js';
import type { RealtimeModuleOptions } from '../src/index.js';
import { redisTargets, useRedisTarget } from './support/redis-targets.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until } from './support/until.js';
import type { TestClient } from './support/ws-client.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

type Frame = Record<string, unknown>;

for (const target of redisTargets())
  describe(`room history and recovery across instances (Redis broker, ${target.name})`, () => {
    const apps: RoomsApp[] = [];
    const clients: TestClient[] = [];
    const redis = useRedisTarget(target, { apps, clients });

    async function instances(count: number, broker: RedisBrokerOptions = {}, options: RealtimeModuleOptions = {}): Promise<RoomsApp[]> {
      const keyPrefix = `h${randomUUID().slice(0, 8)}:`;
      const started = await Promise.all(
        Array.from({ length: count }, () =>
          startRoomsApp(target.broker({ keyPrefix, ...broker }), undefined, 0, {
            limits: { messageRate: false, userMessageRate: false },
            ...options,
          }),
        ),
      );
      apps.push(...started);
      return started;
    }

    async function member(on: RoomsApp, sub: string, room: string, since?: unknown): Promise<[TestClient, Frame]> {
      const client = await on.connect(sub);
      clients.push(client);
      const reply = await client.request({ event: 'join', id: 'j', data: since ? { room, since } : { room } });
      assert.equal(reply.event, 'join', JSON.stringify(reply));
      return [client, reply.data as Frame];
    }

    /** Reads frames until `count` room pushes have come; replies and other frames go to `others`. */
    async function pushes(client: TestClient, count: number, others: Frame[] = []): Promise<Frame[]> {
      const got: Frame[] = [];
      while (got.length < count) {
        const frame = await client.nextJson();
        (frame.event === 'message' ? got : others).push(frame);
      }
      return got;
    }

    it('a client killed while 3 instances publish 500 messages gets exactly those 500 on another instance, in order, then live ones', async () => {
      const [one, two, three] = await instances(3, {}, { history: { size: 1000, ttlMs: 60_000 } });
      const [alice, { epoch, offset }] = await member(one!, 'alice', 'lobby');
      assert.equal(offset, 0);
      const senders = [
        (await member(one!, 'bob', 'lobby'))[0],
        (await member(two!, 'carol', 'lobby'))[0],
        (await member(three!, 'dave', 'lobby'))[0],
      ];
      alice.socket.terminate();
      const sent: string[] = [];
      for (let i = 0; i < 500; i++) {
        const text = `m${i}`;
        sent.push(text);
        senders[i % 3].send({ event: 'send-acked', id: text, data: { room: 'lobby', text } });
      }
      // Every send is acknowledged with an offset; each sender also gets all 500 pushes.
      const acked = new Map<number, string>();
      for (const [index, sender] of senders.entries()) {
        const replies: Frame[] = [];
        await pushes(sender, 500, replies);
        const expected = Array.from({ length: 500 }, (_, i) => i).filter((i) => i % 3 === index).length;
        while (replies.length < expected) {
          replies.push(await sender.nextJson());
        }
        for (const reply of replies) {
          assert.equal(reply.event, 'send-acked', JSON.stringify(reply));
          acked.set((reply.data as { offset: number }).offset, String(reply.id));
        }
      }
      assert.deepEqual(
        [...acked.keys()].sort((a, b) => a - b),
        Array.from({ length: 500 }, (_, i) => i + 1),
      );

      const [back, reply] = await member(three!, 'alice', 'lobby', { offset: 0, epoch });
      assert.deepEqual(reply, { room: 'lobby', members: ['alice', 'bob', 'carol', 'dave'], offset: 500, epoch, recovered: true });
      const recovered = await pushes(back, 500);
      assert.deepEqual(
        recovered.map((push) => push.offset),
        Array.from({ length: 500 }, (_, i) => i + 1),
      );
      assert.deepEqual(
        recovered.map((push) => (push.data as { text: string }).text),
        recovered.map((push) => acked.get(push.offset as number)),
      );
      assert.deepEqual(new Set(recovered.map((push) => (push.data as { text: string }).text)), new Set(sent));
      senders[1].send({ event: 'send', data: { room: 'lobby', text: 'live' } });
      assert.deepEqual((await back.nextJson()).offset, 501);
    });

    it('answers recovered: false for a position history no longer has, and for another epoch', async () => {
      const [one] = await instances(1, {}, { history: { size: 5, ttlMs: 60_000 } });
      const [bob, { epoch }] = await member(one!, 'bob', 'lobby');
      const outside = await one!.connect('publisher');
      clients.push(outside);
      // Far past the size, and past Redis's trimming slack (it drops whole stream nodes).
      for (let i = 1; i <= 300; i++) {
        outside.send({ event: 'send', data: { room: 'lobby', text: `m${i}` } });
      }
      assert.equal((await pushes(bob, 300)).at(-1)!.offset, 300);
      const [, overflow] = await member(one!, 'alice', 'lobby', { offset: 1, epoch });
      assert.deepEqual(overflow, { room: 'lobby', members: ['alice', 'bob'], offset: 300, epoch, recovered: false });
      const [, otherEpoch] = await member(one!, 'carol', 'lobby', { offset: 299, epoch: 'another' });
      assert.equal(otherEpoch.recovered, false);
      const [kept, recent] = await member(one!, 'dave', 'lobby', { offset: 297, epoch });
      assert.equal(recent.recovered, true);
      assert.deepEqual(
        (await pushes(kept, 3)).map((push) => (push.data as { text: string }).text),
        ['m298', 'm299', 'm300'],
      );
    });

    // Tests that kill or freeze the one server.
    if (target.kind === 'cluster') {
      return;
    }

    it('a Redis that restarted without its data gives the room a new epoch: the old position is not recovered', async () => {
      const [one, two] = await instances(2);
      const [alice, { epoch }] = await member(one!, 'alice', 'lobby');
      const [bob] = await member(two!, 'bob', 'lobby');
      for (const text of ['a', 'b']) {
        bob.send({ event: 'send', data: { room: 'lobby', text } });
      }
      assert.deepEqual(
        (await pushes(alice, 2)).map((push) => push.offset),
        [1, 2],
      );
      await pushes(bob, 2);
      await redis.kill();
      await until(() => one!.hub.health().status === 'degraded' && two!.hub.health().status === 'degraded', 'degraded');
      await redis.run();
      await until(() => one!.hub.health().status === 'ok' && two!.hub.health().status === 'ok', 'ok again', 10_000);
      bob.send({ event: 'send-acked', id: 'after', data: { room: 'lobby', text: 'after' } });
      // bob is a member: his own copy, then the reply.
      const [own, reply] = [await bob.nextJson(), await bob.nextJson()];
      assert.equal(own.offset, 1, JSON.stringify(own));
      assert.equal((reply.data as { offset: number }).offset, 1, JSON.stringify(reply));
      // alice, who stayed, gets it: her instance starts the room over with the new epoch.
      assert.equal((await pushes(alice, 1))[0].offset, 1);
      const [, rejoined] = await member(two!, 'carol', 'lobby', { offset: 2, epoch });
      assert.equal(rejoined.recovered, false);
      assert.notEqual(rejoined.epoch, epoch);
      assert.equal(rejoined.offset, 1);
    });

    it('Redis stopped for 3 s while members stay connected: every send is answered, and every acknowledged one reaches every member once, in order', async () => {
      const [one, two] = await instances(2, { commandTimeoutMs: 300, healthCheckMs: 100 });
      const [alice] = await member(one!, 'alice', 'lobby');
      const [bob] = await member(two!, 'bob', 'lobby');
      const outcomes = new Map<string, number | string>();
      const watch = (client: TestClient, frames: Frame[]): void => {
        client.socket.on('message', (data: Buffer) => frames.push(JSON.parse(data.toString()) as Frame));
      };
      const aliceFrames: Frame[] = [];
      const bobFrames: Frame[] = [];
      watch(alice, aliceFrames);
      watch(bob, bobFrames);
      let sent = 0;
      const send = (): void => {
        const id = `s${sent++}`;
        (sent % 2 === 0 ? alice : bob).send({ event: 'send-acked', id, data: { room: 'lobby', text: id } });
      };
      for (let i = 0; i < 10; i++) {
        send();
      }
      redis.pause();
      try {
        const stallEnds = Date.now() + 3000;
        while (Date.now() < stallEnds) {
          send();
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      } finally {
        redis.resume();
      }
      for (let i = 0; i < 10; i++) {
        send();
      }
      const answered = (): void => {
        for (const frame of [...aliceFrames, ...bobFrames]) {
          if (typeof frame.id === 'string' && frame.id.startsWith('s')) {
            outcomes.set(
              frame.id,
              frame.event === 'send-acked' ? (frame.data as { offset: number }).offset : String((frame.data as Frame).code),
            );
          }
        }
      };
      await until(
        () => {
          answered();
          return outcomes.size === sent;
        },
        'an answer to every send',
        15_000,
      );
      const offsets = [...outcomes.values()].filter((outcome): outcome is number => typeof outcome === 'number').sort((a, b) => a - b);
      const refusals = [...outcomes.values()].filter((outcome) => typeof outcome === 'string');
      assert.ok(
        refusals.every((code) => code === 'UNAVAILABLE'),
        `refusals: ${refusals.join()}`,
      );
      assert.deepEqual(
        offsets,
        Array.from({ length: offsets.length }, (_, i) => i + 1),
      );
      for (const frames of [aliceFrames, bobFrames]) {
        await until(
          () => frames.filter((frame) => frame.event === 'message').length >= offsets.length,
          'every acknowledged message',
          10_000,
        );
        assert.deepEqual(
          frames.filter((frame) => frame.event === 'message').map((frame) => frame.offset),
          offsets,
        );
      }
    });

    it('refuses a rejoin with UNAVAILABLE while Redis cannot be asked, and the client SDK tries again until it recovers', async () => {
      const [one] = await instances(1, { commandTimeoutMs: 300, healthCheckMs: 100 });
      const sdk = new RealtimeClient(one!.wsUrl('/rooms'), {
        WebSocket,
        token: () => tokenFor('alice'),
        backoff: { initialMs: 20, maxMs: 100 },
        pingIntervalMs: false,
      });
      try {
        const texts: string[] = [];
        sdk.on('message', (data) => texts.push((data as { text: string }).text));
        const rejoins: RoomRejoin[] = [];
        sdk.onRejoin((rejoin) => rejoins.push(rejoin));
        const { epoch } = await sdk.join<{ epoch: string }>('lobby');
        const outside = await one!.connect('publisher');
        clients.push(outside);
        await outside.request({ event: 'send-acked', id: 1, data: { room: 'lobby', text: 'before' } });
        await until(() => texts.length === 1, 'the first message');
        sdk.disconnect();
        await outside.request({ event: 'send-acked', id: 2, data: { room: 'lobby', text: 'missed' } });
        redis.pause();
        try {
          await until(() => one!.hub.health().status === 'degraded', 'degraded');
          // Whether a since can be recovered cannot be told now: not a "no", and not joined.
          const [carol] = [await one!.connect('carol')];
          clients.push(carol);
          const refused = await carol.request({ event: 'join', id: 'j', data: { room: 'lobby', since: { offset: 0, epoch } } });
          assert.deepEqual(refused, {
            event: 'error',
            id: 'j',
            data: { code: 'UNAVAILABLE', message: 'the room history cannot be read now; join again shortly' },
          });
          assert.deepEqual((await carol.request({ event: 'rooms', id: 'r' })).data, []);
          sdk.connect();
          await until(() => sdk.state === 'open', 'the client to reconnect');
          assert.deepEqual(rejoins, []);
        } finally {
          redis.resume();
        }
        await until(() => rejoins.length === 1, 'the rejoin, tried again', 10_000);
        assert.equal((rejoins as RoomRejoin[])[0]!.recovered, true);
        await until(() => texts.length === 2, 'the missed message');
        assert.deepEqual(texts, ['before', 'missed']);
      } finally {
        sdk.disconnect();
      }
    });
  });
