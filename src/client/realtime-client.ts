import { CloseCode } from '../protocol/close-codes.js';
import { AUTH_EVENT, BEARER_PROTOCOL_PREFIX, ERROR_EVENT, type ErrorPayload, PING_EVENT, PROTOCOL_V1 } from '../protocol/envelope.js';
import { backoffDelay, type BackoffOptions, resolveBackoff } from './backoff.js';
import { ClientErrorCode, RealtimeClientError } from './client-error.js';
import { tokenExpiry } from './jwt-expiry.js';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './websocket-like.js';

/** The client's connection state. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why the token provider is asked for a token. */
export type TokenReason = 'connect' | 'reconnect' | 'expired' | 'refresh';

/** Gives the client a token: a fresh one when `reason` is `expired` or `refresh`. */
export type TokenProvider = (reason: TokenReason) => string | Promise<string>;

/** What a state change listener receives. */
export interface StateChange {
  /** The new state. */
  readonly state: ConnectionState;
  /** The state before. */
  readonly previous: ConnectionState;
  /** The close that caused it, when one did. */
  readonly close?: { readonly code: number; readonly reason: string };
  /** When `reconnecting`: the delay before the next attempt, in ms. */
  readonly retryInMs?: number;
}

/** A server push or reply as received: `{event, data, room?, id?}`. */
export interface IncomingFrame {
  readonly event: string;
  readonly data?: unknown;
  readonly room?: string;
  readonly id?: string | number;
}

/** Options of {@link RealtimeClient}. */
export interface RealtimeClientOptions {
  /** The WebSocket implementation. Default `globalThis.WebSocket` (browsers); pass `ws`'s in Node 20. */
  WebSocket?: WebSocketConstructor;
  /** The token, or a provider called before every connection and refresh. Omit for public gateways. */
  token?: string | TokenProvider;
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
  /**
   * Runs after every reconnection, before queued messages are sent: re-join rooms here.
   * Requests it makes go out at once.
   */
  onReconnect?: (client: RealtimeClient) => void | Promise<void>;
}

/** Close codes after which the client stops for good (protocol §5). */
const FINAL_CLOSES: ReadonlySet<number> = new Set([CloseCode.NORMAL, CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG, CloseCode.FORBIDDEN]);
/** The close code the client uses when its heartbeat finds the link dead (4000-4999 are free for applications). */
const DEAD_LINK_CLOSE = 4000;

interface PendingRequest {
  resolve(value: unknown): void;
  reject(error: RealtimeClientError): void;
  timer: ReturnType<typeof setTimeout>;
  /** Written to a socket: lost if that socket drops. */
  sent: boolean;
  frame: string;
}

type Listener = (data: unknown, frame: IncomingFrame) => void;

/**
 * Client of protocol v1, for browsers and Node: reconnection with full-jitter backoff that
 * follows the close codes of protocol §5, request/reply with timeouts and typed errors,
 * token refresh (at connect, on 4001, and in-band before expiry), an app-level heartbeat
 * and a bounded queue while disconnected. No Nest, no Node built-ins.
 *
 * @example
 * ```ts
 * const client = new RealtimeClient('wss://example.com/chat', { token: () => auth.getToken() });
 * client.onState(({ state }) => console.log(state));
 * client.on('message', (data, frame) => console.log(frame.room, data));
 * await client.request('join', { room: 'general' });
 * ```
 */
export class RealtimeClient {
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly backoff;
  private socket: WebSocketLike | undefined;
  private stateValue: ConnectionState = 'connecting';
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly stateListeners = new Set<(change: StateChange) => void>();
  private readonly errorListeners = new Set<(error: RealtimeClientError) => void>();
  private readonly pending = new Map<number, PendingRequest>();
  private readonly queue: string[] = [];
  private nextId = 0;
  private attempt = 0;
  private everOpened = false;
  private tokenReason: TokenReason = 'connect';
  private overloaded = false;
  private flushing = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private pingTimer: ReturnType<typeof setTimeout> | undefined;
  private lastTraffic = 0;

