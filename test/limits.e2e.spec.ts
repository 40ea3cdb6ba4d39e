import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterEach, describe, it } from 'node:test';
import { RealtimeMetrics, RealtimeModule, type RealtimeModuleOptions } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { ROOMS_SECRET, startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until, within } from './support/until.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';
import { GOODBYE_DISCONNECT_MS, GoodbyeGateway, GoodbyeLog } from './fixtures/rooms-gateways.js';
import { CapturingLogger } from './fixtures/auth-gateways.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { selfSignedCertificate } from './support/certificate.js';

/** The answer to `frame`; fails at once, with the close code, when the connection closes instead. */
async function answered(client: TestClient, frame: unknown): Promise<Record<string, unknown>> {
  const closed = client.closed.then(({ code, reason }): never => {
    throw new Error(`the connection closed with ${code} (${reason}) instead of answering`);
  });
  closed.catch(() => undefined);
  return Promise.race([client.request(frame), closed]);
}

/**
 * How long a slow reader has to answer its probe ping before it may be cut
 * (`SLOW_CONSUMER_GRACE_MS` in src/gateway/connection.ts). The server reads it on
 * `performance.now()`, which a test cannot move: tests about it pace or wait on the real clock.
 */
const PROBE_GRACE_MS = 1000;

/** Resolves once `Date.now()` has reached `time` (timers may fire a millisecond early). */
async function wallClockReaches(time: number): Promise<void> {
  while (Date.now() < time) {
    await new Promise((resolve) => setTimeout(resolve, time - Date.now()));
  }
}

