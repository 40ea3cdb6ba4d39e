import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { type BrokerHealth, MemoryBroker, MemoryBus } from '../src/index.js';
import { CapturingLogger } from './fixtures/auth-gateways.js';
import { RealtimeTestClient, signTestToken } from '../src/testing/index.js';
import { only, refusedWith } from './support/realtime-assert.js';
import { startRoomsApp, type RoomsApp } from './support/rooms-app.js';
import { now } from './support/tokens.js';
import { until, within } from './support/until.js';
import type { TestClient } from './support/ws-client.js';
import { countServerWrites } from './support/socket-writes.js';

/** A memory broker whose subscriptions take `delayMs` to be in place. */
class SlowBroker extends MemoryBroker {
  delayMs = 0;
  readonly done = new Set<string>();

  override async subscribe(channel: string): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    await super.subscribe(channel);
    this.done.add(channel);
  }
}

/** A memory broker that breaks the contract once told to: its unsubscribe, removePresence and health() throw. */
class ThrowingBroker extends MemoryBroker {
  throwing = false;

  override unsubscribe(channel: string): Promise<void> {
    if (this.throwing) {
      throw new Error(`unsubscribe ${channel} threw`);
    }
    return super.unsubscribe(channel);
  }

  override removePresence(room: string, member: string): Promise<void> {
    if (this.throwing) {
      throw new Error(`removePresence ${room} threw`);
    }
    return super.removePresence(room, member);
  }

  override health(): BrokerHealth {
    if (this.throwing) {
      throw new Error('health threw');
    }
    return super.health();
  }
}

/** A memory broker that breaks the contract once told to: its (un)subscriptions, presence, history and close never answer. */
class HangingBroker extends MemoryBroker {
  hanging = false;

  override subscribe(channel: string): Promise<void> {
    return this.hanging ? never() : super.subscribe(channel);
  }

  override unsubscribe(channel: string): Promise<void> {
    return this.hanging ? never() : super.unsubscribe(channel);
  }

  override addPresence(room: string, member: string): Promise<void> {
    return this.hanging ? never() : super.addPresence(room, member);
  }

  override removePresence(room: string, member: string): Promise<void> {
    return this.hanging ? never() : super.removePresence(room, member);
  }

  override presence(room: string): Promise<string[]> {
    return this.hanging ? never() : super.presence(room);
  }

  override history(...args: Parameters<MemoryBroker['history']>): ReturnType<MemoryBroker['history']> {
    return this.hanging ? never() : super.history(...args);
  }

  override close(): Promise<void> {
    return this.hanging ? never() : super.close();
  }
}

function never<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