  constructor(
    readonly url: string,
    private readonly options: RealtimeClientOptions = {},
  ) {
    const Impl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Impl) {
      throw new TypeError('RealtimeClient needs a WebSocket implementation: pass { WebSocket } (e.g. from the ws package)');
    }
    this.WebSocketImpl = Impl;
    this.backoff = resolveBackoff(options.backoff);
    void this.connect();
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Listens to state changes; returns a function that stops listening. */
  onState(listener: (change: StateChange) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Listens to errors that belong to no request (an error frame without id, a failed refresh). */
  onError(listener: (error: RealtimeClientError) => void): () => void {
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Listens to server pushes (and replies to requests without id) of one event. */
  on(event: string, listener: (data: unknown, frame: IncomingFrame) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Resolves once the client is open (rejects if it closes for good first). */
  whenOpen(): Promise<void> {
    if (this.stateValue === 'open' && !this.flushing) {
      return Promise.resolve();
    }
    if (this.stateValue === 'closed') {
      return Promise.reject(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client is closed'));
    }
    return new Promise((resolve, reject) => {
      const stop = this.onState(({ state }) => {
        if (state === 'open') {
          stop();
          resolve();
        } else if (state === 'closed') {
          stop();
          reject(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client closed before it opened'));
        }
      });
    });
  }

  /** Sends an event without waiting for anything. Throws `QUEUE_FULL` or `CLOSED` rather than drop it. */
  send(event: string, data?: unknown): void {
    this.write(JSON.stringify({ event, data }));
  }

  /**
   * Sends a request and resolves with the `data` of its reply. Rejects with a
   * {@link RealtimeClientError}: the server's code and details, `TIMEOUT`, or
   * `DISCONNECTED` when the connection dropped after it was sent.
   */
  request<T = unknown>(event: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    const id = ++this.nextId;
    const frame = JSON.stringify({ event, id, data });
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const queued = this.queue.indexOf(frame);
        if (queued !== -1) {
          this.queue.splice(queued, 1);
        }
        reject(new RealtimeClientError(ClientErrorCode.TIMEOUT, `no reply to "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const request: PendingRequest = { resolve: resolve as (value: unknown) => void, reject, timer, sent: false, frame };
      this.pending.set(id, request);
      try {
        request.sent = this.write(frame);
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error as RealtimeClientError);
      }
    });
  }

  /** Closes for good: no reconnection; queued and pending requests fail with `CLOSED`. */
  close(code: number = CloseCode.NORMAL, reason = 'client closed'): void {
    this.setState('closed', { code, reason });
    this.stopTimers();
    this.failAll(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client was closed'), true);
    this.socket?.close(code, reason);
    this.socket = undefined;
  }

  /** Writes now when open, else queues; true when written. */
  private write(frame: string): boolean {
    if (this.stateValue === 'closed') {
      throw new RealtimeClientError(ClientErrorCode.CLOSED, 'the client is closed');
    }
    if (this.socket?.readyState === OPEN && this.stateValue === 'open' && !this.flushing) {
      this.socket.send(frame);
      return true;
    }
    if (this.queue.length >= (this.options.maxQueue ?? 100)) {
      throw new RealtimeClientError(ClientErrorCode.QUEUE_FULL, `${this.queue.length} messages are already waiting for the connection`);
    }
    this.queue.push(frame);
    return false;
  }

  private async connect(): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.token(this.tokenReason);
    } catch (error) {
      this.emitError(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `the token provider failed: ${String(error)}`));
      this.scheduleReconnect(undefined);
      return;
    }
    if (this.stateValue === 'closed') {
      return;
    }
    const protocols = token ? [PROTOCOL_V1, BEARER_PROTOCOL_PREFIX + token] : [PROTOCOL_V1];
    const socket = new this.WebSocketImpl(this.url, protocols);
    this.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      void this.onOpen(socket, token);
    });
    socket.addEventListener('message', (event) => this.onMessage(event.data));
    socket.addEventListener('error', () => undefined); // the close event follows and decides
    socket.addEventListener('close', (event) => {
      if (this.socket === socket) {
        this.onClose(event.code, event.reason, opened);
      }
    });
  }

  private async token(reason: TokenReason): Promise<string | undefined> {
    const { token } = this.options;
    return typeof token === 'function' ? await token(reason) : token;
  }

  private async onOpen(socket: WebSocketLike, token: string | undefined): Promise<void> {
    const reconnect = this.everOpened;
    this.everOpened = true;
    this.attempt = 0;
    this.overloaded = false;
    this.tokenReason = 'reconnect';
    this.lastTraffic = Date.now();
    this.flushing = true;
    this.setState('open');
    this.scheduleRefresh(token);
    this.schedulePing();
    if (reconnect && this.options.onReconnect) {
      // The hook's own requests bypass the queue, which holds older messages for later.
      this.flushing = false;
      const held = this.queue.splice(0);
      try {
        await this.options.onReconnect(this);
      } catch (error) {
        this.emitError(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `onReconnect failed: ${String(error)}`));
      }
      this.queue.unshift(...held);
    }
    this.flushing = false;
    if (this.socket !== socket || socket.readyState !== OPEN) {
      return;
    }
    for (const frame of this.queue.splice(0)) {
      socket.send(frame);
      for (const request of this.pending.values()) {
        if (request.frame === frame) {
          request.sent = true;
        }
      }
    }
  }

  private onMessage(raw: unknown): void {
    this.lastTraffic = Date.now();
    if (typeof raw !== 'string') {
      return;
    }
    let frame: IncomingFrame;
    try {
      frame = JSON.parse(raw) as IncomingFrame;
    } catch {
      this.dispatch({ event: 'raw', data: raw });
      return;
    }
    if (typeof frame?.event !== 'string') {
      return;
    }
    const request = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
    if (request) {
      this.pending.delete(frame.id as number);
      clearTimeout(request.timer);
      if (frame.event === ERROR_EVENT) {
        const error = frame.data as ErrorPayload;
        request.reject(new RealtimeClientError(error.code, error.message, error.details));
      } else {
        request.resolve(frame.data);
      }
      return;
    }
    if (frame.event === ERROR_EVENT && frame.id === undefined) {
      const error = frame.data as ErrorPayload;
      this.emitError(new RealtimeClientError(error.code, error.message, error.details));
    }
    this.dispatch(frame);
  }

  private dispatch(frame: IncomingFrame): void {
    for (const listener of this.listeners.get(frame.event) ?? []) {
      listener(frame.data, frame);
    }
  }

  private onClose(code: number, reason: string, opened: boolean): void {
    this.socket = undefined;
    this.stopTimers();
    // What was written to this socket may or may not have been handled: say so.
    for (const [id, request] of this.pending) {
      if (request.sent) {
        this.pending.delete(id);
        clearTimeout(request.timer);
        request.reject(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `the connection closed (${code}) before the reply`));
      }
    }
    if (this.stateValue === 'closed') {
      return;
    }
    if (FINAL_CLOSES.has(code)) {
      this.emitError(new RealtimeClientError(ClientErrorCode.CLOSED, `the server closed the connection for good (${code} ${reason})`));
      this.setState('closed', { code, reason });
      this.failAll(new RealtimeClientError(ClientErrorCode.CLOSED, `closed by the server (${code})`), true);
      return;
    }
    if (code === CloseCode.TOKEN_EXPIRED || !opened) {
      // 4001, or a handshake refused before any open (browsers cannot see the 401): a new token may help.
      this.tokenReason = 'expired';
    }
    this.overloaded = code === CloseCode.TRY_AGAIN_LATER;
    this.scheduleReconnect({ code, reason });
  }

  private scheduleReconnect(close: { code: number; reason: string } | undefined): void {
    const max = this.options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY;
    if (this.attempt >= max) {
      this.setState('closed', close);
      this.failAll(new RealtimeClientError(ClientErrorCode.CLOSED, `gave up after ${max} reconnection attempts`), true);
      return;
    }
    // A 4001 is answered at once with a fresh token; everything else backs off.
    const delay = close?.code === CloseCode.TOKEN_EXPIRED && this.attempt === 0 ? 0 : backoffDelay(this.attempt, this.backoff, this.overloaded);
    this.attempt++;
    this.setState('reconnecting', close, delay);
    this.retryTimer = setTimeout(() => {
      if (this.stateValue !== 'closed') {
        this.setState('connecting');
        void this.connect();
      }
    }, delay);
  }

  private scheduleRefresh(token: string | undefined): void {
    const expiry = token ? tokenExpiry(token) : undefined;
    if (expiry === undefined || typeof this.options.token !== 'function') {
      return;
    }
    const lifetime = expiry - Date.now();
    const before = Math.min(this.options.refreshBeforeExpiryMs ?? 30_000, lifetime / 2);
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(0, lifetime - before));
  }

  private async refresh(): Promise<void> {
    try {
      const token = await this.token('refresh');
      await this.request(AUTH_EVENT, { token });
      this.scheduleRefresh(token);
    } catch (error) {
      // The server will close with 4001 at expiry; the reconnection then asks for a token again.
      this.emitError(error instanceof RealtimeClientError ? error : new RealtimeClientError(ClientErrorCode.DISCONNECTED, String(error)));
    }
  }

  private schedulePing(): void {
    const interval = this.options.pingIntervalMs ?? 20_000;
    if (interval === false) {
      return;
    }
    this.pingTimer = setTimeout(() => {
      const silentFor = Date.now() - this.lastTraffic;
      if (silentFor < interval) {
        this.pingTimer = undefined;
        this.schedulePing();
        return;
      }
      const socket = this.socket;
      this.request(PING_EVENT, undefined, { timeoutMs: this.options.pongTimeoutMs ?? 10_000 }).then(
        () => this.schedulePing(),
        (error: RealtimeClientError) => {
          if (error.code === ClientErrorCode.TIMEOUT && this.socket === socket && socket) {
            // No pong: the link is dead even if the socket does not know it yet.
            socket.close(DEAD_LINK_CLOSE, 'no pong');
            this.onClose(1006, 'no pong', true);
          }
        },
      );
    }, interval);
  }

  private stopTimers(): void {
    clearTimeout(this.retryTimer);
    clearTimeout(this.refreshTimer);
    clearTimeout(this.pingTimer);
  }

  private failAll(error: RealtimeClientError, includeQueued: boolean): void {
    for (const [id, request] of this.pending) {
      if (request.sent || includeQueued) {
        this.pending.delete(id);
        clearTimeout(request.timer);
        request.reject(error);
      }
    }
    if (includeQueued) {
      this.queue.length = 0;
    }
  }

  private setState(state: ConnectionState, close?: { code: number; reason: string }, retryInMs?: number): void {
    const previous = this.stateValue;
    if (previous === state && state !== 'reconnecting') {
      return;
    }
    this.stateValue = state;
    const change: StateChange = { state, previous, ...(close ? { close } : {}), ...(retryInMs !== undefined ? { retryInMs } : {}) };
    for (const listener of [...this.stateListeners]) {
      listener(change);
    }
  }

  private emitError(error: RealtimeClientError): void {
    for (const listener of [...this.errorListeners]) {
      listener(error);
    }
  }
}
