import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { RealtimeClient, RealtimeClientError } from '../src/client/index.js';
import { toClientError } from '../src/client/client-error.js';
import { tokenExpiry } from '../src/client/jwt-expiry.js';

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

  it("reads a token's exp without verifying it, and nothing from what is not a JWT", () => {
    assert.equal(tokenExpiry(jwt({ sub: 'a', exp: 1_700_000_000 })), 1_700_000_000_000);
    for (const token of ['', 'opaque-api-key', jwt({ sub: 'a' }), jwt({ exp: '1700000000' }), 'a.%%%.c', 'a.bm90IGpzb24.c']) {
      assert.equal(tokenExpiry(token), undefined, token);
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
