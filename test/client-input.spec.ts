import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { RealtimeClient, RealtimeClientError, type RealtimeClientOptions } from '../src/client/index.js';
import { toClientError } from '../src/client/client-error.js';
import { tokenTimes } from '../src/client/jwt-expiry.js';

/** A JWT-shaped string with `payload` as its (unsigned) payload. */
function jwt(payload: unknown): string {
  const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'HS256', typ: 'JWT' })}.${part(payload)}.signature`;
}

describe('client SDK: what it is given', () => {
  it('refuses a URL that is not ws:// or wss://, naming it', () => {
    assert.throws(() => new RealtimeClient('http://example.com/chat', { WebSocket, autoConnect: false }), {
      name: 'TypeError',
      message: 'RealtimeClient needs a ws:// or wss:// URL, got http://example.com/chat',
    });
    assert.doesNotThrow(() => new RealtimeClient('WSS://example.com/chat', { WebSocket, autoConnect: false }));
    // Not a URL at all: the WebSocket would throw at every attempt.
    for (const url of ['ws://example.com:70000/chat', 'ws://[::1/chat']) {
      assert.throws(() => new RealtimeClient(url, { WebSocket, autoConnect: false }), {
        name: 'TypeError',
        message: `RealtimeClient needs a ws:// or wss:// URL, got ${url}`,
      });
    }
  });

  it('refuses a listener that is not a function at the call, not at the first event', () => {
    const client = new RealtimeClient('ws://example.com/chat', { WebSocket, autoConnect: false });
    for (const [name, listen] of [
      ['on', () => client.on('message', 'handler' as never)],
      ['onError', () => client.onError(undefined as never)],
      ['onState', () => client.onState({} as never)],
      ['onRejoin', () => client.onRejoin(5 as never)],
    ] as const) {
      assert.throws(listen, { name: 'TypeError', message: new RegExp(`^RealtimeClient\\.${name}\\(\\) needs a function, got `) });
    }
  });

  it('asks for a WebSocket implementation where the platform has none', () => {
    const global = globalThis as { WebSocket?: unknown };
    const saved = global.WebSocket;
    global.WebSocket = undefined;
    try {
      assert.throws(() => new RealtimeClient('ws://example.com/chat', { autoConnect: false }), {
        name: 'TypeError',
        message: 'RealtimeClient needs a WebSocket implementation: pass { WebSocket } (e.g. from the ws package)',
      });
      // The platform's, when it has one.
      global.WebSocket = WebSocket;
      assert.doesNotThrow(() => new RealtimeClient('ws://example.com/chat', { autoConnect: false }));
    } finally {
      global.WebSocket = saved;
    }
  });

  it('refuses a numeric option that timers or the queue cannot use, naming it', () => {
    const make = (options: RealtimeClientOptions): RealtimeClient =>
      new RealtimeClient('ws://example.com/chat', { WebSocket, autoConnect: false, ...options });
    const refused: [RealtimeClientOptions, string][] = [
      // A timer's delay of NaN, below 1 or over 2^31 - 1 ms fires at once: every request would time out.
      [{ requestTimeoutMs: Number.POSITIVE_INFINITY }, 'option requestTimeoutMs must be a number of ms from 1 to 2147483647, got Infinity'],
      [{ requestTimeoutMs: 2 ** 31 }, 'option requestTimeoutMs must be a number of ms from 1 to 2147483647, got 2147483648'],
      [{ requestTimeoutMs: 0.5 }, 'option requestTimeoutMs must be a number of ms from 1 to 2147483647, got 0.5'],
      [{ tokenTimeoutMs: Number.NaN }, 'option tokenTimeoutMs must be a number of ms from 1 to 2147483647, got NaN'],
      [{ pongTimeoutMs: -1 }, 'option pongTimeoutMs must be a number of ms from 1 to 2147483647, got -1'],
      [
        { onReconnectTimeoutMs: '5000' as unknown as number },
        'option onReconnectTimeoutMs must be a number of ms from 1 to 2147483647, got "5000"',
      ],
      [{ pingIntervalMs: 0 }, 'option pingIntervalMs must be a number of ms from 1 to 2147483647 or false, got 0'],
      [{ refreshBeforeExpiryMs: -30_000 }, 'option refreshBeforeExpiryMs must be a number of ms of at least 0, got -30000'],
      [{ maxQueue: -1 }, 'option maxQueue must be a whole number of at least 0 or Infinity, got -1'],
      [{ maxQueue: 2.5 }, 'option maxQueue must be a whole number of at least 0 or Infinity, got 2.5'],
      [{ maxReconnectAttempts: Number.NaN }, 'option maxReconnectAttempts must be a whole number of at least 0 or Infinity, got NaN'],
      [
        { backoff: { maxMs: 1e9 } },
        'option backoff needs 0 < initialMs <= maxMs, overloadFactor >= 1 and maxMs * overloadFactor <= 2147483647, got {"initialMs":500,"maxMs":1000000000,"overloadFactor":4}',
      ],
    ];
    for (const [options, message] of refused) {
      assert.throws(() => make(options), { name: 'RangeError', message: `RealtimeClient: ${message}` });
    }
    const accepted: RealtimeClientOptions[] = [
      { pingIntervalMs: false, refreshBeforeExpiryMs: 0, maxQueue: 0, maxReconnectAttempts: 0 },
      {
        maxReconnectAttempts: Number.POSITIVE_INFINITY,
        maxQueue: Number.POSITIVE_INFINITY,
        requestTimeoutMs: 2 ** 31 - 1,
        tokenTimeoutMs: 1,
      },
      // Not a timer's delay: the refresh then comes at half the token's lifetime.
      { refreshBeforeExpiryMs: Number.POSITIVE_INFINITY },
      // null takes the default, as undefined does (options read from JSON have it).
      {
        requestTimeoutMs: null,
        tokenTimeoutMs: null,
        pongTimeoutMs: null,
        onReconnectTimeoutMs: null,
        pingIntervalMs: null,
        refreshBeforeExpiryMs: null,
        maxQueue: null,
        maxReconnectAttempts: null,
        random: null,
        rooms: null,
        encoding: null,
        token: null,
        backoff: { initialMs: null, maxMs: undefined },
      } as unknown as RealtimeClientOptions,
    ];
    for (const options of accepted) {
      assert.doesNotThrow(() => make(options));
    }
    // Options read through: inherited ones and getters count, as given.
    const inherited = Object.assign(Object.create({ WebSocket }) as RealtimeClientOptions, { autoConnect: false, maxQueue: null });
    assert.doesNotThrow(() => new RealtimeClient('ws://example.com/chat', inherited));
  });

  it("refuses a request's timeout that a timer cannot use, at the call", () => {
    const client = new RealtimeClient('ws://example.com/chat', { WebSocket, autoConnect: false });
    assert.throws(() => client.request('echo', 'x', { timeoutMs: Number.POSITIVE_INFINITY }), {
      name: 'RangeError',
      message: 'RealtimeClient: request timeoutMs must be a number of ms from 1 to 2147483647, got Infinity',
    });
  });

  it("reads a token's exp and iat without verifying it, and nothing from what is not a JWT", () => {
    assert.deepEqual(tokenTimes(jwt({ sub: 'a', exp: 1_700_000_000 })), { expiresAt: 1_700_000_000_000, issuedAt: undefined });
    assert.deepEqual(tokenTimes(jwt({ sub: 'a', iat: 1_699_999_000, exp: 1_700_000_000 })), {
      expiresAt: 1_700_000_000_000,
      issuedAt: 1_699_999_000_000,
    });
    assert.equal(tokenTimes(jwt({ sub: 'a', iat: 'then', exp: 1_700_000_000 }))?.issuedAt, undefined);
    for (const token of ['', 'opaque-api-key', jwt({ sub: 'a' }), jwt({ exp: '1700000000' }), 'a.%%%.c', 'a.bm90IGpzb24.c']) {
      assert.equal(tokenTimes(token), undefined, token);
    }
  });

  it('keeps a client error as it is and makes anything else DISCONNECTED with its message', () => {
    const own = new RealtimeClientError('TIMEOUT', 'no reply');
    assert.equal(toClientError(own), own);
    const wrapped = toClientError(new Error('socket hang up'));
    assert.equal(wrapped.code, 'DISCONNECTED');
    assert.equal(wrapped.message, 'socket hang up');
    assert.equal(toClientError('plain text').message, 'plain text');
  });
});
