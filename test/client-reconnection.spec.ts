import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { RealtimeClient, type RealtimeClientError, type RealtimeClientOptions } from '../src/client/index.js';
import { STABLE_AFTER_MS } from '../src/client/reconnection.js';
import { FakeClock } from './support/fake-clock.js';
import { FakeServer } from './support/fake-server.js';
import { until } from './support/until.js';

/** Fast reconnection for tests, its jitter pinned near the top: delays of 19, 39, 79, 99, 99… ms. */
const FAST: RealtimeClientOptions = { WebSocket, backoff: { initialMs: 20, maxMs: 100 }, pingIntervalMs: false, random: () => 0.99 };

/** Lets pending socket events and promise chains run. */
const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

describe('client SDK: reconnection edge cases', () => {
  let server: FakeServer | undefined;
  const clients: RealtimeClient[] = [];

  function client(url: string, options: RealtimeClientOptions = {}): RealtimeClient {
    const made = new RealtimeClient(url, { ...FAST, ...options });
    clients.push(made);
    return made;
  }

  afterEach(async () => {
    clients.splice(0).forEach((made) => made.disconnect());
    await server?.close();
    server = undefined;
  });

  it('backs off further while every connection closes right after it opened (a failing handleConnection)', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => socket.close(1011, 'handleConnection failed');
    const made = client(server.url);
    const delays: number[] = [];
    made.onState((change) => change.retryInMs !== undefined && delays.push(change.retryInMs));
    await server.connectionCount(4);
    assert.deepEqual(delays.slice(0, 3), [19, 39, 79]);
  });

  it('counts its attempts from zero again once a connection stayed open long enough', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    let keep = false;
    server.onConnection = ({ socket }) => keep || socket.close(1013, 'overloaded');
    const made = client(server.url, { clock });
    const delays: number[] = [];
    made.onState((change) => change.retryInMs !== undefined && delays.push(change.retryInMs));
    for (let opened = 1; opened <= 3; opened++) {
      await until(() => made.state === 'reconnecting', `close ${opened}`);
      if (opened === 3) {
        keep = true;
      }
      clock.advance(clock.nextDueIn!);
      await server.connectionCount(opened + 1);
    }
    await until(() => made.state === 'open', 'the kept connection');
    assert.deepEqual(delays, [79, 158, 316], 'overloaded: 4x the bounds, growing');
    clock.advance(STABLE_AFTER_MS - 1);
    server.connections[3]!.socket.close(1011, 'restart');
    await until(() => made.state === 'reconnecting', 'the close before it proved stable');
    assert.equal(delays.at(-1), 396, 'still overloaded (the bound 4 x 100 ms), the attempts counted on');
    clock.advance(clock.nextDueIn!);
    await server.connectionCount(5);
    await until(() => made.state === 'open', 'reopened');
    clock.advance(STABLE_AFTER_MS);
    server.connections[4]!.socket.close(1011, 'restart');
    await until(() => made.state === 'reconnecting', 'the close after it proved stable');
    assert.equal(delays.at(-1), 19, 'a stable connection starts the attempts over, overload forgotten');
  });

  it('lets an error listener disconnect after a failed attempt: no unhandled rejection, no timer left', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    const unhandled: unknown[] = [];
    const record = (reason: unknown): number => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const made = client(server.url, {
        clock,
        token: () => {
          throw new Error('signed out');
        },
      });
      const errors: RealtimeClientError[] = [];
      made.onError((error) => {
        errors.push(error);
        made.disconnect();
      });
      await until(() => errors.length === 1, 'the provider failure');
      await settle();
      assert.equal(made.state, 'closed');
      assert.deepEqual(unhandled, []);
      assert.equal(clock.timers, 0, 'a reconnection timer left behind');
    } finally {
      process.off('unhandledRejection', record);
    }
  });

  it('runs onReconnect only on a connection still there after its rooms were joined again', async () => {
    server = await FakeServer.start();
    server.onFrame = ({ socket }, frame) => {
      const count = server!.connections.length;
      if (frame.event === 'join' && count === 2) {
        socket.terminate(); // the rejoin never gets its reply: this connection drops
      } else if (frame.id !== undefined) {
        socket.send(JSON.stringify({ event: frame.event, id: frame.id, data: { ok: true } }));
      }
    };
    const hookRuns: number[] = [];
    const made = client(server.url, {
      onReconnect: async (context) => {
        hookRuns.push(server!.connections.length);
        await context.request('subscribe', { run: hookRuns.length });
      },
    });
    const errors: string[] = [];
    made.onError((error) => errors.push(`${error.code}: ${error.message}`));
    await made.join('lobby');
    server.connections[0]!.socket.close(1012, 'restart');
    await server.connectionCount(3);
    await until(() => made.state === 'open', 'reopened on the third connection');
    await settle();
    assert.deepEqual(hookRuns, [3]);
    const subscribes = server.connections[2]!.frames.filter((frame) => frame.event === 'subscribe');
    assert.deepEqual(
      subscribes.map((frame) => frame.data),
      [{ run: 1 }],
    );
    assert.deepEqual(errors, [], 'the rejoin cut by the dropped connection is no error of its own');
  });

  it('joins a room asked for while reconnecting once, and rejoins with the data of its latest successful join()', async () => {
    server = await FakeServer.start();
    server.onFrame = ({ socket }, frame) => {
      if ((frame.data as { colour?: string } | undefined)?.colour === 'black') {
        socket.send(JSON.stringify({ event: 'error', id: frame.id, data: { code: 'FORBIDDEN', message: 'not that team' } }));
      } else if (frame.id !== undefined) {
        socket.send(JSON.stringify({ event: frame.event, id: frame.id, data: { ok: true } }));
      }
    };
    const made = client(server.url);
    const rejoined: string[] = [];
    made.onRejoin(({ room }) => rejoined.push(room));
    await made.join('lobby', { colour: 'red' });
    await made.join('lobby', { colour: 'blue' });
    await assert.rejects(made.join('lobby', { colour: 'black' }), { code: 'FORBIDDEN' });
    // Asked for while reconnecting (which lasts a few ms here): queued, sent once the connection is open.
    let late: Promise<unknown> | undefined;
    made.onState(({ state }) => state === 'reconnecting' && (late ??= made.join('kitchen', { colour: 'green' })));
    server.connections[0]!.socket.close(1012, 'restart');
    await server.connectionCount(2);
    await until(() => late !== undefined, 'the join asked for while reconnecting');
    await late;
    await until(() => made.state === 'open', 'reopened');
    const joins = server.connections[1]!.frames.filter((frame) => frame.event === 'join').map((frame) => frame.data);
    assert.deepEqual(joins, [
      { colour: 'blue', room: 'lobby' },
      { colour: 'green', room: 'kitchen' },
    ]);
    assert.deepEqual(rejoined, ['lobby']);
  });

  it('keeps its heartbeat after an error reply to a ping (RATE_LIMITED, say)', async () => {
    server = await FakeServer.start();
    server.onFrame = ({ socket }, frame) => {
      if (frame.event === 'ping') {
        socket.send(JSON.stringify({ event: 'error', id: frame.id, data: { code: 'RATE_LIMITED', message: 'slow down' } }));
      }
    };
    const clock = new FakeClock(Date.now());
    const made = client(server.url, { clock, pingIntervalMs: 100, pongTimeoutMs: 100 });
    await made.whenOpen();
    const pings = (): number => server!.connections[0]!.frames.filter((frame) => frame.event === 'ping').length;
    clock.advance(100);
    await until(() => pings() === 1, 'the first ping');
    await settle(); // its error reply
    clock.advance(100);
    await until(() => pings() === 2, 'a second ping after the error reply');
    assert.equal(made.state, 'open');
  });

  describe('against a server that accepts TCP and never answers the handshake', () => {
    let tcp: Server;
    const sockets: Socket[] = [];
    let closed = 0;

    afterEach(async () => {
      sockets.splice(0).forEach((socket) => socket.destroy());
      await new Promise((resolve) => tcp.close(resolve));
    });

    it('gives the attempt up after connectTimeoutMs and tries again', async () => {
      tcp = createServer((socket) => {
        sockets.push(socket);
        socket.resume(); // reads (and drops) the handshake, so that the client's close is seen
        socket.on('close', () => closed++);
      });
      tcp.listen(0, '127.0.0.1');
      await once(tcp, 'listening');
      const made = client(`ws://127.0.0.1:${(tcp.address() as AddressInfo).port}/`, { connectTimeoutMs: 100 });
      const reasons: string[] = [];
      made.onState((change) => change.state === 'reconnecting' && reasons.push(change.close?.reason ?? ''));
      await until(() => sockets.length >= 2, 'a second attempt', 3000);
      assert.match(reasons[0] ?? '', /handshake was not answered within 100 ms/);
      await until(() => closed >= 1, 'the first attempt to be closed by the client');
    });
  });

  /** An unsigned token issued now (by the real clock) for `seconds`: the client only reads it. */
  function tokenFor(seconds: number, issuedAt = true): string {
    const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    return `${part({ alg: 'HS256' })}.${part({ sub: 'x', ...(issuedAt && { iat: now }), exp: now + seconds })}.sig`;
  }

  /** A fake server that accepts every in-band `auth`. */
  async function acceptingAuth(): Promise<FakeServer> {
    const started = await FakeServer.start();
    started.onFrame = ({ socket }, frame) => {
      if (frame.event === 'auth') {
        socket.send(JSON.stringify({ event: 'auth', id: frame.id, data: {} }));
      }
    };
    return started;
  }

  const authFrames = (on: FakeServer): number =>
    on.connections.flatMap((connection) => connection.frames).filter((frame) => frame.event === 'auth').length;

  /** Moves the fake clock on in steps of `stepMs`, letting sockets and promises run between them. */
  async function advance(clock: FakeClock, totalMs: number, stepMs = 1000): Promise<void> {
    for (let passed = 0; passed < totalMs; passed += stepMs) {
      clock.advance(stepMs);
      await settle();
    }
  }

  it('plans the refresh from the token itself when the device clock is ahead by more than its lifetime', async () => {
    server = await acceptingAuth();
    const clock = new FakeClock(Date.now() + 10 * 60_000); // ten minutes fast
    let asked = 0;
    const made = client(server.url, { clock, token: () => (asked++, tokenFor(300)) });
    await made.whenOpen();
    await advance(clock, 20_000);
    assert.equal(asked, 1, 'refreshed again and again: the token looked expired by the device clock');
    assert.equal(authFrames(server), 0);
    await advance(clock, 260_000, 10_000); // 270 s in: the refresh, 30 s before the token's own lifetime ends
    await until(() => authFrames(server!) === 1, 'the refresh, planned from exp - iat');
    assert.equal(asked, 2);
  });

  it('does not refresh every second a token that looks expired by the device clock and tells no iat', async () => {
    server = await acceptingAuth();
    const clock = new FakeClock(Date.now() + 10 * 60_000);
    let asked = 0;
    const made = client(server.url, { clock, token: () => (asked++, tokenFor(300, false)) });
    await made.whenOpen();
    await advance(clock, 20_000);
    assert.equal(asked, 1);
    assert.equal(authFrames(server), 0, 'left to the server, which closes with 4001 when it expires');
  });

  it('tries a failed in-band refresh again while the token lasts', async () => {
    server = await acceptingAuth();
    const clock = new FakeClock(Date.now());
    const reasons: string[] = [];
    const made = client(server.url, {
      clock,
      refreshBeforeExpiryMs: 30_000,
      token: (reason) => {
        reasons.push(reason);
        if (reasons.length === 2) {
          throw new Error('the auth server blinked');
        }
        return tokenFor(60);
      },
    });
    const errors: string[] = [];
    made.onError((error) => errors.push(error.message));
    await made.whenOpen();
    await advance(clock, 30_000, 5000); // the refresh is due 30 s in, and fails
    await until(() => errors.length === 1, 'the failed refresh reported');
    await advance(clock, 5000);
    await until(() => authFrames(server!) === 1, 'the refresh tried again');
    assert.deepEqual(reasons, ['connect', 'refresh', 'refresh']);
    assert.match(errors[0] ?? '', /the auth server blinked/);
    assert.equal(made.state, 'open');
  });

  it('refuses a connectTimeoutMs that is no delay', () => {
    assert.throws(
      () => new RealtimeClient('ws://127.0.0.1:1/', { WebSocket, connectTimeoutMs: 0, autoConnect: false }),
      /connectTimeoutMs/,
    );
  });
});
