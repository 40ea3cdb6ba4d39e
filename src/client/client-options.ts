import type { BackoffOptions } from './backoff.js';
import type { ClientClock } from './clock.js';
import type { WebSocketConstructor } from './websocket-like.js';

/**
 * How the client encodes its frames: `json` (text frames, the default) or `msgpack` (binary
 * frames, with bytes inside `data`; docs/protocol.md §10).
 */
export type ClientEncoding = 'json' | 'msgpack';

/** Why the token provider is asked for a token. */
export type TokenReason = 'connect' | 'reconnect' | 'expired' | 'refresh';

/** Gives the client a token: a fresh one when `reason` is `expired` or `refresh`. */
export type TokenProvider = (reason: TokenReason) => string | Promise<string>;

/**
 * The data each server event carries, by event name: `RealtimeClient<{ message: ChatMessage }>`
 * types `on('message', …)`'s listener. Untyped by default.
 */
export type EventMap = Record<string, unknown>;

/** A server push, reply or request as received: `{event, data, room?, id?, sid?}`. */
export interface IncomingFrame<T = unknown> {
  readonly event: string;
  readonly data?: T;
  readonly room?: string;
  /** A room push's offset in its room (docs/protocol.md §7). */
  readonly offset?: number;
  readonly id?: string | number;
  /** Set on a request from the server (docs/protocol.md §8), answered by a `handle()` handler. */
  readonly sid?: number;
}

/** What `onReconnect` gets: requests and sends that go out at once, ahead of the queue. */
export interface ReconnectContext {
  /** As {@link RealtimeClient.request}, sent at once. */
  request<T = unknown>(event: string, data?: unknown, options?: { timeoutMs?: number }): Promise<T>;
  /** As {@link RealtimeClient.send}, sent at once. */
  send(event: string, data?: unknown): void;
}

/** Options of {@link RealtimeClient}. */
export interface RealtimeClientOptions {
  /** The WebSocket implementation. Default `globalThis.WebSocket` (browsers); pass `ws`'s in Node 20. */
  WebSocket?: WebSocketConstructor;
  /**
   * `msgpack`: offer the MessagePack encoding (binary frames, with bytes inside `data`),
   * and speak it with a server that selects it; a server that does not know it is spoken
   * to in JSON. Default `json`.
   */
  encoding?: ClientEncoding;
  /** The token, or a provider called before every connection and refresh. Omit for public gateways. */
  token?: string | TokenProvider;
  /** How long the token provider may take before the attempt counts as failed, in ms. Default 10000. */
  tokenTimeoutMs?: number;
  /**
   * How long the server may take to answer the WebSocket handshake before the attempt counts
   * as failed and the next one is scheduled, in ms. Default 15000 (the server's own deadline is 10 s).
   */
  connectTimeoutMs?: number;
  /** Reconnection delays. */
  backoff?: BackoffOptions;
  /** Give up after this many failed reconnection attempts in a row. Default: never. */
  maxReconnectAttempts?: number;
  /** Default timeout of `request()`, in ms. Default 10000. */
  requestTimeoutMs?: number;
  /** Messages kept while not connected; one more is refused with `QUEUE_FULL`. Default 100. */
  maxQueue?: number;
  /** App-level heartbeat: a `ping` after this much silence, in ms; `false` turns it off. Default 20000. */
  pingIntervalMs?: number | false;
  /** How long to wait for its `pong` before treating the link as dead, in ms. Default 10000. */
  pongTimeoutMs?: number;
  /** Refresh the token in-band this long before it expires, in ms. Default 30000 (or half its lifetime, if shorter). */
  refreshBeforeExpiryMs?: number;
  /** How {@link RealtimeClient.join} joins rooms, and whether it joins them again after a reconnection (it does by default). */
  rooms?: ClientRoomOptions;
  /**
   * Runs after every reconnection, before the state is `open` and queued messages go (and
   * after the rooms joined with `join()` are joined again): re-join other rooms here.
   */
  onReconnect?: (context: ReconnectContext) => void | Promise<void>;
  /**
   * How long `onReconnect` may take, in ms: past it, an `error` event (`TIMEOUT`) says so
   * and the connection opens without waiting any longer. Default 30000.
   */
  onReconnectTimeoutMs?: number;
  /** Source of randomness for the backoff jitter, in [0, 1). Default `Math.random` (tests pin it). */
  random?: () => number;
  /** Where exceptions thrown by your listeners go. Default: rethrown asynchronously, as an `EventTarget` reports them. */
  reportListenerError?: (error: unknown) => void;
  /**
   * Connect as soon as the client is made (on the next microtask, so that listeners added
   * right after the constructor see the first `connecting`). `false`: wait for `connect()`.
   * Default true.
   */
  autoConnect?: boolean;
  /** The clock and timers of every delay and timeout (backoff, requests, ping, refresh). Default: the system's. */
  clock?: ClientClock;
}

/** How the client joins and leaves rooms (`RealtimeClientOptions.rooms`). */
export interface ClientRoomOptions {
  /** The event that joins a room, with `{room, since?, ...data}`. Default `join`. */
  joinEvent?: string;
  /** The event that leaves a room, with `{room, ...data}`. Default `leave`. */
  leaveEvent?: string;
  /**
   * After a reconnection, join again every room joined with `RealtimeClient.join()`,
   * with `since` (the last offset seen and the room's epoch) so that the server sends what
   * was missed. `false` leaves it to the application (`onReconnect`). Default true.
   */
  rejoin?: boolean;
}
