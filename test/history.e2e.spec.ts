import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { MemoryBroker, MemoryBus, type RealtimeModuleOptions } from '../src/index.js';
import { RealtimeClient, type RoomRejoin } from '../src/client/index.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until } from './support/until.js';
import type { TestClient } from './support/ws-client.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

type Frame = Record<string, unknown>;

describe('room offsets, history and recovery (protocol §7, in-memory broker)', () => {
  const apps: RoomsApp[] = [];
  const clients: TestClient[] = [];
  const sdkClients: RealtimeClient[] = [];

  afterEach(async () => {
    sdkClients.splice(0).forEach((client) => client.disconnect());
    clients.splice(0).forEach((client) => client.close());
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  async function app(options: RealtimeModuleOptions = {}, broker?: MemoryBroker, port = 0): Promise<RoomsApp> {
    const started = await startRoomsApp(broker, undefined, port, { limits: { messageRate: false, userMessageRate: false }, ...options });
    apps.push(started);
    return started;
  }

  async function member(on: RoomsApp, sub: string, room: string, since?: { offset: number; epoch: unknown }): Promise<[TestClient, Frame]> {
    const client = await on.connect(sub);
    clients.push(client);
    const reply = await client.request({ event: 'join', id: 'j', data: since ? { room, since } : { room } });
    assert.equal(reply.event, 'join', JSON.stringify(reply));
    return [client, reply.data as Frame];
  }

  /** A connection in no room, so that the reply to a send is its next frame. */
  async function publisher(on: RoomsApp): Promise<TestClient> {
    const client = await on.connect('publisher');
    clients.push(client);
    return client;
  }

  async function sendAcked(client: TestClient, room: string, text: string): Promise<number> {
    const reply = await client.request({ event: 'send-acked', id: text, data: { room, text } });
    assert.equal(reply.event, 'send-acked', JSON.stringify(reply));
    return (reply.data as { offset: number }).offset;
  }

  /** The next `count` frames of a client, as JSON. */
  async function frames(client: TestClient, count: number): Promise<Frame[]> {
    const got: Frame[] = [];
    for (let i = 0; i < count; i++) {
      got.push(await client.nextJson());
    }
    return got;
  }

  it('numbers every room push, and answers a join with the room position', async () => {
    const on = await app();
    const [alice, joinedAt] = await member(on, 'alice', 'lobby');
    assert.equal(joinedAt.offset, 0);
    assert.match(String(joinedAt.epoch), /^[A-Za-z0-9_-]+$/);
    assert.equal('recovered' in joinedAt, false);
    const [bob] = await member(on, 'bob', 'lobby');
    const outside = await publisher(on);
    assert.equal(await sendAcked(outside, 'lobby', 'one'), 1);
    for (const client of [alice, bob]) {
      assert.deepEqual(await client.nextJson(), { offset: 1, event: 'message', room: 'lobby', data: { from: 'publisher', text: 'one' } });
    }
    assert.equal(await sendAcked(outside, 'lobby', 'two'), 2);
    assert.equal((await alice.nextJson()).offset, 2);
  });

  it('gives a join with since what it missed, right after the reply and before anything newer, once each', async () => {
    const on = await app();
    const [alice, { epoch }] = await member(on, 'alice', 'lobby');
    const [bob] = await member(on, 'bob', 'lobby');
    const outside = await publisher(on);
    await sendAcked(outside, 'lobby', 'm1');
    assert.equal((await alice.nextJson()).offset, 1);
    alice.close();
    for (const text of ['m2', 'm3', 'm4']) {
      await sendAcked(outside, 'lobby', text);
    }
    // alice comes back from offset 1; bob sends again while the join is being handled.
    const back = await on.connect('alice');
    clients.push(back);
    back.send({ event: 'join', id: 'back', data: { room: 'lobby', since: { offset: 1, epoch } } });
    bob.send({ event: 'send', data: { room: 'lobby', text: 'm5' } });
    const [reply, ...pushes] = await frames(back, 5);
    assert.equal(reply.event, 'join', JSON.stringify(reply));
    assert.equal((reply.data as Frame).recovered, true);
    assert.equal((reply.data as Frame).epoch, epoch);
    assert.deepEqual(
      pushes.map((push) => [push.offset, (push.data as Frame).text]),
      [
        [2, 'm2'],
        [3, 'm3'],
        [4, 'm4'],
        [5, 'm5'],
      ],
    );
    // Nothing more: each message came once.
    assert.equal((await back.request({ event: 'rooms', id: 'r' })).id, 'r');
  });

  it('answers recovered: false, and replays nothing, when history lost messages or the epoch differs', async () => {
    const on = await app({ history: { size: 3, ttlMs: 60_000 } });
    const [bob, { epoch }] = await member(on, 'bob', 'lobby');
    const outside = await publisher(on);
    for (const text of ['a', 'b', 'c', 'd', 'e']) {
      await sendAcked(outside, 'lobby', text);
    }
    await frames(bob, 5);
    const [overflow, overflowReply] = await member(on, 'alice', 'lobby', { offset: 1, epoch });
    assert.deepEqual(overflowReply, { room: 'lobby', members: ['alice', 'bob'], offset: 5, epoch, recovered: false });
    const [otherEpoch, otherReply] = await member(on, 'carol', 'lobby', { offset: 4, epoch: 'not-this-one' });
    assert.equal(otherReply.recovered, false);
    // The next thing each gets is the next live message, not a replay.
    await sendAcked(outside, 'lobby', 'f');
    assert.equal((await overflow.nextJson()).offset, 6);
    assert.equal((await otherEpoch.nextJson()).offset, 6);
    // Fully kept: recovered, the last three replayed.
    const [kept, keptReply] = await member(on, 'dave', 'lobby', { offset: 3, epoch });
    assert.equal(keptReply.recovered, true);
    assert.deepEqual(
      (await frames(kept, 3)).map((push) => push.offset),
      [4, 5, 6],
    );
  });

  it('leaves the sender out with except, also when the message comes back through the broker', async () => {
    const on = await app();
    const [alice] = await member(on, 'alice', 'lobby');
    const [bob] = await member(on, 'bob', 'lobby');
    alice.send({ event: 'send-others', data: { room: 'lobby', text: 'psst' } });
    assert.deepEqual(await bob.nextJson(), { offset: 1, event: 'message', room: 'lobby', data: { from: 'alice', text: 'psst' } });
    assert.equal((await alice.request({ event: 'rooms', id: 'a' })).id, 'a');
  });

  it('with history: false, pushes carry no offset and a join no position', async () => {
    const on = await app({ history: false });
    const [alice, reply] = await member(on, 'alice', 'lobby');
    assert.deepEqual(reply, { room: 'lobby', members: ['alice'] });
    assert.equal(await sendAcked(await publisher(on), 'lobby', 'x'), undefined);
    assert.deepEqual(await alice.nextJson(), { event: 'message', room: 'lobby', data: { from: 'publisher', text: 'x' } });
  });

  it('the client SDK joins again after a reconnection with since, and delivers what it missed once, in order', async () => {
    const bus = new MemoryBus();
    const first = await app({}, new MemoryBroker({ bus }));
    const other = await app({}, new MemoryBroker({ bus }));
    const port = first.port;
    const sdk = new RealtimeClient(first.wsUrl('/rooms'), {
      WebSocket,
      token: () => tokenFor('alice'),
      backoff: { initialMs: 20, maxMs: 100 },
      pingIntervalMs: false,
    });
    sdkClients.push(sdk);
    const texts: string[] = [];
    const offsets: number[] = [];
    sdk.on('message', (data, frame) => {
      texts.push((data as { text: string }).text);
      offsets.push(frame.offset!);
    });
    const rejoins: RoomRejoin[] = [];
    sdk.onRejoin((rejoin) => rejoins.push(rejoin));
    await sdk.join('lobby');
    const bob = await publisher(other);
    await sendAcked(bob, 'lobby', 'before');
    await until(() => texts.length === 1, 'the first message');

    await first.close();
    apps.splice(apps.indexOf(first), 1);
    await until(() => sdk.state !== 'open', 'the client to notice');
    for (const text of ['gone 1', 'gone 2', 'gone 3']) {
      await sendAcked(bob, 'lobby', text);
    }
    await app({}, new MemoryBroker({ bus }), port);
    await until(() => rejoins.length === 1, 'the rejoin', 10_000);
    assert.equal(rejoins[0].room, 'lobby');
    assert.equal(rejoins[0].recovered, true);
    await sendAcked(bob, 'lobby', 'after');
    await until(() => texts.length === 5, 'every message');
    assert.deepEqual(texts, ['before', 'gone 1', 'gone 2', 'gone 3', 'after']);
    assert.deepEqual(offsets, [1, 2, 3, 4, 5]);
  });
});
