import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  BrokerUnavailableError,
  type BrokerMessageListener,
  type HistoryPage,
  type HistoryPolicy,
  MemoryBroker,
  MemoryBus,
  type RealtimeModuleOptions,
  type StreamPosition,
} from '../src/index.js';
import { RoomTracker } from '../src/client/room-tracker.js';
import { RealtimeClient, RealtimeClientError, type RoomRejoin } from '../src/client/index.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until } from './support/until.js';
import type { TestClient } from './support/ws-client.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

type Frame = Record<string, unknown>;

/** What waits on it (`passed`) waits from `close()` to `open()`; it starts open. */
class Gate {
  private closed: Promise<void> | undefined;
  private release: (() => void) | undefined;

  close(): void {
    this.closed = new Promise((resolve) => (this.release = resolve));
  }

  open(): void {
    this.release?.();
    this.closed = undefined;
  }

  /** Resolves once the gate is open. */
  passed(): Promise<void> | undefined {
    return this.closed;
  }
}

/** A memory broker that can lose the next room messages it delivers, and fail the next history reads, as an outage would. */
class LossyBroker extends MemoryBroker {
  dropNext = 0;
  failHistory = 0;
  historyReads = 0;
  /** History reads are made at once, and answered once it is open. */
  readonly historyAnswers = new Gate();

  override start(instanceId: string, onMessage: BrokerMessageListener): Promise<void> {
    return super.start(instanceId, (channel, payload, position) => {
      if (position && this.dropNext > 0) {
        this.dropNext--;
        return;
      }
      onMessage(channel, payload, position);
    });
  }

  override history(channel: string, since: StreamPosition | undefined, policy: HistoryPolicy): Promise<HistoryPage> {
    this.historyReads++;
    if (this.failHistory > 0) {
      this.failHistory--;
      return Promise.reject(new BrokerUnavailableError('not now'));
    }
    const gate = this.historyAnswers.passed();
    return super.history(channel, since, policy).then(async (page) => {
      await gate;
      return page;
    });
  }
}

/** A memory broker that refuses publishes while `refusing`, as a broker whose outage queue is full does. */
class RefusingBroker extends MemoryBroker {
  refusing = false;

  override publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined> {
    return this.refusing ? Promise.reject(new BrokerUnavailableError('queue full')) : super.publish(channel, payload, history);
  }
}

/** A memory broker whose presence updates wait until released, as a slow broker's would. */
class SlowPresenceBroker extends MemoryBroker {
  presenceCalls = 0;
  /** Presence updates wait for it to be open. */
  readonly presenceUpdates = new Gate();

  override async addPresence(room: string, member: string): Promise<void> {
    this.presenceCalls++;
    await this.presenceUpdates.passed();
    return super.addPresence(room, member);
  }
}

