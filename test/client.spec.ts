import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  backoffDelay,
  type ConnectionState,
  RealtimeClient,
  type RealtimeClientOptions,
  RealtimeClientError,
  resolveBackoff,
  type TokenReason,
} from '../src/client/index.js';
import { FakeServer, offeredToken } from './support/fake-server.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until } from './support/until.js';

/** Fast reconnection for tests. */
const FAST: RealtimeClientOptions = { WebSocket, backoff: { initialMs: 20, maxMs: 100 }, pingIntervalMs: false };

describe('client SDK: backoff', () => {
  it('draws each delay in [0, min(max, initial * 2^attempt)), full jitter', () => {
    const options = resolveBackoff();
    assert.deepEqual(options, { initialMs: 500, maxMs: 20_000, overloadFactor: 4 });
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(20_000, 500 * 2 ** attempt);
      assert.equal(backoffDelay(attempt, options, false, () => 0), 0);
      assert.equal(backoffDelay(attempt, options, false, () => 0.999999), Math.floor(0.999999 * ceiling));
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, options);
        assert.ok(delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay}`);
      }
    }
    assert.equal(backoffDelay(1000, options, false, () => 0.5), 10_000);
  });

  it('backs off longer after an overload (1013)', () => {
    const options = resolveBackoff();
    assert.equal(backoffDelay(0, options, true, () => 0.5), 1000);
    assert.equal(backoffDelay(20, options, true, () => 0.5), 40_000);
  });

  it('refuses nonsensical settings', () => {
    assert.throws(() => resolveBackoff({ initialMs: 0 }), RangeError);
    assert.throws(() => resolveBackoff({ initialMs: 100, maxMs: 50 }), RangeError);
  });
});

describe('client SDK against a scripted fake server', () => {
  let server: FakeServer;
  const clients: RealtimeClient[] = [];

  function client(options: RealtimeClientOptions = {}): RealtimeClient {
    const made = new RealtimeClient(server.url, { ...FAST, ...options });
    clients.push(made);
    return made;
  }

  function states(of: RealtimeClient): ConnectionState[] {
    const seen: ConnectionState[] = [];
    of.onState(({ state }) => seen.push(state));
    return seen;
  }

  afterEach(async () => {
    clients.splice(0).forEach((made) => made.close());
    await server?.close();
  });

  for (const code of [1000, 1008, 1009, 4003]) {
    it(`stops on close ${code}, without reconnecting`, async () => {
      server = await FakeServer.start();
      server.onConnection = ({ socket }) => socket.close(code, 'go away');
      const made = client();
      const seen = states(made);
      const errors: RealtimeClientError[] = [];
      made.onError((error) => errors.push(error));
      await until(() => made.state === 'closed', 'the client to close');
      // A reconnection would come within 100 ms with these settings: leave it twice that.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(server.connections.length, 1);
      assert.deepEqual(seen, ['open', 'closed']);
      assert.match(errors[0]?.message ?? '', new RegExp(`${code}`));
      await assert.rejects(made.request('x'), { code: 'CLOSED' });
    });
  }

  for (const code of [1001, 1011, 1012, 1013, 4008, 1006]) {
    it(`reconnects after close ${code}, with backoff`, async () => {
      server = await FakeServer.start();
      server.onConnection = ({ socket }) => {
        if (server.connections.length === 1) {
          code === 1006 ? socket.terminate() : socket.close(code, 'bye');
        }
      };
      const made = client();
      const changes: { state: ConnectionState; retryInMs?: number }[] = [];
      made.onState((change) => changes.push(change));
      await server.connectionCount(2);
      await until(() => made.state === 'open', 'the client to reopen');
      const retry = changes.find((change) => change.state === 'reconnecting');
      assert.ok(retry && retry.retryInMs !== undefined && retry.retryInMs < (code === 1013 ? 400 : 100), JSON.stringify(retry));
      assert.deepEqual(
        changes.map((change) => change.state),
        ['open', 'reconnecting', 'connecting', 'open'],
      );
    });
  }

  it('asks for a fresh token on 4001 and reconnects with it at once', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(4001, 'token expired');
      }
    };
    const reasons: TokenReason[] = [];
    client({ token: (reason) => (reasons.push(reason), `token-${reasons.length}`) });
    const second = await server.connectionCount(2);
    assert.equal(offeredToken(server.connections[0]!), 'token-1');
    assert.equal(offeredToken(second), 'token-2');
    assert.deepEqual(second.protocols, ['realtime.v1', 'bearer.token-2']);
    assert.deepEqual(reasons, ['connect', 'expired']);
  });

  it('asks for a fresh token after a refused handshake, which browsers cannot tell from others', async () => {
    server = await FakeServer.start();
    server.refusals.push(401);
    const reasons: TokenReason[] = [];
    const made = client({ token: (reason) => (reasons.push(reason), `token-${reasons.length}`) });
    const connection = await server.connectionCount(1);
    assert.equal(offeredToken(connection), 'token-2');
    assert.deepEqual(reasons, ['connect', 'expired']);
    await until(() => made.state === 'open', 'open');
  });

  it('resolves a request with its reply and rejects with the server error, code and details', async () => {
    server = await FakeServer.start();
    server.onFrame = ({ socket }, frame) => {
      if (frame.event === 'good') {
        socket.send(JSON.stringify({ event: 'good', id: frame.id, data: { ok: true } }));
      } else {
        socket.send(
          JSON.stringify({
            event: 'error',
            id: frame.id,
            data: { code: 'VALIDATION_FAILED', message: 'validation failed', details: [{ property: 'x' }] },
          }),
        );
      }
    };
    const made = client();
    assert.deepEqual(await made.request('good', { a: 1 }), { ok: true });
    const error = await made.request('bad').catch((caught: unknown) => caught);
    assert.ok(error instanceof RealtimeClientError);
    assert.equal(error.code, 'VALIDATION_FAILED');
    assert.deepEqual(error.details, [{ property: 'x' }]);
  });

  it('times a request out', async () => {
    server = await FakeServer.start();
    const made = client();
    const started = Date.now();
    await assert.rejects(made.request('silence', undefined, { timeoutMs: 100 }), (error: RealtimeClientError) => {
      assert.equal(error.code, 'TIMEOUT');
      return true;
    });
    assert.ok(Date.now() - started >= 95);
  });

  it('rejects in-flight requests when the connection drops, then reconnects', async () => {
    server = await FakeServer.start();
    server.onFrame = ({ socket }, frame) => {
      if (frame.event === 'slow' && server.connections.length === 1) {
        socket.terminate();
      }
    };
    const made = client();
    const inFlight = [made.request('slow'), made.request('slow')];
    for (const request of inFlight) {
      await assert.rejects(request, { code: 'DISCONNECTED' });
    }
    await server.connectionCount(2);
    await until(() => made.state === 'open', 'reopened');
  });

  it('queues while disconnected, sends in order once open, and refuses what overflows', async () => {
    server = await FakeServer.start();
    const url = server.url;
    await server.close();
    const made = new RealtimeClient(url, { ...FAST, maxQueue: 3 });
    clients.push(made);
    made.send('one');
    made.send('two');
    const reply = made.request('three');
    assert.throws(() => made.send('four'), (error: RealtimeClientError) => error.code === 'QUEUE_FULL');
    await assert.rejects(made.request('five'), { code: 'QUEUE_FULL' });
    server = await FakeServer.startOn(url);
    server.onFrame = ({ socket }, frame) => {
      if (frame.id !== undefined) {
        socket.send(JSON.stringify({ event: frame.event, id: frame.id, data: 'answered' }));
      }
    };
    assert.equal(await reply, 'answered');
    assert.deepEqual(server.connections[0]!.frames.map((frame) => frame.event), ['one', 'two', 'three']);
  });

  it('treats a missing pong as a dead link and reconnects', async () => {
    server = await FakeServer.start();
    // The server never answers: its pings go unanswered too.
    const made = client({ pingIntervalMs: 100, pongTimeoutMs: 100 });
    await server.connectionCount(1);
    await server.connectionCount(2);
    assert.ok(server.connections[0]!.frames.some((frame) => frame.event === 'ping'));
    await until(() => made.state === 'open', 'reopened');
  });

  it('delivers pushes to listeners with their room, and error frames without id to onError', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      socket.send(JSON.stringify({ event: 'message', room: 'lobby', data: { text: 'hi' } }));
      socket.send(JSON.stringify({ event: 'error', data: { code: 'BAD_REQUEST', message: 'frame must be a JSON object' } }));
    };
    const made = client();
    const pushes: unknown[] = [];
    made.on('message', (data, frame) => pushes.push([data, frame.room]));
    const errors: string[] = [];
    made.onError((error) => errors.push(`${error.code} ${error.message}`));
    await until(() => pushes.length === 1 && errors.length === 1, 'a push and an error');
    assert.deepEqual(pushes, [[{ text: 'hi' }, 'lobby']]);
    assert.deepEqual(errors, ['BAD_REQUEST frame must be a JSON object']);
  });
});

describe('client SDK against the real server', () => {
  let app: RoomsApp;
  const clients: RealtimeClient[] = [];

  afterEach(async () => {
    clients.splice(0).forEach((made) => made.close());
    await app.close();
  });

  function client(sub: string, options: RealtimeClientOptions = {}): RealtimeClient {
    const made = new RealtimeClient(app.wsUrl('/rooms'), { ...FAST, token: () => tokenFor(sub), ...options });
    clients.push(made);
    return made;
  }

  it('reconnects after a server restart and re-joins its rooms through onReconnect', async () => {
    app = await startRoomsApp();
    const rooms = new Set<string>();
    const alice = client('alice', {
      onReconnect: async (self) => {
        for (const room of rooms) {
          await self.request('join', { room });
        }
      },
    });
    const messages: unknown[] = [];
    alice.on('message', (data) => messages.push(data));
    await alice.request('join', { room: 'lobby' });
    rooms.add('lobby');
    const port = app.port;
    await app.close();
    await until(() => alice.state === 'reconnecting' || alice.state === 'connecting', 'alice to notice');
    app = await startRoomsApp(undefined, undefined, port);
    await until(() => alice.state === 'open', 'alice to reconnect', 10_000);
    const bob = client('bob');
    await bob.request('join', { room: 'lobby' });
    await until(async () => (await app.hub.presence('lobby')).join() === 'alice,bob', 'alice to rejoin');
    bob.send('send', { room: 'lobby', text: 'welcome back' });
    await until(() => messages.length === 1, 'the room message');
    assert.deepEqual(messages, [{ from: 'bob', text: 'welcome back' }]);
  });

  it('refreshes its token in-band before it expires, and outlives the first token', async () => {
    app = await startRoomsApp();
    const reasons: TokenReason[] = [];
    const made = client('alice', {
      token: (reason) => {
        reasons.push(reason);
        return tokenFor('alice', reasons.length === 1 ? 2 : 3600);
      },
      refreshBeforeExpiryMs: 1500,
    });
    await made.whenOpen();
    await until(() => reasons.includes('refresh'), 'a refresh', 3000);
    // Past the first token's exp (2 s, whole seconds), the connection is still the first one.
    await new Promise((resolve) => setTimeout(resolve, 2100));
    assert.equal(made.state, 'open');
    assert.deepEqual(reasons, ['connect', 'refresh']);
    assert.deepEqual(await made.request('rooms'), []);
  });

  it('gets the server error codes and details as typed errors', async () => {
    app = await startRoomsApp();
    const made = client('alice');
    await assert.rejects(made.request('nope'), { code: 'UNKNOWN_EVENT', message: 'no handler for event "nope"' });
    await assert.rejects(made.request('join', { room: '' }), { code: 'BAD_REQUEST' });
  });
});
