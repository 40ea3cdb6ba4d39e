import { CloseCode } from '../protocol/close-codes.js';
import { AUTH_EVENT, BEARER_PROTOCOL_PREFIX, ERROR_EVENT, type ErrorPayload, PING_EVENT, PROTOCOL_V1 } from '../protocol/envelope.js';
import { backoffDelay, type BackoffOptions, resolveBackoff } from './backoff.js';
import { ClientErrorCode, RealtimeClientError } from './client-error.js';
import { tokenExpiry } from './jwt-expiry.js';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './websocket-like.js';

/** The client's connection state. `open` means connected, hook done and queue sent. */
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
  /** The token, or a provider called before every connection and refresh. Omit for public gateways. */
  token?: string | TokenProvider;
  /** How long the token provider may take before the attempt counts as failed, in ms. Default 10000. */
  tokenTimeoutMs?: number;
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
  /** Runs after every reconnection, before the state is `open` and queued messages go: re-join rooms here. */
  onReconnect?: (context: ReconnectContext) => void | Promise<void>;
  /** Source of randomness for the backoff jitter, in [0, 1). Default `Math.random` (tests pin it). */
  random?: () => number;
  /** Where exceptions thrown by your listeners go. Default: rethrown asynchronously, as an `EventTarget` reports them. */
  reportListenerError?: (error: unknown) => void;
}

/** Close codes after which the client stops for good (protocol §5). */
const FINAL_CLOSES: ReadonlySet<number> = new Set([
  CloseCode.NORMAL,
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.FORBIDDEN,
]);
/** The close code the client uses when its heartbeat finds the link dead (4000-4999 are free for applications). */
const DEAD_LINK_CLOSE = 4000;
/** Longest delay a timer takes everywhere (setTimeout fires at once beyond it). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const MIN_REFRESH_DELAY_MS = 1000;

interface PendingRequest {
  resolve(value: unknown): void;
  reject(error: RealtimeClientError): void;
  timer: ReturnType<typeof setTimeout>;
  /** Written to a socket: lost if that socket drops. */
  sent: boolean;
}

interface Queued {
  readonly frame: string;
  readonly id?: number;
}

type Listener = (data: unknown, frame: IncomingFrame) => void;