describe('room offsets, history and recovery (docs/protocol.md §7, in-memory broker)', () => {
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

  it('sends a joining connection nothing before its reply, also what is published while the join waits for the broker', async () => {
    const broker = new SlowPresenceBroker();
    const on = await app({}, broker);
    const [alice, { epoch }] = await member(on, 'alice', 'lobby');
    await member(on, 'bob', 'lobby'); // the room stays open on this instance
    const outside = await publisher(on);
    await sendAcked(outside, 'lobby', 'm1');
    assert.equal((await alice.nextJson()).offset, 1);
    alice.close();
    await sendAcked(outside, 'lobby', 'm2');
    const back = await on.connect('alice');
    clients.push(back);
    broker.presenceUpdates.close();
    const calls = broker.presenceCalls;
    back.send({ event: 'join', id: 'back', data: { room: 'lobby', since: { offset: 1, epoch } } });
    await until(() => broker.presenceCalls > calls, 'the join to wait for presence');
    await sendAcked(outside, 'lobby', 'm3'); // published while alice is a member, before her reply
    broker.presenceUpdates.open();
    const [reply, ...pushes] = await frames(back, 3);
    assert.equal(reply.event, 'join', JSON.stringify(reply));
    assert.equal((reply.data as Frame).recovered, true);
    assert.deepEqual(
      pushes.map((push) => [push.offset, (push.data as Frame).text]),
      [
        [2, 'm2'],
        [3, 'm3'],
      ],
    );
    assert.equal((await back.request({ event: 'rooms', id: 'r' })).id, 'r'); // nothing more: each came once
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

  it('with history: false, a message the broker refuses reaches no member: the sender, told UNAVAILABLE, may send it again', async () => {
    const broker = new RefusingBroker();
    const on = await app({ history: false }, broker);
    const [alice] = await member(on, 'alice', 'lobby');
    const sender = await publisher(on);
    broker.refusing = true;
    const refused = await sender.request({ event: 'send-acked', id: 'x', data: { room: 'lobby', text: 'x' } });
    assert.deepEqual([refused.event, (refused.data as Frame).code], ['error', 'UNAVAILABLE']);
    broker.refusing = false;
    assert.equal(await sendAcked(sender, 'lobby', 'again'), undefined);
    // The refused one never came: the member's next frame is the message sent again.
    assert.deepEqual(await alice.nextJson(), { event: 'message', room: 'lobby', data: { from: 'publisher', text: 'again' } });
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

  it('fills a gap from history before anything newer, reading again when the first read fails', async () => {
    const bus = new MemoryBus();
    const lossy = new LossyBroker({ bus });
    const one = await app({}, lossy);
    const two = await app({}, new MemoryBroker({ bus }));
    const [alice] = await member(one, 'alice', 'lobby');
    const outside = await publisher(two);
    await sendAcked(outside, 'lobby', 'a');
    assert.equal((await alice.nextJson()).offset, 1);
    lossy.dropNext = 1;
    lossy.failHistory = 1;
    const readsBefore = lossy.historyReads;
    await sendAcked(outside, 'lobby', 'b'); // lost on alice's instance
    await sendAcked(outside, 'lobby', 'c'); // shows the gap; the first read fails, the next one a second later fills it
    const pushes = await frames(alice, 2);
    assert.deepEqual(
      pushes.map((push) => [push.offset, (push.data as { text: string }).text]),
      [
        [2, 'b'],
        [3, 'c'],
      ],
    );
    assert.equal(lossy.historyReads - readsBefore, 2);
  });

  it('answers a join of a room the client is in with the position, and loses nothing meanwhile', async () => {
    const on = await app();
    const [alice] = await member(on, 'alice', 'lobby');
    const outside = await publisher(on);
    alice.send({ event: 'join', id: 'again', data: { room: 'lobby', since: { offset: 0, epoch: 'whatever' } } });
    await sendAcked(outside, 'lobby', 'meanwhile');
    const got = await frames(alice, 2);
    const reply = got.find((frame) => frame.id === 'again')!;
    const push = got.find((frame) => frame.event === 'message')!;
    assert.equal((reply.data as Frame).epoch !== undefined, true);
    // Nothing is replayed to a member: with since, the reply says so (recovered: false).
    assert.equal((reply.data as Frame).recovered, false);
    assert.equal((push.data as { text: string }).text, 'meanwhile');
    assert.equal((await alice.request({ event: 'rooms', id: 'r' })).id, 'r');
  });

  it('replays to a join with since that follows a join and a leave still under way on the same connection', async () => {
    const on = await app();
    const outside = await publisher(on);
    for (const text of ['m1', 'm2', 'm3']) {
      await sendAcked(outside, 'lobby', text);
    }
    const alice = await on.connect('alice');
    clients.push(alice);
    const [socket] = on.hub.localClientsOf('alice');
    const { epoch } = (await on.hub.join(socket!, 'lobby'))!;
    await on.hub.leave(socket!, 'lobby');
    for (const text of ['m4', 'm5']) {
      await sendAcked(outside, 'lobby', text);
    }
    // Back to back: the first join still waits for the broker when the leave and the second join come.
    const first = on.hub.join(socket!, 'lobby');
    const left = on.hub.leave(socket!, 'lobby');
    const second = on.hub.join(socket!, 'lobby', { since: { offset: 3, epoch } });
    await Promise.all([first, left]);
    assert.deepEqual(await second, { offset: 5, epoch, recovered: true });
    const pushes = await frames(alice, 2);
    assert.deepEqual(
      pushes.map((push) => [push.offset, (push.data as Frame).text]),
      [
        [4, 'm4'],
        [5, 'm5'],
      ],
    );
  });

  it('joins afresh when a second join of a room comes while the first, which then fails, is under way', async () => {
    const broker = new LossyBroker();
    const on = await app({}, broker);
    const outside = await publisher(on);
    await sendAcked(outside, 'lobby', 'm1');
    const alice = await on.connect('alice');
    clients.push(alice);
    const [socket] = on.hub.localClientsOf('alice');
    broker.failHistory = 1;
    const first = on.hub.join(socket!, 'lobby', { since: { offset: 0, epoch: 'old' } });
    const second = on.hub.join(socket!, 'lobby');
    await assert.rejects(first, { code: 'UNAVAILABLE' });
    assert.equal((await second)?.offset, 1);
    assert.equal(on.hub.isInRoom(socket!, 'lobby'), true, 'the second join, answered ok, left the client out');
  });

  it('answers a sender on the instance that lost its message after limits.brokerTimeoutMs at the latest', async () => {
    const broker = new LossyBroker();
    const on = await app({ limits: { brokerTimeoutMs: 300 } }, broker);
    const [alice] = await member(on, 'alice', 'lobby');
    const outside = await publisher(on);
    broker.dropNext = 1; // never comes back to this instance: its members are not handed it
    const started = performance.now();
    assert.equal(await sendAcked(outside, 'lobby', 'lost'), 1);
    const took = performance.now() - started;
    assert.ok(took >= 250 && took < 3000, `answered after ${Math.round(took)} ms`);
    // The next one shows the gap, which is filled from history: alice gets both, in order.
    await sendAcked(outside, 'lobby', 'next');
    assert.deepEqual(
      (await frames(alice, 2)).map((push) => push.offset),
      [1, 2],
    );
  });

  /**
   * A room whose history lives 300 ms after its last message, alice in it, and its first
   * message (m1) delivered; its publisher on another instance, whose answers do not wait for
   * what this one is made to lose.
   */
  async function shortHistoryRoom(): Promise<{ broker: LossyBroker; on: RoomsApp; alice: TestClient; outside: TestClient }> {
    const bus = new MemoryBus();
    const broker = new LossyBroker({ bus });
    const history = { size: 100, ttlMs: 300 };
    const on = await app({ history }, broker);
    const [alice] = await member(on, 'alice', 'lobby');
    const outside = await publisher(await app({ history }, new MemoryBroker({ bus })));
    await sendAcked(outside, 'lobby', 'm1');
    assert.equal((await alice.nextJson()).offset, 1);
    return { broker, on, alice, outside };
  }

  it('keeps pushing to a joiner whose join named an epoch that was lost before this instance got there', async () => {
    const { broker, on, alice, outside } = await shortHistoryRoom();
    broker.dropNext = 1; // m2 is still on its way to this instance when bob joins
    await sendAcked(outside, 'lobby', 'm2');
    const [bob, joined] = await member(on, 'bob', 'lobby');
    assert.equal(joined.offset, 2, "bob's join read the history: offset 2");
    await new Promise((resolve) => setTimeout(resolve, 400)); // the history expires: the next message starts a new epoch
    await sendAcked(outside, 'lobby', 'new epoch');
    const push = await bob.nextJson();
    assert.deepEqual([push.offset, (push.data as Frame).text], [1, 'new epoch']);
    assert.equal((await alice.nextJson()).offset, 1);
  });

  it("keeps pushing to a joiner whose join's history read answered after this instance moved on to a new epoch", async () => {
    const { broker, on, alice, outside } = await shortHistoryRoom();
    const bob = await on.connect('bob');
    clients.push(bob);
    broker.historyAnswers.close(); // bob's join reads the epoch of m1, and its answer comes late
    const reads = broker.historyReads;
    bob.send({ event: 'join', id: 'j', data: { room: 'lobby' } });
    await until(() => broker.historyReads > reads, "bob's history read");
    await new Promise((resolve) => setTimeout(resolve, 400)); // the history expires: the next message starts a new epoch
    await sendAcked(outside, 'lobby', 'new epoch');
    assert.equal((await alice.nextJson()).offset, 1);
    broker.historyAnswers.open();
    const [reply, push] = await frames(bob, 2);
    assert.equal(reply.id, 'j', JSON.stringify(reply));
    assert.deepEqual([push!.offset, (push!.data as Frame).text], [1, 'new epoch']);
    await sendAcked(outside, 'lobby', 'later');
    assert.equal((await bob.nextJson()).offset, 2);
  });

  it('refuses a since that is not {offset, epoch} with BAD_REQUEST', async () => {
    const on = await app();
    const client = await on.connect('alice');
    clients.push(client);
    for (const since of [
      { offset: -1, epoch: 'e' },
      { offset: 1.5, epoch: 'e' },
      { offset: 1 },
      { offset: 1, epoch: 'x'.repeat(65) },
      'nope',
    ]) {
      const reply = await client.request({ event: 'join', id: 'j', data: { room: 'lobby', since } });
      assert.equal((reply.data as { code: string }).code, 'BAD_REQUEST', JSON.stringify(since));
    }
    assert.deepEqual((await client.request({ event: 'rooms', id: 'r' })).data, []);
  });
});

describe('client SDK room tracking', () => {
  it('counts the pushes a transport hands over before the join reply is handled', async () => {
    const tracker = new RoomTracker();
    const joined = tracker.track('lobby', {}, async () => {
      await Promise.resolve();
      // ws hands over the reply and the pushes right behind it in one go: these run first.
      tracker.seen({ event: 'message', room: 'lobby', offset: 4 });
      tracker.seen({ event: 'message', room: 'lobby', offset: 5 });
      return { room: 'lobby', offset: 3, epoch: 'E' };
    });
    await joined;
    const bodies: Record<string, unknown>[] = [];
    await tracker.rejoinAll({
      request: (body) => {
        bodies.push(body);
        return Promise.resolve({ offset: 5, epoch: 'E', recovered: true });
      },
      fail: (error) => assert.fail(String(error)),
      guard: (call) => call(),
      later: () => undefined,
    });
    assert.deepEqual(bodies, [{ room: 'lobby', since: { offset: 5, epoch: 'E' } }]);
  });

  it("after a first join with the application's own since, goes on from its replay, not from the room's top", async () => {
    const tracker = new RoomTracker();
    // Recovered: offsets 11 to 20 follow the reply; the connection drops after 14.
    await tracker.track('lobby', { since: { offset: 10, epoch: 'E' } }, () =>
      Promise.resolve({ room: 'lobby', offset: 20, epoch: 'E', recovered: true }),
    );
    for (let offset = 11; offset <= 14; offset++) {
      tracker.seen({ event: 'message', room: 'lobby', offset });
    }
    const { bodies, io } = recording({ offset: 20, epoch: 'E', recovered: true });
    await tracker.rejoinAll(io);
    assert.deepEqual(bodies, [{ room: 'lobby', since: { offset: 14, epoch: 'E' } }]);
    // Not recovered (or another epoch): the room goes on from the reply's position.
    const other = new RoomTracker();
    await other.track('lobby', { since: { offset: 10, epoch: 'E' } }, () =>
      Promise.resolve({ room: 'lobby', offset: 3, epoch: 'F', recovered: false }),
    );
    const second = recording({ offset: 3, epoch: 'F', recovered: true });
    await other.rejoinAll(second.io);
    assert.deepEqual(second.bodies, [{ room: 'lobby', since: { offset: 3, epoch: 'F' } }]);
  });

  it('after a rejoin into a new epoch, goes on from the offsets of that epoch, not from what the old connection saw', async () => {
    const tracker = new RoomTracker();
    await tracker.track('lobby', {}, () => Promise.resolve({ room: 'lobby', offset: 800, epoch: 'E1' }));
    for (let offset = 801; offset <= 805; offset++) {
      tracker.seen({ event: 'message', room: 'lobby', offset });
    }
    const bodies: Record<string, unknown>[] = [];
    const replies = [
      { offset: 2, epoch: 'E2', recovered: false },
      { offset: 4, epoch: 'E2', recovered: true },
    ];
    const io = {
      request: (body: Record<string, unknown>) => (bodies.push(body), Promise.resolve(replies[bodies.length - 1])),
      fail: (error: unknown) => assert.fail(String(error)),
      guard: (call: () => void) => call(),
      later: () => undefined,
    };
    await tracker.rejoinAll(io); // the broker lost the room's history: E2 starts over
    tracker.seen({ event: 'message', room: 'lobby', offset: 3 });
    await tracker.rejoinAll(io);
    assert.deepEqual(bodies, [
      { room: 'lobby', since: { offset: 805, epoch: 'E1' } },
      { room: 'lobby', since: { offset: 3, epoch: 'E2' } },
    ]);
  });

  /** Rejoin I/O that records the bodies sent and answers each with `reply`. */
  function recording(reply: unknown = { offset: 1, epoch: 'E' }) {
    const bodies: unknown[] = [];
    const io = {
      request: (body: Record<string, unknown>) => (bodies.push(body), Promise.resolve(reply)),
      fail: (error: unknown) => assert.fail(String(error)),
      guard: (call: () => void) => call(),
      later: () => undefined,
    };
    return { bodies, io };
  }

  it('keeps a room left while its join was in flight untracked once the reply comes', async () => {
    const tracker = new RoomTracker();
    let answer!: (reply: unknown) => void;
    const joined = tracker.track('lobby', {}, () => new Promise((resolve) => (answer = resolve)));
    tracker.left('lobby'); // the leave goes out behind the join: the server ends with the client out
    answer({ room: 'lobby', offset: 3, epoch: 'E' });
    await joined;
    const { bodies, io } = recording();
    await tracker.rejoinAll(io);
    assert.deepEqual(bodies, [], 'a reconnection joined again a room the client had left');
  });

  for (const again of [false, true]) {
    it(`tells no listener of a rejoin whose room was left${again ? ' and joined again' : ''} meanwhile`, async () => {
      const tracker = new RoomTracker();
      await tracker.track('lobby', {}, () => Promise.resolve({ room: 'lobby', offset: 3, epoch: 'E' }));
      const rejoins: unknown[] = [];
      tracker.onRejoin((rejoin) => rejoins.push(rejoin));
      let answer!: (reply: unknown) => void;
      const rejoined = tracker.rejoinAll({
        request: () => new Promise((resolve) => (answer = resolve)),
        fail: (error) => assert.fail(String(error)),
        guard: (call) => call(),
        later: () => undefined,
      });
      tracker.left('lobby');
      if (again) {
        await tracker.track('lobby', {}, () => Promise.resolve({ room: 'lobby', offset: 8, epoch: 'E' }));
      }
      answer({ offset: 4, epoch: 'E', recovered: true });
      await rejoined;
      assert.deepEqual(rejoins, []);
      const { bodies, io } = recording();
      await tracker.rejoinAll(io);
      // Left: not joined again; joined again: from that join's position, not the late rejoin's.
      assert.deepEqual(bodies, again ? [{ room: 'lobby', since: { offset: 8, epoch: 'E' } }] : []);
    });
  }

  it("goes on from a room's latest join when an earlier join of it, left since, is answered last", async () => {
    const tracker = new RoomTracker();
    let answerFirst!: (reply: unknown) => void;
    const first = tracker.track('lobby', {}, () => new Promise((resolve) => (answerFirst = resolve)));
    tracker.left('lobby');
    await tracker.track('lobby', {}, () => Promise.resolve({ room: 'lobby', offset: 9, epoch: 'E2' }));
    answerFirst({ room: 'lobby', offset: 3, epoch: 'E1' });
    await first;
    const { bodies, io } = recording();
    await tracker.rejoinAll(io);
    assert.deepEqual(bodies, [{ room: 'lobby', since: { offset: 9, epoch: 'E2' } }]);
  });

  it('keeps tracking a room joined again when an earlier first join of it fails late', async () => {
    const tracker = new RoomTracker();
    let refuse!: (error: Error) => void;
    const first = tracker.track('lobby', {}, () => new Promise((_, reject) => (refuse = reject)));
    tracker.left('lobby');
    await tracker.track('lobby', {}, () => Promise.resolve({ room: 'lobby', offset: 7, epoch: 'E' }));
    refuse(new Error('refused'));
    await assert.rejects(first, /refused/);
    const { bodies, io } = recording();
    await tracker.rejoinAll(io);
    assert.deepEqual(bodies, [{ room: 'lobby', since: { offset: 7, epoch: 'E' } }]);
  });

  /** A tracker that joined `lobby` (offset 3, epoch E), and the rejoins it tells of. */
  async function joinedLobby(): Promise<{ tracker: RoomTracker; rejoins: unknown[] }> {
    const tracker = new RoomTracker();
    await tracker.track('lobby', {}, () => Promise.resolve({ room: 'lobby', offset: 3, epoch: 'E' }));
    const rejoins: unknown[] = [];
    tracker.onRejoin(({ room, recovered }) => rejoins.push({ room, recovered }));
    return { tracker, rejoins };
  }

  it('tries a rejoin again when it timed out, as when the server could not answer it', async () => {
    const { tracker, rejoins } = await joinedLobby();
    const failures: unknown[] = [];
    const codes = ['TIMEOUT', 'UNAVAILABLE'];
    const bodies: unknown[] = [];
    await tracker.rejoinAll({
      request: (body) => {
        bodies.push(body);
        const code = codes.shift();
        return code
          ? Promise.reject(Object.assign(new Error(code), { code }))
          : Promise.resolve({ offset: 3, epoch: 'E', recovered: true });
      },
      fail: (error) => failures.push(error),
      guard: (call) => call(),
      later: (_ms, call) => setImmediate(call),
    });
    await until(() => rejoins.length === 1, 'the rejoin, tried a third time');
    assert.deepEqual(rejoins, [{ room: 'lobby', recovered: true }]);
    assert.deepEqual(failures, []);
    assert.equal(bodies.length, 3);
  });

  it('goes on trying a rejoin the server cannot answer past its retries, telling the application once, naming the room', async () => {
    const { tracker, rejoins } = await joinedLobby();
    const failures: RealtimeClientError[] = [];
    const pauses: number[] = [];
    let tries = 0;
    await tracker.rejoinAll({
      request: () => {
        tries++;
        const unavailable = Object.assign(new Error('the room history cannot be read now'), { code: 'UNAVAILABLE' });
        return tries <= 10 ? Promise.reject(unavailable) : Promise.resolve({ offset: 3, epoch: 'E', recovered: true });
      },
      fail: (error) => failures.push(error as RealtimeClientError),
      guard: (call) => call(),
      later: (ms, call) => (pauses.push(ms), setImmediate(call)),
    });
    await until(() => rejoins.length === 1, 'the rejoin, once the server answers (the 11th try)');
    assert.deepEqual(rejoins, [{ room: 'lobby', recovered: true }]);
    assert.deepEqual(pauses, [500, 1000, 2000, 4000, 8000, 8000, 8000, 8000, 8000, 8000]);
    assert.equal(failures.length, 1);
    assert.ok(failures[0] instanceof RealtimeClientError);
    assert.equal(failures[0].code, 'UNAVAILABLE');
    assert.equal(failures[0].message, 'room "lobby" could not be joined again yet (still trying): the room history cannot be read now');
  });

  it('forgets a room whose first join failed', async () => {
    const tracker = new RoomTracker();
    await assert.rejects(
      tracker.track('lobby', {}, () => Promise.reject(new Error('refused'))),
      /refused/,
    );
    const bodies: unknown[] = [];
    await tracker.rejoinAll({
      request: (body) => (bodies.push(body), Promise.resolve({})),
      fail: () => undefined,
      guard: (call) => call(),
      later: () => undefined,
    });
    assert.deepEqual(bodies, []);
  });
});
