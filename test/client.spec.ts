import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import {
  backoffDelay,
  type ConnectionState,
  type StateChange,
  RealtimeClient,
  type RealtimeClientOptions,
  RealtimeClientError,
  resolveBackoff,
  type TokenReason,
} from '../src/client/index.js';
import { STABLE_AFTER_MS } from '../src/client/reconnection.js';
import { FakeClock } from './support/fake-clock.js';
import { FakeServer, offeredToken } from './support/fake-server.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until } from './support/until.js';

/** Resolves at the client's next change to `closed` (its state starts `closed` until it connects). */
function nextClosed(made: RealtimeClient): Promise<StateChange> {
  return new Promise((resolve) => {
    const stop = made.onState((change) => {
      if (change.state === 'closed') {
        stop();
        resolve(change);
      }
    });
  });
}

/** An unsigned token with an `exp` that far in seconds: the client only reads it. */
function tokenWithExp(seconds: number): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256' })}.${part({ sub: 'x', exp: Math.floor(Date.now() / 1000) + seconds })}.sig`;
}

/** Fast reconnection for tests. */
const FAST: RealtimeClientOptions = { WebSocket, backoff: { initialMs: 20, maxMs: 100 }, pingIntervalMs: false };

describe('client SDK: backoff', () => {
  it('draws each delay in [0, min(max, initial * 2^attempt)), full jitter', () => {
    const options = resolveBackoff();
    assert.deepEqual(options, { initialMs: 500, maxMs: 20_000, overloadFactor: 4 });
    for (let attempt = 0; attempt < 12; attempt++) {
      const ceiling = Math.min(20_000, 500 * 2 ** attempt);
      assert.equal(
        backoffDelay(attempt, options, false, () => 0),
        0,
      );
      assert.equal(
        backoffDelay(attempt, options, false, () => 0.999999),
        Math.floor(0.999999 * ceiling),
      );
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, options);
        assert.ok(delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay}`);
      }
    }
    assert.equal(
      backoffDelay(1000, options, false, () => 0.5),
      10_000,
    );
  });

  it('backs off longer after an overload (1013)', () => {
    const options = resolveBackoff();
    assert.equal(
      backoffDelay(0, options, true, () => 0.5),
      1000,
    );
    assert.equal(
      backoffDelay(20, options, true, () => 0.5),
      40_000,
    );
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
    clients.splice(0).forEach((made) => made.disconnect());
    await server?.close();
  });

  it('moves only along its transition table, with a reason for every change', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(1012, 'restart');
      }
    };
    const made = client({ random: () => 0 });
    // Added right after the constructor: the first `connecting` is seen too.
    const changes: string[] = [];
    made.onState(({ previous, state, reason }) => changes.push(`${previous}>${state}:${reason}`));
    await server.connectionCount(2);
    await until(() => made.state === 'open', 'the client to reopen');
    made.disconnect();
    assert.deepEqual(changes, [
      'closed>connecting:connect',
      'connecting>open:opened',
      'open>reconnecting:connection-lost',
      'reconnecting>connecting:retry',
      'connecting>open:opened',
      'open>closed:disconnect',
    ]);
  });

  it('takes an error frame without a code (an application event named "error") as INTERNAL, for a request and as a push', async () => {
    server = await FakeServer.start();
    server.onFrame = ({ socket }, frame) => {
      socket.send(JSON.stringify({ event: 'error', id: frame.id, data: null }));
      socket.send(JSON.stringify({ event: 'error' }));
    };
    const made = client();
    const errors: RealtimeClientError[] = [];
    made.onError((error) => errors.push(error));
    await assert.rejects(made.request('anything', 1, { timeoutMs: 2000 }), (error: unknown) => {
      assert.ok(error instanceof RealtimeClientError);
      assert.equal(error.code, 'INTERNAL');
      assert.equal(error.message, 'the server sent an error frame without a code: null');
      return true;
    });
    await until(() => errors.length === 1, 'the push told as an error');
    assert.deepEqual([errors[0]!.code, errors[0]!.message], ['INTERNAL', 'the server sent an error frame without a code: undefined']);
    assert.equal(made.state, 'open');
  });

  it('stops, saying why, when the WebSocket refuses a fixed token at every attempt (no provider to get another)', async () => {
    server = await FakeServer.start();
    // Not a valid subprotocol value: the WebSocket constructor throws before any connection.
    const made = client({ token: 'abc+/=' });
    const errors: RealtimeClientError[] = [];
    made.onError((error) => errors.push(error));
    const closed = await nextClosed(made);
    assert.equal(closed.reason, 'gave-up');
    await new Promise((resolve) => setTimeout(resolve, 200)); // no attempt after it
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, 'CLOSED');
    assert.match(errors[0]!.message, /^cannot open the WebSocket: /);
    assert.equal(server.connections.length, 0);
  });

  it('never quotes the token when the WebSocket refuses it, as browsers do in their error', async () => {
    server = await FakeServer.start();
    const token = 'c2VjcmV0/b3BhcXVl+dG9rZW4=';
    /** Chromium's constructor: its message quotes the subprotocol it refused. */
    class QuotingWebSocket {
      constructor(_url: string, protocols: string | string[]) {
        const refused = ([] as string[]).concat(protocols).find((protocol) => /[+/=]/.test(protocol));
        throw new SyntaxError(`Failed to construct 'WebSocket': The subprotocol '${refused}' is invalid.`);
      }
    }
    const made = client({ token, WebSocket: QuotingWebSocket as unknown as RealtimeClientOptions['WebSocket'] });
    const errors: RealtimeClientError[] = [];
    made.onError((error) => errors.push(error));
    const closed = await nextClosed(made);
    assert.equal(closed.reason, 'gave-up');
    assert.equal(errors.length, 1);
    assert.equal(
      errors[0]!.message,
      "cannot open the WebSocket: Failed to construct 'WebSocket': The subprotocol 'bearer.***' is invalid.",
    );
    assert.ok(!JSON.stringify(closed).includes(token));
  });

  it('never quotes a token the browser escaped in its error either', async () => {
    server = await FakeServer.start();
    const token = 'tok\u3042en\u0000x';
    /** Chromium escapes what is not printable ASCII in the subprotocol it quotes. */
    class EscapingWebSocket {
      constructor(_url: string, protocols: string | string[]) {
        const refused = ([] as string[]).concat(protocols).find((protocol) => protocol.startsWith('bearer.'))!;
        const escaped = refused.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
        throw new SyntaxError(`Failed to construct 'WebSocket': The subprotocol '${escaped}' is invalid.`);
      }
    }
    const made = client({ token, WebSocket: EscapingWebSocket as unknown as RealtimeClientOptions['WebSocket'] });
    const errors: RealtimeClientError[] = [];
    made.onError((error) => errors.push(error));
    await nextClosed(made);
    assert.equal(
      errors[0]!.message,
      "cannot open the WebSocket: Failed to construct 'WebSocket': The subprotocol 'bearer.***' is invalid.",
    );
  });

  it('waits for connect() with autoConnect: false, and connects again after disconnect()', async () => {
    server = await FakeServer.start();
    const made = client({ autoConnect: false });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(made.state, 'closed');
    assert.equal(server.connections.length, 0);
    await assert.rejects(made.request('x'), { code: 'CLOSED' });
    made.connect();
    await made.whenOpen();
    made.disconnect();
    assert.equal(made.state, 'closed');
    made.connect();
    await made.whenOpen();
    assert.equal(server.connections.length, 2);
  });

  it('lets only the latest attempt go on after disconnect() and connect() while a token is awaited', async () => {
    server = await FakeServer.start();
    const releases: ((token: string) => void)[] = [];
    const made = client({ token: () => new Promise<string>((resolve) => releases.push(resolve)) });
    await until(() => releases.length === 1, 'the first token request');
    made.disconnect();
    made.connect();
    await until(() => releases.length === 2, 'the second token request');
    releases[0]!('stale');
    releases[1]!('fresh');
    // The stale attempt resumed (and stopped) as soon as its token came, before this one opened.
    await made.whenOpen();
    assert.equal(server.connections.length, 1);
    assert.equal(offeredToken(server.connections[0]!), 'fresh');
    made.disconnect();
    await assert.rejects(made.whenOpen(), { code: 'CLOSED' });
  });

  it('runs its timeouts on the injected clock: a request fails when the clock says so, and never sleeps', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    const made = client({ clock, requestTimeoutMs: 5000 });
    await made.whenOpen();
    let outcome: unknown;
    made.request('never-answered').then(
      () => (outcome = 'resolved'),
      (error: RealtimeClientError) => (outcome = error.code),
    );
    await until(() => server.connections[0]!.frames.some((frame) => frame.event === 'never-answered'), 'the request to arrive');
    clock.advance(4999);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(outcome, undefined);
    clock.advance(1);
    await until(() => outcome !== undefined, 'the timeout');
    assert.equal(outcome, 'TIMEOUT');
  });

  for (const code of [1000, 1008, 1009, 4003]) {
    it(`stops on close ${code}, without reconnecting`, async () => {
      server = await FakeServer.start();
      server.onConnection = ({ socket }) => socket.close(code, 'go away');
      const clock = new FakeClock(Date.now());
      const made = client({ clock });
      const seen = states(made);
      const closed = nextClosed(made);
      const errors: RealtimeClientError[] = [];
      made.onError((error) => errors.push(error));
      await closed;
      // No reconnection is planned: not a single timer is left on the client's clock.
      assert.equal(clock.timers, 0);
      assert.equal(server.connections.length, 1);
      assert.deepEqual(seen, ['connecting', 'open', 'closed']);
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
      // Jitter pinned near its top: the first delay is just under initialMs (20), 4x that after 1013.
      const made = client({ random: () => 0.99 });
      const changes: { state: ConnectionState; retryInMs?: number }[] = [];
      made.onState((change) => changes.push(change));
      await server.connectionCount(2);
      await until(() => made.state === 'open', 'the client to reopen');
      const retry = changes.find((change) => change.state === 'reconnecting');
      assert.equal(retry?.retryInMs, code === 1013 ? 79 : 19);
      assert.deepEqual(
        changes.map((change) => change.state),
        ['connecting', 'open', 'reconnecting', 'connecting', 'open'],
      );
    });
  }

  it('keeps the longer backoff after 1013 until a connection opens again', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        // The next attempt is refused at the handshake: a 1006 for the client.
        server.refusals.push(503);
        socket.close(1013, 'overloaded');
      }
    };
    const made = client({ random: () => 0.99 });
    const delays: number[] = [];
    made.onState((change) => change.retryInMs !== undefined && delays.push(change.retryInMs));
    await server.connectionCount(2);
    assert.deepEqual(delays.slice(0, 2), [79, 158]);
    await until(() => made.state === 'open', 'open');
  });

  it('stops on 4001 when it has only a fixed token, since retrying cannot help', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => socket.close(4001, 'token expired');
    const made = client({ token: 'fixed' });
    const closed = nextClosed(made);
    const errors: string[] = [];
    made.onError((error) => errors.push(error.message));
    await closed;
    assert.equal(server.connections.length, 1);
    assert.match(errors.join(), /no token provider/);
  });

  it('never reconnects once closed: not while fetching a token, not after a provider failure', async () => {
    server = await FakeServer.start();
    let release!: (token: string) => void;
    let calls = 0;
    const made = client({
      token: () => {
        calls++;
        return calls === 1 ? 'first' : new Promise<string>((resolve) => (release = resolve));
      },
    });
    await until(() => made.state === 'open', 'open');
    server.connections[0]!.socket.close(1012, 'restart');
    await until(() => calls === 2, 'the second token request');
    made.disconnect();
    release('second');
    const failing = client({
      token: () => {
        throw new Error('identity provider down');
      },
    });
    failing.disconnect();
    await new Promise((resolve) => setImmediate(resolve)); // the released token's attempt resumes, and stops
    assert.equal(server.connections.length, 1);
    assert.equal(made.state, 'closed');
    assert.equal(failing.state, 'closed');
  });

  it('leaves no timer behind after close, so a Node process can exit', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    const made = client({ clock, pingIntervalMs: 50, token: () => tokenWithExp(3600) });
    const closed = nextClosed(made);
    made.onState(({ state }) => {
      if (state === 'open') {
        made.disconnect(); // from inside a listener, right when the timers were set
      }
    });
    await closed;
    assert.equal(clock.timers, 0);
  });

  it('leaves no timer behind when disconnect() comes while a token provider that never answers is awaited', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    let asked = 0;
    const made = client({ clock, token: () => (asked++, new Promise<string>(() => undefined)) });
    await until(() => asked === 1, 'the token to be asked for');
    assert.equal(clock.timers, 1, 'the provider has its deadline');
    made.disconnect();
    // A timer left set would keep a Node process alive, here for tokenTimeoutMs.
    assert.equal(clock.timers, 0);
    assert.equal(server.connections.length, 0);
  });

  it('treats a failing or hanging token provider as a failed attempt, and recovers', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    let calls = 0;
    const errors: string[] = [];
    const made = client({
      clock,
      random: () => 0, // every retry is due at once on the client's clock
      tokenTimeoutMs: 50,
      token: () => {
        calls++;
        if (calls === 1) throw new Error('provider down');
        if (calls === 2) return new Promise<string>(() => undefined); // hangs
        return 'good';
      },
    });
    made.onError((error) => errors.push(error.message));
    await until(() => made.state === 'reconnecting' && errors.length === 1, 'the failing provider');
    clock.advance(0);
    await until(() => calls === 2, 'the second token request');
    clock.advance(49);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(errors.length, 1, 'gave up on the token before tokenTimeoutMs');
    clock.advance(1);
    await until(() => made.state === 'reconnecting' && errors.length === 2, 'the hanging provider to time out');
    clock.advance(0);
    const connection = await server.connectionCount(1);
    assert.equal(offeredToken(connection), 'good');
    assert.match(errors[0]!, /provider down/);
    assert.match(errors[1]!, /no token within 50 ms/);
    await until(() => made.state === 'open', 'open');
  });

  it('does not flood the server when the token expires months from now', async () => {
    server = await FakeServer.start();
    const clock = new FakeClock(Date.now());
    const made = client({ clock, token: () => tokenWithExp(60 * 86_400) });
    await until(() => made.state === 'open', 'open');
    clock.advance(STABLE_AFTER_MS); // the wait for the connection to prove stable
    // Timers cap at ~24.8 days: the refresh waits in such steps, never fires at once.
    assert.ok(clock.nextDueIn! > 20 * 86_400_000, `a timer is due in ${clock.nextDueIn} ms`);
    clock.advance(25 * 86_400_000);
    assert.ok(clock.nextDueIn! > 20 * 86_400_000, `a timer is due in ${clock.nextDueIn} ms after one step`);
    assert.deepEqual(
      server.connections[0]!.frames.filter((frame) => frame.event === 'auth'),
      [],
    );
  });

  it('survives listeners that throw; their exceptions are reported, not swallowed', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(1012, 'restart');
      }
    };
    const reported: unknown[] = [];
    const made = client({ reportListenerError: (error) => reported.push(error) });
    made.onState(({ state }) => {
      if (state === 'reconnecting') {
        throw new Error('listener bug');
      }
    });
    made.on('news', () => {
      throw new Error('push listener bug');
    });
    await server.connectionCount(2);
    await until(() => made.state === 'open', 'reopened despite the listener');
    server.connections[1]!.socket.send(JSON.stringify({ event: 'news', data: 1 }));
    await until(() => reported.length === 2, 'both errors reported');
    assert.deepEqual(reported.map(String), ['Error: listener bug', 'Error: push listener bug']);
  });

  it('does not send late a request that timed out in the queue, even during onReconnect', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(1012, 'restart');
      }
    };
    // The server holds its answer to the hook's join until the test lets it go.
    let answerJoin!: () => void;
    const joinArrived = new Promise<void>((resolve) => {
      server.onFrame = ({ socket }, frame) => {
        if (frame.event === 'join') {
          answerJoin = () => socket.send(JSON.stringify({ event: 'join', id: frame.id, data: 'joined' }));
          resolve();
        }
      };
    });
    const clock = new FakeClock(Date.now());
    let hookDone = false;
    const made = client({
      clock,
      random: () => 0, // the reconnection is due at once on the client's clock
      onReconnect: async (context) => {
        await context.request('join', { room: 'a' });
        hookDone = true;
      },
    });
    await until(() => made.state === 'reconnecting', 'the reconnection to be planned');
    clock.advance(0);
    await joinArrived;
    // The hook waits for its join: a request made now waits in the queue, and times out there.
    const charge = made.request('charge-card', undefined, { timeoutMs: 50 });
    made.send('after-hook');
    clock.advance(50);
    await assert.rejects(charge, { code: 'TIMEOUT' });
    assert.equal(hookDone, false);
    answerJoin();
    await until(() => made.state === 'open', 'open');
    assert.ok(hookDone);
    // A marker sent now arrives after anything the client could still have sent before it.
    made.send('marker');
    await until(() => server.connections[1]!.frames.some((frame) => frame.event === 'marker'), 'the marker');
    assert.deepEqual(
      server.connections[1]!.frames.map((frame) => frame.event),
      ['join', 'after-hook', 'marker'],
    );
  });

  /** A client on a fake clock whose first connection the server closes (1012), with an `onReconnect` that never settles. */
  async function withHangingHook(options: { onReconnectTimeoutMs?: number } = {}) {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(1012, 'restart');
      }
    };
    const clock = new FakeClock(Date.now());
    const hook = { started: false };
    const made = client({
      clock,
      random: () => 0,
      ...options,
      onReconnect: () => {
        hook.started = true;
        return new Promise<void>(() => undefined);
      },
    });
    return { clock, made, hook };
  }

  it('opens without an onReconnect that never settles once onReconnectTimeoutMs passed, and says so', async () => {
    const { clock, made, hook } = await withHangingHook({ onReconnectTimeoutMs: 5000 });
    const errors: { code: string; message: string }[] = [];
    made.onError((error) => errors.push({ code: error.code, message: error.message }));
    await until(() => made.state === 'reconnecting', 'the reconnection to be planned');
    clock.advance(0);
    await server.connectionCount(2);
    made.send('queued');
    // The hook's deadline is set in the same turn as the hook is called.
    await until(() => hook.started, 'onReconnect to start');
    assert.equal(made.state, 'connecting', 'the hook is still running');
    clock.advance(5000);
    await until(() => made.state === 'open', 'the client to open without the hook');
    assert.deepEqual(errors, [{ code: 'TIMEOUT', message: 'onReconnect did not finish within 5000 ms' }]);
    await until(() => server.connections[1]!.frames.some((frame) => frame.event === 'queued'), 'the queued message');
  });

  it('leaves no timer behind when disconnect() comes while an onReconnect that never settles runs', async () => {
    const { clock, made, hook } = await withHangingHook();
    await until(() => made.state === 'reconnecting', 'the reconnection to be planned');
    clock.advance(0);
    await until(() => hook.started, 'onReconnect to start');
    made.disconnect();
    assert.equal(made.state, 'closed');
    // A timer left set would keep a Node process alive, here for the hook's 30 s.
    assert.equal(clock.timers, 0);
  });

  it('takes a null option as absent: null random and onReconnectTimeoutMs reconnect as their defaults do', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(1012, 'restart');
      }
    };
    let hookRan = false;
    const made = client({
      random: null,
      onReconnectTimeoutMs: null,
      onReconnect: async () => {
        await new Promise((resolve) => setTimeout(resolve, 50));
        hookRan = true;
      },
    } as unknown as RealtimeClientOptions);
    const errors: RealtimeClientError[] = [];
    made.onError((error) => errors.push(error));
    await server.connectionCount(2);
    await until(() => made.state === 'open' && hookRan, 'reopened, the hook done');
    assert.deepEqual(errors, [], 'no TIMEOUT of a hook given the default 10 s');
  });

  it('asks for a fresh token on 4001 and reconnects with it at once', async () => {
    server = await FakeServer.start();
    server.onConnection = ({ socket }) => {
      if (server.connections.length === 1) {
        socket.close(4001, 'token expired');
      }
    };
    const reasons: TokenReason[] = [];
    const made = client({
      token: (reason) => (reasons.push(reason), `token-${reasons.length}`),
      backoff: { initialMs: 5000, maxMs: 5000 },
    });
    const delays: number[] = [];
    made.onState((change) => change.retryInMs !== undefined && delays.push(change.retryInMs));
    const second = await server.connectionCount(2);
    assert.deepEqual(delays, [0]);
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
    // The one timeout left on the real clock (the default one): not before its time.
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
    assert.throws(
      () => made.send('four'),
      (error: RealtimeClientError) => error.code === 'QUEUE_FULL',
    );
    await assert.rejects(made.request('five'), { code: 'QUEUE_FULL' });
    server = await FakeServer.startOn(url);
    server.onFrame = ({ socket }, frame) => {
      if (frame.id !== undefined) {
        socket.send(JSON.stringify({ event: frame.event, id: frame.id, data: 'answered' }));
      }
    };
    assert.equal(await reply, 'answered');
    assert.deepEqual(
      server.connections[0]!.frames.map((frame) => frame.event),
      ['one', 'two', 'three'],
    );
  });

  it('treats a missing pong as a dead link and reconnects', async () => {
    server = await FakeServer.start();
    // The server never answers: its pings go unanswered too.
    const clock = new FakeClock(Date.now());
    const made = client({ clock, random: () => 0, pingIntervalMs: 100, pongTimeoutMs: 100 });
    await made.whenOpen();
    clock.advance(100);
    await until(() => server.connections[0]!.frames.some((frame) => frame.event === 'ping'), 'the ping after 100 ms of silence');
    clock.advance(99);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(made.state, 'open', 'given up before the pong timeout');
    clock.advance(1);
    await until(() => made.state === 'reconnecting', 'the dead link to be noticed');
    clock.advance(0);
    await server.connectionCount(2);
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
    clients.splice(0).forEach((made) => made.disconnect());
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

  it('refreshes its token in-band before it expires, on its own clock, and plans the next refresh from the new token', async () => {
    app = await startRoomsApp();
    const clock = new FakeClock(Date.now());
    const reasons: TokenReason[] = [];
    const errors: unknown[] = [];
    const made = client('alice', {
      clock,
      token: (reason) => {
        reasons.push(reason);
        return tokenFor('alice', reasons.length === 1 ? 2 : 3600);
      },
      refreshBeforeExpiryMs: 1500,
    });
    made.onError((error) => errors.push(error));
    await made.whenOpen();
    // The first token lives at most 2 s (whole seconds): its refresh is due 1 s in, and not before.
    assert.equal(clock.nextDueIn, 1000);
    clock.advance(999);
    assert.deepEqual(reasons, ['connect']);
    clock.advance(1);
    // The server must accept the new token before the client plans the next refresh from it.
    await until(() => clock.dueIn.some((ms) => ms > 3_000_000), 'the next refresh, planned from the one-hour token');
    assert.deepEqual(
      clock.dueIn.filter((ms) => ms < 3_000_000),
      [STABLE_AFTER_MS - 1000],
      'no other timer than the wait for the connection to prove stable',
    );
    assert.equal(made.state, 'open');
    assert.deepEqual(reasons, ['connect', 'refresh']);
    assert.deepEqual(errors, []);
    assert.deepEqual(await made.request('rooms'), []);
  });

  it('gets the server error codes and details as typed errors', async () => {
    app = await startRoomsApp();
    const made = client('alice');
    await assert.rejects(made.request('nope'), { code: 'UNKNOWN_EVENT', message: 'no handler for event "nope"' });
    await assert.rejects(made.request('join', { room: '' }), { code: 'BAD_REQUEST' });
  });
});