describe('limits (protocol §1, §2, §5)', () => {
  let app: RoomsApp;
  const clients: TestClient[] = [];

  async function start(options: RealtimeModuleOptions): Promise<void> {
    app = await startRoomsApp(undefined, undefined, 0, options);
  }

  async function connect(sub: string): Promise<TestClient> {
    const client = await app.connect(sub);
    clients.push(client);
    return client;
  }

  /** Resolves once `sub` can connect again (the place a closed connection held is given back). */
  async function admittedAgain(sub: string, what: string): Promise<void> {
    await until(async () => {
      const attempt = await app.connect(sub).catch(() => undefined);
      attempt && clients.push(attempt);
      return attempt !== undefined;
    }, what);
  }

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await app?.close();
  });

  it('refuses connections over the global limit with 503, and takes them again once one closes', async () => {
    await start({ limits: { maxConnections: 2 } });
    const first = await connect('a');
    await connect('b');
    const refused = await refusedUpgrade(app.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('c')}` } });
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the server is at its connection limit' });
    first.close();
    await first.waitClosed();
    await admittedAgain('c', 'a free place');
  });

  it('refuses a user over their connection limit with 429, other users not', async () => {
    await start({ limits: { maxConnectionsPerUser: 2 } });
    await connect('alice');
    const second = await connect('alice');
    const refused = await refusedUpgrade(app.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    assert.equal(refused.status, 429);
    assert.deepEqual(JSON.parse(refused.body), { error: 'TOO_MANY_CONNECTIONS', message: 'too many connections for this user' });
    await connect('bob');
    second.close();
    await second.waitClosed();
    await admittedAgain('alice', 'alice let in again');
  });

  it('refuses an address over its limit with 429, reading X-Forwarded-For only when told to trust it', async () => {
    await start({ limits: { maxConnectionsPerIp: 2 } });
    await connect('a');
    await connect('b');
    const refused = await refusedUpgrade(app.wsUrl('/rooms'), {
      headers: { authorization: `Bearer ${tokenFor('c')}`, 'x-forwarded-for': '203.0.113.9' },
    });
    assert.equal(refused.status, 429);
    assert.equal(JSON.parse(refused.body).message, 'too many connections from this address');
    await app.close();
    // Behind one trusted proxy: the address it appended (the last entry) counts; what the
    // client itself put in front of it does not.
    await start({ limits: { maxConnectionsPerIp: 1, trustProxy: true } });
    for (const address of ['203.0.113.1', '203.0.113.2']) {
      clients.push(
        await TestClient.connect(app.wsUrl('/rooms'), {
          headers: { authorization: `Bearer ${tokenFor('x')}`, 'x-forwarded-for': `10.9.9.9, ${address}` },
        }),
      );
    }
    const spoofed = await refusedUpgrade(app.wsUrl('/rooms'), {
      headers: { authorization: `Bearer ${tokenFor('x')}`, 'x-forwarded-for': `198.51.100.7, 203.0.113.1` },
    });
    assert.equal(spoofed.status, 429);
  });

  it("counts a public-gateway connection that signs in against its user's limits", async () => {
    await start({ limits: { maxConnectionsPerUser: 1, messageRate: false, userMessageRate: { perSecond: 1, burst: 3 } } });
    await connect('alice');
    const anonymous = await TestClient.connect(app.wsUrl('/public-rooms'));
    clients.push(anonymous);
    assert.deepEqual((await anonymous.request({ event: 'auth', id: 1, data: { token: tokenFor('alice') } })).data, {
      code: 'UNAUTHORIZED',
      message: 'too many connections for this user',
    });
    assert.equal(app.hub.localClientsOf('alice').length, 1);
    // As someone else it may sign in, and then shares that user's rate.
    assert.equal((await anonymous.request({ event: 'auth', id: 2, data: { token: tokenFor('carol') } })).event, 'auth');
    const carol = await connect('carol').catch((error: Error) => error);
    assert.match(String(carol), /429/);
    // From the sign-in on, carol's bucket (burst 3) counts this connection's frames.
    for (const id of [3, 4, 5]) {
      assert.equal((await anonymous.request({ event: 'rooms', id })).event, 'rooms');
    }
    assert.equal(((await anonymous.request({ event: 'rooms', id: 6 })).data as { code: string }).code, 'RATE_LIMITED');
  });

  it('refuses a join over the rooms limit with FORBIDDEN', async () => {
    await start({ limits: { maxRoomsPerConnection: 2 } });
    const alice = await connect('alice');
    for (const room of ['a', 'b']) {
      assert.equal((await alice.request({ event: 'join', id: room, data: { room } })).event, 'join');
    }
    assert.deepEqual((await alice.request({ event: 'join', id: 'c', data: { room: 'c' } })).data, {
      code: 'FORBIDDEN',
      message: 'too many rooms: a connection may be in 2',
    });
    await alice.request({ event: 'leave', id: 'l', data: { room: 'a' } });
    assert.equal((await alice.request({ event: 'join', id: 'c2', data: { room: 'c' } })).event, 'join');
  });

  it('answers frames over the rate with RATE_LIMITED, and closes sustained abuse with 1008', async () => {
    await start({
      limits: { messageRate: { perSecond: 1, burst: 5 }, userMessageRate: false, invalidFrames: { limit: 10, windowMs: 10_000 } },
    });
    const alice = await connect('alice');
    for (let i = 0; i < 5; i++) {
      alice.send({ event: 'rooms', id: i });
    }
    for (let i = 0; i < 5; i++) {
      assert.equal((await alice.nextJson()).event, 'rooms');
    }
    alice.send({ event: 'rooms', id: 'over' });
    assert.deepEqual(await alice.nextJson(), {
      event: 'error',
      id: 'over',
      data: { code: 'RATE_LIMITED', message: 'too many messages: slow down' },
    });
    for (let i = 0; i < 20; i++) {
      alice.send({ event: 'rooms', id: `flood${i}` });
    }
    assert.deepEqual(await alice.waitClosed(), { code: 1008, reason: 'rate limit exceeded' });
    await until(() => app.log.disconnects.length === 1, 'the disconnect hook');
    assert.equal(app.log.disconnects[0]!.reason.cause, 'policy-violation');
  });

  it('counts invalid frames per window: spread over windows they never close the connection, a burst within one does', async () => {
    const limit = 3;
    const windowMs = 150;
    await start({ limits: { invalidFrames: { limit, windowMs } } });
    const alice = await connect('alice');
    // Three windows of `limit` invalid frames each: three times the limit in all, never over it in one window.
    for (let window = 0; window < 3; window++) {
      let answeredAt = 0;
      for (let i = 0; i < limit; i++) {
        const id = `w${window}.${i}`;
        assert.deepEqual(await answered(alice, { event: 'nope', id }), {
          event: 'error',
          id,
          data: { code: 'UNKNOWN_EVENT', message: 'no handler for event "nope"' },
        });
        answeredAt = Date.now();
      }
      // Whatever window the server counts these frames in, it opened it before the last
      // answer arrived here: from `answeredAt + windowMs` on, the next invalid frame opens a
      // new one. The window runs on the wall clock (Date.now()), which a test cannot move: it
      // is waited out.
      await wallClockReaches(answeredAt + windowMs);
    }
    assert.equal((await answered(alice, { event: 'rooms', id: 'alive' })).event, 'rooms');
    // One more than the limit within one window closes the connection.
    const bob = await connect('bob');
    for (let i = 0; i <= limit; i++) {
      bob.send({ event: 'nope', id: i });
    }
    assert.deepEqual(await bob.waitClosed(), { code: 1008, reason: 'too many invalid frames' });
  });

  it("shares a user's rate across their connections", async () => {
    await start({ limits: { messageRate: false, userMessageRate: { perSecond: 1, burst: 4 } } });
    const [one, two] = [await connect('alice'), await connect('alice')];
    for (const client of [one, two, one, two]) {
      assert.equal((await client.request({ event: 'rooms', id: 1 })).event, 'rooms');
    }
    assert.equal(((await two.request({ event: 'rooms', id: 2 })).data as { code: string }).code, 'RATE_LIMITED');
    const bob = await connect('bob');
    assert.equal((await bob.request({ event: 'rooms', id: 3 })).event, 'rooms');
  });

  it('limits one handler by decorator, answering RATE_LIMITED with the request id', async () => {
    await start({});
    const alice = await connect('alice');
    assert.equal((await alice.request({ event: 'limited', id: 1 })).data, 'ok');
    assert.equal((await alice.request({ event: 'limited', id: 2 })).data, 'ok');
    assert.deepEqual(await alice.request({ event: 'limited', id: 3 }), {
      event: 'error',
      id: 3,
      data: { code: 'RATE_LIMITED', message: 'too many "limited" requests: slow down' },
    });
    assert.equal((await alice.request({ event: 'rooms', id: 4 })).event, 'rooms');
    const bob = await connect('bob');
    assert.equal((await bob.request({ event: 'limited', id: 5 })).data, 'ok');
  });

  it("limits each handler of a class named with @RateLimit on its own; a handler's own rate takes precedence", async () => {
    await start({});
    const client = await TestClient.connect(app.wsUrl('/class-limited'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    clients.push(client);
    const codeOf = async (event: string, id: number): Promise<unknown> => {
      const reply = await client.request({ event, id });
      return reply.event === 'error' ? (reply.data as { code: string }).code : reply.data;
    };
    // The class's burst of 1, for `a` and for `b` each.
    assert.deepEqual([await codeOf('a', 1), await codeOf('a', 2)], ['a', 'RATE_LIMITED']);
    assert.deepEqual([await codeOf('b', 3), await codeOf('b', 4)], ['b', 'RATE_LIMITED']);
    // `own`'s burst of 3.
    const own: unknown[] = [];
    for (const id of [5, 6, 7, 8]) {
      own.push(await codeOf('own', id));
    }
    assert.deepEqual(own, ['own', 'own', 'own', 'RATE_LIMITED']);
  });

  it("applies the connection's rate and its user's together: the first one exhausted refuses", async () => {
    // The user's rate is the tighter one.
    await start({ limits: { messageRate: { perSecond: 1, burst: 10 }, userMessageRate: { perSecond: 1, burst: 3 } } });
    const alice = await connect('alice');
    const codes = async (client: TestClient, count: number): Promise<string[]> => {
      const seen: string[] = [];
      for (let id = 0; id < count; id++) {
        const reply = await client.request({ event: 'rooms', id });
        seen.push(reply.event === 'error' ? (reply.data as { code: string }).code : String(reply.event));
      }
      return seen;
    };
    assert.deepEqual(await codes(alice, 4), ['rooms', 'rooms', 'rooms', 'RATE_LIMITED']);
    await app.close();
    // The connection's rate is the tighter one.
    await start({ limits: { messageRate: { perSecond: 1, burst: 2 }, userMessageRate: { perSecond: 1, burst: 10 } } });
    const bob = await connect('bob');
    assert.deepEqual(await codes(bob, 3), ['rooms', 'rooms', 'RATE_LIMITED']);
    // A second connection of bob's has its own burst of 2, with the user's bucket still well filled.
    const bob2 = await connect('bob');
    assert.deepEqual(await codes(bob2, 3), ['rooms', 'rooms', 'RATE_LIMITED']);
  });

  it('gives connections without a user no user rate: anonymous clients do not share one bucket', async () => {
    await start({ limits: { messageRate: false, userMessageRate: { perSecond: 1, burst: 2 } } });
    const anonymous = [await TestClient.connect(app.wsUrl('/public-rooms')), await TestClient.connect(app.wsUrl('/public-rooms'))];
    clients.push(...anonymous);
    for (const client of anonymous) {
      for (let id = 0; id < 4; id++) {
        assert.equal((await client.request({ event: 'presence', id, data: { room: 'r' } })).event, 'presence');
      }
    }
  });

  it('answers refused frames the same with metrics off', async () => {
    await start({ metrics: false, limits: { messageRate: { perSecond: 1, burst: 1 }, userMessageRate: false } });
    const alice = await connect('alice');
    assert.deepEqual(await answered(alice, { event: 'nope', id: 1 }), {
      event: 'error',
      id: 1,
      data: { code: 'UNKNOWN_EVENT', message: 'no handler for event "nope"' },
    });
    assert.deepEqual(await answered(alice, { event: 'rooms', id: 2 }), {
      event: 'error',
      id: 2,
      data: { code: 'RATE_LIMITED', message: 'too many messages: slow down' },
    });
    // Nothing counted, nothing exposed: not a family of zeros that reads as "none published".
    assert.equal((await app.app.get(RealtimeMetrics).registry.metrics()).trim(), '');
  });

  it('does not take a reading client for a slow consumer because of what one turn held back', async () => {
    await start({ limits: { maxBufferedBytes: 64 * 1024 } });
    const reader = await connect('reader');
    const chunk = 'y'.repeat(16 * 1024);
    // 320 KiB in one turn, five times the limit: corked, it would all wait in the server's buffer.
    for (let i = 0; i < 20; i++) {
      app.hub.emitToUser('reader', 'bulk', chunk);
    }
    for (let i = 0; i < 20; i++) {
      assert.equal((await reader.nextJson()).event, 'bulk');
    }
    assert.equal((await reader.request({ event: 'rooms', id: 1 })).event, 'rooms');
  });

  it('cuts a client that does not read with 4008, with the buffer bounded', async () => {
    const maxBufferedBytes = 256 * 1024;
    await start({ limits: { maxBufferedBytes } });
    const reader = await connect('reader');
    const sleeper = await connect('sleeper');
    const [serverSide] = app.hub.localClientsOf('sleeper') as { readyState: number; bufferedAmount: number }[];
    // The client stops reading: the kernel's buffers fill, then the server's.
    const transport = (sleeper.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    transport.pause();
    const chunk = 'x'.repeat(16 * 1024);
    let peak = 0;
    let pushes = 0;
    while (serverSide!.readyState === 1 && pushes < 10_000) {
      app.hub.emitToUser('sleeper', 'bulk', chunk);
      pushes++;
      peak = Math.max(peak, serverSide!.bufferedAmount);
      if (pushes % 16 === 0) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    assert.equal(serverSide!.readyState, 2, `still open after ${pushes} pushes of 16 KiB`);
    assert.ok(peak <= maxBufferedBytes + chunk.length + 1024, `the buffer reached ${peak} bytes`);
    // Reading again at once, the client gets what was buffered, then the 4008.
    transport.resume();
    assert.deepEqual(await sleeper.waitClosed(), { code: 4008, reason: 'slow consumer' });
    await until(() => app.log.disconnects.length === 1, 'the disconnect hook');
    assert.equal(app.log.disconnects[0]!.reason.cause, 'slow-consumer');
    // Others are unaffected.
    assert.equal((await reader.request({ event: 'rooms', id: 1 })).event, 'rooms');
  });

  it('counts what the kernel took but the client has not read: a paced non-reader is cut soon after the limit', async () => {
    const maxBufferedBytes = 256 * 1024;
    await start({ limits: { maxBufferedBytes } });
    const sleeper = await connect('sleeper');
    const [serverSide] = app.hub.localClientsOf('sleeper') as { readyState: number; _socket: { bytesWritten: number } }[];
    (sleeper.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    // 800 KB/s: the kernel's buffers (megabytes) would take this for seconds before any of
    // it waited in the server, so only counting unread bytes finds the client out early.
    // The sleep is the stimulus, not a wait: traffic paced over real time, since the probe's
    // grace runs on the server's real clock. "Early" is measured in bytes, which do not
    // depend on the machine's speed: a slower loop only sends less per second.
    const chunk = 'x'.repeat(16 * 1024);
    const started = performance.now();
    while (serverSide!.readyState === 1 && performance.now() - started < 8000) {
      app.hub.emitToUser('sleeper', 'bulk', chunk);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const took = performance.now() - started;
    const written = serverSide!._socket.bytesWritten;
    assert.equal(serverSide!.readyState, 2, `still open after ${Math.round(took)} ms`);
    assert.ok(written < 2 * 1024 * 1024, `${written} bytes were written before the cut`);
    // Not before its probe went unanswered for the grace (the probe left after the first pushes).
    assert.ok(took >= PROBE_GRACE_MS, `cut after ${Math.round(took)} ms, within the probe's ${PROBE_GRACE_MS} ms of grace`);
    await until(() => app.log.disconnects.length === 1, 'the disconnect hook');
    assert.equal(app.log.disconnects[0]!.reason.cause, 'slow-consumer');
  });

  it('keeps a slow reader that is behind by more than the limit, as long as no further limit piles up behind its probe', async () => {
    const maxBufferedBytes = 256 * 1024;
    await start({ limits: { maxBufferedBytes } });
    const reader = await connect('reader');
    const transport = (reader.socket as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    transport.pause();
    const chunk = 'x'.repeat(16 * 1024);
    // 384 KiB: past the limit, so a probe ping goes out behind the first 256 KiB or so.
    for (let i = 0; i < 24; i++) {
      app.hub.emitToUser('reader', 'bulk', chunk);
    }
    // The stimulus, so a sleep: the reader stays behind for longer than the probe's grace (on
    // the server's real clock), as a slow link would, with nothing more piled up behind it.
    await new Promise((resolve) => setTimeout(resolve, PROBE_GRACE_MS + 100));
    app.hub.emitToUser('reader', 'bulk', 'tail');
    transport.resume();
    for (let i = 0; i < 25; i++) {
      assert.equal((await reader.nextJson()).event, 'bulk');
    }
    assert.equal((await reader.request({ event: 'rooms', id: 1 })).event, 'rooms');
  });

  it('gives a handshake a deadline: a hook that hangs gets 503', async () => {
    const handshakeTimeoutMs = 200;
    const verifyConnectionTimeoutMs = 10_000;
    await start({
      limits: { handshakeTimeoutMs },
      auth: { secret: ROOMS_SECRET, verifyConnection: () => new Promise(() => undefined), verifyConnectionTimeoutMs },
    });
    const started = Date.now();
    const refused = await refusedUpgrade(app.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('a')}` } });
    const elapsed = Date.now() - started;
    assert.equal(refused.status, 503);
    // The handshake's deadline answered, not the hook's own (which says "try again later").
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the handshake took too long' });
    // Not before the deadline (Date.now() and the timer round to the millisecond apart)...
    assert.ok(elapsed >= handshakeTimeoutMs - 1, `refused after ${elapsed} ms, before the ${handshakeTimeoutMs} ms deadline`);
    // ...and without waiting for the hook's timeout: the bound is the claim.
    assert.ok(
      elapsed < verifyConnectionTimeoutMs,
      `refused after ${elapsed} ms: it waited for the hook's ${verifyConnectionTimeoutMs} ms timeout, not the ${handshakeTimeoutMs} ms handshake deadline`,
    );
  });

  it('refuses with 403 an upgrade whose verifyConnection hook throws, gives its place back, and stays healthy', async () => {
    const logger = new CapturingLogger();
    app = await startRoomsApp(
      undefined,
      undefined,
      0,
      {
        // One place in all: an upgrade refused without giving its place back would keep everyone out.
        limits: { maxConnections: 1 },
        auth: {
          secret: ROOMS_SECRET,
          verifyConnection: ({ principal }) => {
            if (principal.sub === 'throws') {
              throw new Error('revocation list unreachable');
            }
            return principal.sub === 'rejects' ? Promise.reject(new Error('revocation list timed out')) : true;
          },
        },
      },
      (nest) => nest.useLogger(logger),
    );
    for (const sub of ['throws', 'rejects', 'throws', 'rejects']) {
      const refused = await refusedUpgrade(app.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor(sub)}` } });
      assert.equal(refused.status, 403, `${sub}: ${refused.body}`);
      assert.deepEqual(JSON.parse(refused.body), { error: 'FORBIDDEN', message: 'connection refused' });
    }
    const alice = await connect('alice');
    assert.equal((await alice.request({ event: 'rooms', id: 1 })).event, 'rooms');
    assert.match(
      logger.text,
      /upgrade refused \(403 FORBIDDEN\) at \/rooms from 127\.0\.0\.1: verifyConnection threw: revocation list unreachable \(sub throws\)/,
    );
    assert.match(
      logger.text,
      /upgrade refused \(403 FORBIDDEN\) at \/rooms from 127\.0\.0\.1: verifyConnection threw: revocation list timed out \(sub rejects\)/,
    );
  });

  it('keeps an idle wss connection past the headers deadline (TLS sockets included)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'realtime-limits-tls-'));
    try {
      const { cert, key } = selfSignedCertificate(directory);
      const tls = { cert: readFileSync(cert), key: readFileSync(key) };
      const running = await startApp(
        { imports: [RealtimeModule.forRoot({ limits: { handshakeTimeoutMs: 200 } })], providers: [GoodbyeLog, GoodbyeGateway] },
        undefined,
        0,
        tls,
      );
      try {
        const client = await TestClient.connect(running.wsUrl('/goodbye'), { ca: tls.cert });
        // A control: a TLS socket opened after it, whose request headers never finish, is
        // dropped by the same deadline (a timer per socket, of the same length, so it fires
        // after the WebSocket's would have). Its close is the event to wait for.
        const control = tlsConnect({ host: '127.0.0.1', port: running.port, ca: tls.cert });
        control.on('error', () => undefined);
        await once(control, 'secureConnect');
        control.write('GET /goodbye HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
        await within(once(control, 'close'), 'the headers deadline to drop the unfinished request');
        // The WebSocket is still served: a cut would fail this request (closed) instead of a pong.
        assert.equal(((await client.request({ event: 'ping', id: 1 })) as { event: string }).event, 'pong');
        assert.equal(client.socket.readyState, 1, 'the idle wss connection was cut');
        client.close();
      } finally {
        await running.close();
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('drops a socket whose request headers never finish', async () => {
    const handshakeTimeoutMs = 300;
    await start({ limits: { handshakeTimeoutMs } });
    // From before the connection: the server's deadline runs from its side of the connect.
    const started = Date.now();
    const socket = tcpConnect({ host: '127.0.0.1', port: app.port });
    await once(socket, 'connect');
    socket.write('GET /rooms HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n');
    await within(once(socket, 'close'), 'the headers deadline to drop the socket');
    const elapsed = Date.now() - started;
    // Not before the deadline (Date.now() and the timer round to the millisecond apart).
    assert.ok(elapsed >= handshakeTimeoutMs - 1, `dropped after ${elapsed} ms, before the ${handshakeTimeoutMs} ms deadline`);
  });
});

describe('graceful shutdown', () => {
  let running: RunningApp | undefined;

  afterEach(async () => {
    await running?.close().catch(() => undefined);
    running = undefined;
  });

  for (const [code, options] of [
    [1001, {}],
    [1012, { closeCode: 1012 }],
  ] as const) {
    it(`closes 200 clients with ${code} in batches, waits for async handleDisconnect, and finishes before the deadline`, async () => {
      const timeoutMs = 5000;
      running = await startApp({
        imports: [RealtimeModule.forRoot({ shutdown: { ...options, batchSize: 50, timeoutMs } })],
        providers: [GoodbyeLog, GoodbyeGateway],
      });
      const log = running.app.get(GoodbyeLog);
      const clients = await Promise.all(Array.from({ length: 200 }, () => TestClient.connect(running!.wsUrl('/goodbye'))));
      const started = Date.now();
      await running.close();
      const elapsed = Date.now() - started;
      running = undefined;
      const closes = await Promise.all(clients.map((client) => client.closed));
      assert.equal(closes.filter((close) => close.code === code).length, 200, JSON.stringify(closes.slice(0, 3)));
      // Every async handleDisconnect (100 ms each) had finished when close() resolved.
      assert.equal(log.finished.length, 200);
      assert.ok(log.finished.every((reason) => reason.cause === 'shutdown' && reason.code === code));
      // Not before the handleDisconnect work (100 ms each) it waits for...
      assert.ok(elapsed >= GOODBYE_DISCONNECT_MS, `close took ${elapsed} ms, less than one handleDisconnect`);
      // ...and done, not given up at the deadline: the bound is the claim.
      assert.ok(elapsed < timeoutMs, `close took ${elapsed} ms: it ran into the ${timeoutMs} ms shutdown deadline`);
    });
  }

  it('waits for the async handleDisconnect of a connection that closed just before, and refuses upgrades in flight', async () => {
    const timeoutMs = 1000;
    running = await startApp({
      imports: [
        RealtimeModule.forRoot({
          shutdown: { timeoutMs },
          auth: {
            secret: 'rooms-test-secret-0123456789abcdef0123',
            verifyConnection: () => new Promise(() => undefined),
            verifyConnectionTimeoutMs: 60_000,
          },
          limits: { handshakeTimeoutMs: 60_000 },
        }),
      ],
      providers: [GoodbyeLog, GoodbyeGateway],
    });
    const log = running.app.get(GoodbyeLog);
    const early = await TestClient.connect(running.wsUrl('/goodbye'));
    const pending = refusedUpgrade(running.wsUrl('/goodbye'), { headers: { authorization: `Bearer ${tokenFor('late')}` } });
    early.close();
    await early.waitClosed();
    const started = Date.now();
    await running.close();
    running = undefined;
    assert.equal(log.finished.length, 1, 'close() resolved before the earlier handleDisconnect finished');
    const refused = await pending;
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the server is shutting down' });
    // The upgrade in flight (its hook hangs) did not hold the shutdown until its deadline.
    const elapsed = Date.now() - started;
    assert.ok(elapsed < timeoutMs, `close took ${elapsed} ms: it ran into the ${timeoutMs} ms shutdown deadline`);
  });
});