// Application flows go through the public test client (nestjs-realtime/testing); the tests
// of frames on the wire (framing, write batching) and of a client that ignores pings use
// the frame-level TestClient.
describe('rooms, user targeting and presence (in-memory broker)', () => {
  let app: RoomsApp;
  const clients: { close(): void }[] = [];

  /** A connection to `/rooms` as `sub`, with a token signed with the app's own secret. */
  async function connect(sub: string, on: RoomsApp = app): Promise<RealtimeTestClient> {
    const client = await RealtimeTestClient.connect(on.app, '/rooms', { token: await signTestToken(on.app, { sub }) });
    clients.push(client);
    return client;
  }

  async function joined(sub: string, room: string, on: RoomsApp = app): Promise<RealtimeTestClient> {
    const client = await connect(sub, on);
    await client.request('join', { room });
    return client;
  }

  /** {@link joined}, with the frame-level client. */
  async function joinedRaw(sub: string, room: string): Promise<TestClient> {
    const client = await app.connect(sub);
    clients.push(client);
    const reply = await client.request({ event: 'join', id: 'j', data: { room } });
    assert.equal(reply.event, 'join', JSON.stringify(reply));
    return client;
  }

  beforeEach(async () => {
    app = await startRoomsApp();
  });

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await app.close();
  });

  it('joins, lists rooms and presence, and leaves', async () => {
    const alice = await connect('alice');
    const reply = await alice.request<Record<string, unknown>>('join', { room: 'lobby' });
    // The room's position comes with the reply (a new room: offset 0, a fresh epoch).
    assert.deepEqual(reply, { room: 'lobby', members: ['alice'], offset: 0, epoch: reply.epoch });
    assert.match(String(reply.epoch), /^[A-Za-z0-9_-]+$/);
    await joined('bob', 'lobby');
    await alice.request('join', { room: 'games' });
    assert.deepEqual(await alice.request('rooms'), ['lobby', 'games']);
    assert.deepEqual(await alice.request('presence', { room: 'lobby' }), ['alice', 'bob']);
    assert.deepEqual(await alice.request('leave', { room: 'lobby' }), { room: 'lobby' });
    assert.deepEqual(await alice.request('rooms'), ['games']);
    assert.deepEqual(await app.hub.presence('lobby'), ['bob']);
  });

  it('delivers a room message once to each member, the sender included, and to no one else', async () => {
    const alice = await joined('alice', 'lobby');
    const bob = await joined('bob', 'lobby');
    const carol = await joined('carol', 'elsewhere');
    alice.send('send', { room: 'lobby', text: 'hi' });
    const expected = { offset: 1, event: 'message', room: 'lobby', data: { from: 'alice', text: 'hi' } };
    assert.deepEqual(await alice.next('message'), expected);
    assert.deepEqual(await bob.next('message'), expected);
    // carol got nothing before the reply to her own request; alice and bob nothing more.
    await carol.request('rooms');
    assert.deepEqual(
      [alice, bob, carol].map((client) => client.pendingPushes()),
      [[], [], []],
    );
  });

  it('leaves out the sender with except', async () => {
    const alice = await joined('alice', 'lobby');
    const bob = await joined('bob', 'lobby');
    alice.send('send-others', { room: 'lobby', text: 'psst' });
    assert.deepEqual((await only(bob, 'message')).data, { from: 'alice', text: 'psst' });
    await alice.request('rooms');
    assert.deepEqual(alice.pendingPushes(), []);
  });

  it('reaches every connection of a user, and every connection with emitToAll', async () => {
    const alice1 = await connect('alice');
    const alice2 = await connect('alice');
    const bob = await connect('bob');
    bob.send('whisper', { to: 'alice', text: 'secret' });
    for (const client of [alice1, alice2]) {
      assert.deepEqual(await only(client, 'whisper'), { event: 'whisper', data: { from: 'bob', text: 'secret' } });
    }
    await bob.request('rooms');
    assert.deepEqual(bob.pendingPushes(), []);
    alice1.send('shout', { text: 'all' });
    for (const client of [alice1, alice2, bob]) {
      assert.deepEqual(await only(client, 'shout'), { event: 'shout', data: { text: 'all' } });
    }
  });

  it('disconnects every connection of a user with 4003', async () => {
    const alice1 = await joined('alice', 'lobby');
    const alice2 = await connect('alice');
    const bob = await connect('bob');
    bob.send('kick', { user: 'alice' });
    assert.deepEqual(await within(alice1.closed(), "alice's first connection to close"), { code: 4003, reason: 'banned' });
    assert.deepEqual(await within(alice2.closed(), "alice's second connection to close"), { code: 4003, reason: 'banned' });
    assert.equal(bob.socket.readyState, WebSocket.OPEN);
    await until(() => app.log.disconnects.length === 2, 'two disconnect hooks');
    assert.deepEqual(
      app.log.disconnects.map((entry) => entry.reason.cause),
      ['kicked', 'kicked'],
    );
    await until(async () => (await app.hub.presence('lobby')).length === 0, 'alice out of presence');
  });

  it('takes a closed connection out of its rooms however it closed; handleDisconnect still sees them', async () => {
    const alice = await joined('alice', 'lobby');
    await alice.request('join', { room: 'games' });
    const bob = await joined('bob', 'lobby');
    const carol = await joined('carol', 'lobby');
    alice.close();
    bob.socket.terminate();
    await until(() => app.log.disconnects.length === 2, 'two disconnect hooks');
    const byCause = Object.fromEntries(app.log.disconnects.map((entry) => [entry.reason.cause, entry.rooms]));
    assert.deepEqual(byCause, { client: ['lobby', 'games'], lost: ['lobby'] });
    await until(async () => (await app.hub.presence('lobby')).join() === 'carol', 'presence without alice and bob');
    assert.deepEqual(await app.hub.presence('games'), []);
    assert.deepEqual(app.hub.localClients('lobby').length, 1);
    carol.send('send', { room: 'lobby', text: 'anyone?' });
    assert.deepEqual((await only(carol, 'message')).data, { from: 'carol', text: 'anyone?' });
  });

  it('leaves rooms when the heartbeat reaps a connection', async () => {
    await app.close();
    app = await startRoomsApp(undefined, { intervalMs: 100, timeoutMs: 100 });
    // A client that answers no ping: the frame-level client, with ws's automatic pong off.
    const silent = await app.connect('mute', { autoPong: false });
    clients.push(silent);
    await silent.request({ event: 'join', id: 1, data: { room: 'lobby' } });
    await silent.waitClosed();
    await until(() => app.log.disconnects.length === 1, 'the disconnect hook');
    assert.deepEqual(app.log.disconnects[0], { reason: { code: 1006, reason: '', cause: 'heartbeat-timeout' }, rooms: ['lobby'] });
    await until(async () => (await app.hub.presence('lobby')).length === 0, 'presence emptied');
  });

  it('counts a user once in presence, until their last connection leaves', async () => {
    const first = await joined('alice', 'lobby');
    const second = await joined('alice', 'lobby');
    assert.deepEqual(await app.hub.presence('lobby'), ['alice']);
    first.close();
    await until(() => app.log.disconnects.length === 1, 'first disconnect');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(await app.hub.presence('lobby'), ['alice']);
    await second.request('leave', { room: 'lobby' });
    assert.deepEqual(await app.hub.presence('lobby'), []);
  });

  it('refuses a bad room name with a clear error', async () => {
    const alice = await connect('alice');
    for (const room of ['', 'x'.repeat(257), 42]) {
      await assert.rejects(
        alice.request('join', { room }),
        refusedWith('BAD_REQUEST', { message: 'a room name is a string of 1 to 256 characters' }),
      );
    }
    assert.deepEqual(await alice.request('rooms'), []);
  });

  it('serializes a broadcast once, whatever the number of recipients', async () => {
    const members = await Promise.all(Array.from({ length: 50 }, (_, i) => joined(`user${i}`, 'big')));
    const stringify = JSON.stringify;
    let calls = 0;
    JSON.stringify = ((...args: Parameters<typeof stringify>) => {
      calls++;
      return stringify(...args);
    }) as typeof JSON.stringify;
    try {
      app.hub.emitToRoom('big', 'news', { n: 1 });
    } finally {
      JSON.stringify = stringify;
    }
    assert.equal(calls, 1);
    for (const member of members) {
      assert.deepEqual(await only(member, 'news'), { offset: 1, event: 'news', room: 'big', data: { n: 1 } });
    }
  });

  it('frames a broadcast once, right for every payload length and for multi-byte text', async () => {
    const alice = await joinedRaw('alice', 'sizes');
    const bob = await joinedRaw('bob', 'sizes');
    // Payloads around the 126 and 65,536-byte boundaries of a frame's length field, in UTF-8 bytes.
    const texts = ['', 'é', 'x'.repeat(100), '€'.repeat(40), 'y'.repeat(65_500), '😀'.repeat(20_000)];
    for (const text of texts) {
      app.hub.emitToRoom('sizes', 'big', { text });
    }
    for (const member of [alice, bob]) {
      for (const [index, text] of texts.entries()) {
        const frame = await member.next();
        assert.equal(frame.isBinary, false);
        assert.deepEqual(frame.json, { offset: index + 1, event: 'big', room: 'sizes', data: { text } });
      }
    }
    // A handler that broadcasts to its own room, then replies: the prebuilt push and the
    // reply ws frames itself reach the sender in that order.
    alice.send({ event: 'send', id: 's', data: { room: 'sizes', text: 'both' } });
    assert.deepEqual(await alice.nextJson(), { offset: 7, event: 'message', room: 'sizes', data: { from: 'alice', text: 'both' } });
    assert.deepEqual(await alice.nextJson(), { event: 'send', id: 's', data: null });
  });

  it('sends the pushes of several broadcasts in one turn to a member in one write', async () => {
    const writes = countServerWrites(app.app);
    const member = await joinedRaw('alice', 'busy');
    const counter = writes.at(-1)!;
    const before = counter.count;
    for (let i = 0; i < 5; i++) {
      app.hub.emitToRoom('busy', 'tick', i);
    }
    for (let i = 0; i < 5; i++) {
      assert.deepEqual(await member.nextJson(), { offset: i + 1, event: 'tick', room: 'busy', data: i });
    }
    assert.equal(counter.count - before, 1);
  });

  it('counts a client of a public gateway under its user once it signs in with auth', async () => {
    const bus = new MemoryBus();
    const one = await startRoomsApp(new MemoryBroker({ bus }));
    const two = await startRoomsApp(new MemoryBroker({ bus }));
    try {
      const alice = await joined('alice', 'lobby', one);
      const anonymous = await RealtimeTestClient.connect(one.app, '/public-rooms');
      clients.push(anonymous);
      await anonymous.request('join', { room: 'games' });
      assert.deepEqual(await two.hub.presence('games'), []);
      const exp = now() + 3600;
      assert.deepEqual(await anonymous.request('auth', { token: await signTestToken(one.app, { sub: 'alice', exp }) }), { exp });
      assert.deepEqual(await two.hub.presence('games'), ['alice']);
      const bob = await connect('bob', two);
      bob.send('whisper', { to: 'alice', text: 'to both' });
      for (const client of [alice, anonymous]) {
        assert.deepEqual((await only(client, 'whisper')).data, { from: 'bob', text: 'to both' });
      }
      // Closing the signed-in connection leaves alice's other connection her user's.
      anonymous.close();
      await until(async () => (await two.hub.presence('games')).length === 0, 'games emptied');
      bob.send('whisper', { to: 'alice', text: 'still there?' });
      assert.deepEqual((await only(alice, 'whisper')).data, { from: 'bob', text: 'still there?' });
      assert.deepEqual(await two.hub.presence('lobby'), ['alice']);
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('cuts a kick reason to what a close frame carries, on every instance', async () => {
    const bus = new MemoryBus();
    const one = await startRoomsApp(new MemoryBroker({ bus }));
    const two = await startRoomsApp(new MemoryBroker({ bus }));
    try {
      const local = await connect('mallory', one);
      const remote = await connect('mallory', two);
      const reason = 'é'.repeat(100);
      one.hub.disconnectUser('mallory', reason);
      for (const client of [local, remote]) {
        assert.deepEqual(await within(client.closed(), 'the kick'), { code: 4003, reason: 'é'.repeat(61) });
      }
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('survives a broker that throws against its contract: logged, health degraded, the others served', async () => {
    await app.close();
    const logger = new CapturingLogger();
    const broker = new ThrowingBroker();
    app = await startRoomsApp(broker, undefined, 0, {}, (nest) => nest.useLogger(logger));
    const alice = await joined('alice', 'lobby');
    broker.throwing = true;
    // The last member leaves: the room's unsubscribe and alice's presence removal run from the close.
    alice.close();
    await until(() => logger.text.includes('broker unsubscribe failed: unsubscribe r:lobby threw'), 'the failed unsubscribe in the log');
    await until(() => logger.text.includes('broker presence failed: removePresence lobby threw'), 'the failed presence removal in the log');
    assert.deepEqual(app.hub.health(), { type: 'ThrowingBroker', status: 'degraded', detail: 'health() threw: health threw' });
    const bob = await joined('bob', 'hall');
    assert.deepEqual(await bob.request('rooms'), ['hall']);
  });

  it('answers joins, sign-ins and presence reads within limits.brokerTimeoutMs when the broker never answers, and closes', async () => {
    await app.close();
    const logger = new CapturingLogger();
    const broker = new HangingBroker();
    const brokerTimeoutMs = 300;
    app = await startRoomsApp(broker, undefined, 0, { limits: { brokerTimeoutMs } }, (nest) => nest.useLogger(logger));
    const [alice, bob] = [await connect('alice'), await connect('bob')];
    await bob.request('join', { room: 'hall' }); // a room this instance is subscribed to already
    broker.hanging = true;
    // The subscription and presence entry go unconfirmed (logged), the presence read answers with this instance's members.
    assert.deepEqual(await alice.request('join', { room: 'lobby' }), { room: 'lobby', members: ['alice'] });
    assert.ok(logger.text.includes(`broker subscribe failed: subscribe timed out after ${brokerTimeoutMs} ms`), logger.text);
    assert.ok(logger.text.includes(`broker presence failed: addPresence timed out after ${brokerTimeoutMs} ms`), logger.text);
    assert.ok(
      logger.text.includes(`broker presence read failed: the broker did not answer presence within ${brokerTimeoutMs} ms`),
      logger.text,
    );
    assert.deepEqual(await alice.request('rooms'), ['lobby']);
    // A leave waits for the room's unsubscribe and the presence removal no longer than that either.
    assert.deepEqual(await alice.request('leave', { room: 'lobby' }), { room: 'lobby' });
    assert.ok(logger.text.includes(`broker unsubscribe failed: unsubscribe timed out after ${brokerTimeoutMs} ms`), logger.text);
    assert.ok(logger.text.includes(`broker presence failed: removePresence timed out after ${brokerTimeoutMs} ms`), logger.text);
    assert.deepEqual(await alice.request('join', { room: 'lobby' }), { room: 'lobby', members: ['alice'] });
    // Whether a rejoin missed anything cannot be told without the broker's history: not joined, try again.
    const since = { offset: 0, epoch: 'e' };
    await assert.rejects(alice.request('join', { room: 'hall', since }), refusedWith('UNAVAILABLE'));
    assert.deepEqual(await alice.request('rooms'), ['lobby']);
    // An in-band sign-in waits for the user's channel: answered too.
    const anonymous = await RealtimeTestClient.connect(app.app, '/public-rooms');
    clients.push(anonymous);
    const exp = now() + 3600;
    assert.deepEqual(await anonymous.request('auth', { token: await signTestToken(app.app, { sub: 'carol', exp }) }), { exp });
    // The shutdown goes on without the broker's close.
    clients.splice(0).forEach((client) => client.close());
    await within(app.close(), 'the shutdown', 10 * brokerTimeoutMs);
    assert.ok(logger.text.includes(`broker close failed: close timed out after ${brokerTimeoutMs} ms`), logger.text);
    app = await startRoomsApp();
  });

  it('starts on a broker whose subscriptions never answer, once limits.brokerTimeoutMs passed (logged)', async () => {
    await app.close();
    const logger = new CapturingLogger();
    const broker = new HangingBroker();
    broker.hanging = true;
    app = await startRoomsApp(broker, undefined, 0, { limits: { brokerTimeoutMs: 200 } }, (nest) => nest.useLogger(logger));
    assert.ok(logger.text.includes('broker subscribe failed: subscribe timed out after 200 ms'), logger.text);
    const alice = await connect('alice');
    assert.deepEqual(await alice.request('rooms'), []);
    broker.hanging = false;
  });

  it('makes every joiner wait for the room subscription, not only the first', async () => {
    const bus = new MemoryBus();
    const slow = new SlowBroker({ bus });
    const one = await startRoomsApp(slow);
    const two = await startRoomsApp(new MemoryBroker({ bus }));
    try {
      const [alice, bob] = [await connect('alice', one), await connect('bob', one)];
      slow.delayMs = 200;
      const joins = [alice.request('join', { room: 'lobby' }), bob.request('join', { room: 'lobby' })];
      const first = await Promise.race(joins.map((join, index) => join.then(() => index)));
      assert.ok(slow.done.has('r:lobby'), `join ${first + 1} was answered before the room's subscription existed`);
      await Promise.all(joins);
      two.hub.emitToRoom('lobby', 'news', 1);
      for (const client of [alice, bob]) {
        assert.deepEqual(await only(client, 'news'), { offset: 1, event: 'news', room: 'lobby', data: 1 });
      }
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await Promise.all([one.close(), two.close()]);
    }
  });

  it('spans applications that share a bus, exactly once each', async () => {
    const bus = new MemoryBus();
    const one = await startRoomsApp(new MemoryBroker({ bus }));
    const two = await startRoomsApp(new MemoryBroker({ bus }));
    try {
      const alice = await joined('alice', 'lobby', one);
      const bob = await joined('bob', 'lobby', two);
      assert.deepEqual(await two.hub.presence('lobby'), ['alice', 'bob']);
      bob.send('send', { room: 'lobby', text: 'across' });
      for (const client of [alice, bob]) {
        assert.deepEqual((await only(client, 'message')).data, { from: 'bob', text: 'across' });
      }
      await alice.request('rooms');
      assert.deepEqual(alice.pendingPushes(), []);
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await Promise.all([one.close(), two.close()]);
    }
  });
});