/**
 * Client of protocol v1, for browsers and Node: reconnection with full-jitter backoff that
 * follows the close codes of protocol §5, request/reply with timeouts and typed errors,
 * token refresh (at connect, on 4001, and in-band before expiry), an app-level heartbeat
 * and a bounded queue while disconnected. No Nest, no Node built-ins.
 *
 * Listeners that throw do not disturb it: their exceptions are reported asynchronously,
 * as an `EventTarget` does.
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
  private queue: Queued[] = [];
  private nextId = 0;
  private attempt = 0;
  private everOpened = false;
  private tokenReason: TokenReason = 'connect';
  private overloaded = false;
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
    if (!/^wss?:\/\//i.test(url)) {
      throw new TypeError(`RealtimeClient needs a ws:// or wss:// URL, got ${url}`);
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

  /** Listens to errors that belong to no request (an error frame without id, a failed refresh or connection). */
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
    if (this.stateValue === 'open') {
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
    this.write({ frame: JSON.stringify({ event, data }) }, false);
  }

  /**
   * Sends a request and resolves with the `data` of its reply. Rejects with a
   * {@link RealtimeClientError}: the server's code and details, `TIMEOUT`, or
   * `DISCONNECTED` when the connection dropped after it was sent.
   */
  request<T = unknown>(event: string, data?: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    return this.requestVia(event, data, options, false);
  }

  /** Closes for good: no reconnection; queued and pending requests fail with `CLOSED`. */
  close(code: number = CloseCode.NORMAL, reason = 'client closed'): void {
    const socket = this.socket;
    this.socket = undefined;
    this.stopTimers();
    // Browsers accept only 1000 and 3000-4999 from a client, and 123 bytes of reason.
    const usable = code === CloseCode.NORMAL || (code >= 3000 && code <= 4999) ? code : CloseCode.NORMAL;
    let fitting = reason;
    while (new TextEncoder().encode(fitting).length > 123) {
      fitting = fitting.slice(0, -1);
    }
    try {
      socket?.close(usable, fitting);
    } catch {
      // Already closing: nothing more to do.
    }
    this.failAll(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client was closed'), true);
    this.setState('closed', { code: usable, reason });
  }

  private requestVia<T>(event: string, data: unknown, options: { timeoutMs?: number }, direct: boolean): Promise<T> {
    const id = ++this.nextId;
    const frame = JSON.stringify({ event, id, data });
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        this.queue = this.queue.filter((queued) => queued.id !== id); // never sent late
        reject(new RealtimeClientError(ClientErrorCode.TIMEOUT, `no reply to "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const request: PendingRequest = { resolve: resolve as (value: unknown) => void, reject, timer, sent: false };
      this.pending.set(id, request);
      try {
        request.sent = this.write({ frame, id }, direct);
      } catch (error) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(error as RealtimeClientError);
      }
    });
  }

  /** Writes now when open (or `direct`, during the reconnect hook), else queues; true when written. */
  private write(queued: Queued, direct: boolean): boolean {
    if (this.stateValue === 'closed') {
      throw new RealtimeClientError(ClientErrorCode.CLOSED, 'the client is closed');
    }
    const socket = this.socket;
    if (socket?.readyState === OPEN && (this.stateValue === 'open' || direct)) {
      socket.send(queued.frame);
      return true;
    }
    if (this.queue.length >= (this.options.maxQueue ?? 100)) {
      throw new RealtimeClientError(ClientErrorCode.QUEUE_FULL, `${this.queue.length} messages are already waiting for the connection`);
    }
    this.queue.push(queued);
    return false;
  }

  private async connect(): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.token(this.tokenReason);
    } catch (error) {
      if (this.stateValue !== 'closed') {
        this.emitError(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `the token provider failed: ${describe(error)}`));
        this.scheduleReconnect(undefined);
      }
      return;
    }
    if (this.stateValue === 'closed') {
      return;
    }
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.url, token ? [PROTOCOL_V1, BEARER_PROTOCOL_PREFIX + token] : [PROTOCOL_V1]);
    } catch (error) {
      // E.g. a token that is not a valid subprotocol value (base64 with + / =): a new token may do.
      this.emitError(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `cannot open the WebSocket: ${describe(error)}`));
      this.tokenReason = 'expired';
      this.scheduleReconnect(undefined);
      return;
    }
    this.socket = socket;
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      void this.onOpen(socket, token);
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) {
        this.onMessage(event.data);
      }
    });
    socket.addEventListener('error', () => undefined); // the close event follows and decides
    socket.addEventListener('close', (event) => {
      if (this.socket === socket) {
        this.onClose(event.code, event.reason, opened);
      }
    });
  }

  private async token(reason: TokenReason): Promise<string | undefined> {
    const { token } = this.options;
    if (typeof token !== 'function') {
      return token;
    }
    const limitMs = this.options.tokenTimeoutMs ?? 10_000;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no token within ${limitMs} ms`)), limitMs);
    });
    try {
      return await Promise.race([Promise.resolve(token(reason)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async onOpen(socket: WebSocketLike, token: string | undefined): Promise<void> {
    const reconnect = this.everOpened;
    this.everOpened = true;
    this.attempt = 0;
    this.overloaded = false;
    this.tokenReason = 'reconnect';
    this.lastTraffic = Date.now();
    this.scheduleRefresh(token, socket);
    this.schedulePing(socket);
    if (reconnect && this.options.onReconnect) {
      // The hook's own messages go out at once; everything else waits in the queue.
      const context: ReconnectContext = {
        request: (event, data, options = {}) => this.requestVia(event, data, options, true),
        send: (event, data) => void this.write({ frame: JSON.stringify({ event, data }) }, true),
      };
      try {
        await this.options.onReconnect(context);
      } catch (error) {
        this.emitError(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `onReconnect failed: ${describe(error)}`));
      }
    }
    if (this.socket !== socket || socket.readyState !== OPEN || this.stateValue === 'closed') {
      return;
    }
    const queue = this.queue;
    this.queue = [];
    for (const queued of queue) {
      socket.send(queued.frame);
      const request = queued.id === undefined ? undefined : this.pending.get(queued.id);
      if (request) {
        request.sent = true;
      }
    }
    this.setState('open');
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
    if (frame.id !== undefined) {
      const request = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
      if (!request) {
        return; // a reply that came after its request timed out: nobody is waiting for it
      }
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
    if (frame.event === ERROR_EVENT) {
      const error = frame.data as ErrorPayload;
      this.emitError(new RealtimeClientError(error.code, error.message, error.details));
    }
    this.dispatch(frame);
  }

  private dispatch(frame: IncomingFrame): void {
    for (const listener of [...(this.listeners.get(frame.event) ?? [])]) {
      this.guard(() => listener(frame.data, frame));
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
    const stopFor = FINAL_CLOSES.has(code)
      ? `the server closed the connection for good (${code} ${reason})`
      : code === CloseCode.TOKEN_EXPIRED && typeof this.options.token === 'string'
        ? 'the token expired (4001) and there is no token provider to get a new one'
        : undefined;
    if (stopFor) {
      this.failAll(new RealtimeClientError(ClientErrorCode.CLOSED, stopFor), true);
      this.setState('closed', { code, reason });
      this.emitError(new RealtimeClientError(ClientErrorCode.CLOSED, stopFor));
      return;
    }
    if (code === CloseCode.TOKEN_EXPIRED || !opened) {
      // 4001, or a handshake refused before any open (browsers cannot see the 401): a new token may help.
      this.tokenReason = 'expired';
    }
    // Overload lasts until a connection opens again, whatever closes the attempts meanwhile.
    this.overloaded ||= code === CloseCode.TRY_AGAIN_LATER;
    this.scheduleReconnect({ code, reason });
  }

  private scheduleReconnect(close: { code: number; reason: string } | undefined): void {
    if (this.stateValue === 'closed') {
      return;
    }
    const max = this.options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY;
    if (this.attempt >= max) {
      this.failAll(new RealtimeClientError(ClientErrorCode.CLOSED, `gave up after ${max} reconnection attempts`), true);
      this.setState('closed', close);
      return;
    }
    // A 4001 is answered at once with a fresh token; everything else backs off.
    const delay =
      close?.code === CloseCode.TOKEN_EXPIRED && this.attempt === 0
        ? 0
        : backoffDelay(this.attempt, this.backoff, this.overloaded, this.options.random);
    this.attempt++;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => {
      if (this.stateValue === 'reconnecting') {
        this.setState('connecting');
        void this.connect();
      }
    }, delay);
    this.setState('reconnecting', close, delay);
  }

  private scheduleRefresh(token: string | undefined, socket: WebSocketLike): void {
    clearTimeout(this.refreshTimer);
    const expiry = token ? tokenExpiry(token) : undefined;
    if (expiry === undefined || typeof this.options.token !== 'function') {
      return;
    }
    const lifetime = expiry - Date.now();
    const before = Math.min(this.options.refreshBeforeExpiryMs ?? 30_000, lifetime / 2);
    const due = Math.max(MIN_REFRESH_DELAY_MS, lifetime - before);
    // Timers beyond ~24.8 days fire at once: wait in steps and look again.
    this.refreshTimer = setTimeout(
      () => (due > MAX_TIMER_MS ? this.scheduleRefresh(token, socket) : void this.refresh(socket)),
      Math.min(due, MAX_TIMER_MS),
    );
  }

  private async refresh(socket: WebSocketLike): Promise<void> {
    try {
      const token = await this.token('refresh');
      await this.request(AUTH_EVENT, { token });
      if (this.socket === socket && this.stateValue !== 'closed') {
        this.scheduleRefresh(token, socket);
      }
    } catch (error) {
      if (this.stateValue !== 'closed') {
        // The server will close with 4001 at expiry; the reconnection then asks for a token again.
        this.emitError(
          error instanceof RealtimeClientError ? error : new RealtimeClientError(ClientErrorCode.DISCONNECTED, describe(error)),
        );
      }
    }
  }

  private schedulePing(socket: WebSocketLike, delay?: number): void {
    const interval = this.options.pingIntervalMs ?? 20_000;
    if (interval === false) {
      return;
    }
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (this.socket !== socket) {
        return;
      }
      const silentFor = Date.now() - this.lastTraffic;
      if (silentFor < interval) {
        this.schedulePing(socket, interval - silentFor);
        return;
      }
      this.requestVia(PING_EVENT, undefined, { timeoutMs: this.options.pongTimeoutMs ?? 10_000 }, true).then(
        () => this.schedulePing(socket),
        (error: RealtimeClientError) => {
          if (error.code === ClientErrorCode.TIMEOUT && this.socket === socket) {
            // No pong: the link is dead even if the socket does not know it yet.
            const terminate = (socket as { terminate?: () => void }).terminate;
            terminate ? terminate.call(socket) : socket.close(DEAD_LINK_CLOSE, 'no pong');
            this.onClose(1006, 'no pong', true);
          }
        },
      );
    }, delay ?? interval);
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
      this.queue = [];
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
      this.guard(() => listener(change));
    }
  }

  private emitError(error: RealtimeClientError): void {
    for (const listener of [...this.errorListeners]) {
      this.guard(() => listener(error));
    }
  }

  /** Runs a listener; its exception is reported instead of breaking the client's own work. */
  private guard(call: () => void): void {
    try {
      call();
    } catch (error) {
      const report =
        this.options.reportListenerError ??
        ((thrown: unknown) =>
          setTimeout(() => {
            throw thrown;
          }));
      report(error);
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
