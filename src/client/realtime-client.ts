import { CloseCode } from '../protocol/close-codes.js';
import { trimCloseReason } from '../protocol/close-reason.js';
import { AUTH_EVENT, ERROR_EVENT, PING_EVENT } from '../protocol/envelope.js';
import { abandon, clientCloseCode, finalClose } from './close-policy.js';
import * as codec from './client-codec.js';
import { resolveBackoff } from './backoff.js';
import { ClientStateMachine, type ConnectionState, type StateChange } from './client-state.js';
import { type ClientClock, keepingTimers, systemClock } from './clock.js';
import { ClientEvents } from './client-events.js';
import { ClientHeartbeat } from './client-heartbeat.js';
import { runReconnectHook } from './reconnect-hook.js';
import { Reconnection } from './reconnection.js';
import type { EventMap, IncomingFrame, ReconnectContext, RealtimeClientOptions } from './client-options.js';
import { ClientErrorCode, describe, errorOfFrame, RealtimeClientError, toClientError } from './client-error.js';
import { Outbox } from './outbox.js';
import { checkClientOptions } from './option-checks.js';
import { type ServerRequestHandler, RequestHandlers } from './request-handlers.js';
import { type RoomRejoin, RoomTracker } from './room-tracker.js';
import { TokenKeeper } from './token-keeper.js';
import { OPEN, type WebSocketConstructor, type WebSocketLike, webSocketFor } from './websocket-like.js';
import type { PushesOf, ReplyOf, RequestArgs, RequestEvent, RequestOptions, UntypedEvent } from './client-contract.js';

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
 * await client.join('general'); // joined again after a reconnection, with what was missed
 * ```
 */
export class RealtimeClient<Events extends EventMap = EventMap> {
  private readonly WebSocketImpl: WebSocketConstructor;
  private readonly clock: ClientClock;
  private readonly events: ClientEvents;
  private readonly machine: ClientStateMachine;
  private readonly outbox: Outbox;
  private socket: WebSocketLike | undefined;
  private readonly retry: Reconnection;
  /** The running `onReconnect`'s deadline, cleared with the other timers (a hook left hanging keeps nothing alive). */
  private hookDeadline: unknown;
  private readonly tokens: TokenKeeper;
  private readonly rooms: RoomTracker;
  private readonly heartbeat: ClientHeartbeat;
  private readonly handlers = new RequestHandlers();
  private readonly encoding;
  private readonly prepare: (frame: object) => codec.PreparedFrame;
  /** How the current connection writes frames: as the subprotocol its server selected says. */
  private encode: codec.FrameEncoder;
  /** The constructor's connect() is still to come; a disconnect() before it cancels it. */
  private autoConnecting = false;
  /** Attempts started, ever: an attempt that is not the latest stops (see {@link attempt}). */
  private attempts = 0;

  constructor(
    readonly url: string,
    private readonly options: RealtimeClientOptions = {},
  ) {
    this.options = options = checkClientOptions(options); // a null option taken as absent
    this.WebSocketImpl = webSocketFor(url, options.WebSocket);
    this.encoding = codec.checkEncoding(options.encoding);
    this.prepare = codec.preparerFor(this.encoding);
    this.encode = codec.encoderFor('');
    this.clock = options.clock ?? systemClock;
    this.retry = new Reconnection(this.clock, resolveBackoff(options.backoff), options.random);
    this.events = new ClientEvents(options.reportListenerError);
    this.machine = new ClientStateMachine((call) => this.events.guard(call));
    this.outbox = new Outbox(this.clock, options.maxQueue ?? 100);
    this.heartbeat = new ClientHeartbeat(this.clock, options.pingIntervalMs ?? 20_000);
    this.rooms = new RoomTracker(options.rooms);
    this.tokens = new TokenKeeper(this.clock, options.token, options.tokenTimeoutMs ?? 10_000, options.refreshBeforeExpiryMs ?? 30_000);
    if (options.autoConnect ?? true) {
      this.autoConnecting = true;
      queueMicrotask(() => this.autoConnecting && this.connect());
    }
  }

  /** The connection state. */
  get state(): ConnectionState {
    return this.machine.state;
  }

  /** Listens to state changes; returns a function that stops listening. */
  onState(listener: (change: StateChange) => void): () => void {
    return this.machine.listen(listener);
  }

  /** Listens to errors that belong to no request (an error frame without id, a failed refresh or connection). */
  onError(listener: (error: RealtimeClientError) => void): () => void {
    return this.events.onError(listener);
  }

  /** Listens to server pushes (and replies to requests without id) of one event; typed by the client's contract or event map. */
  on<E extends keyof PushesOf<Events> & string>(
    event: E,
    listener: (data: PushesOf<Events>[E], frame: IncomingFrame<PushesOf<Events>[E]>) => void,
  ): () => void {
    return this.events.on(event, listener as (data: unknown, frame: IncomingFrame) => void);
  }

  /**
   * Answers the server's requests of one event (`hub.request()`): the handler's result is the
   * reply, a throw goes back as an error; one handler per event (none: `UNKNOWN_EVENT`).
   * Returns a function that removes it.
   */
  handle<T = unknown>(event: string, handler: ServerRequestHandler<T>): () => void {
    return this.handlers.set(event, handler as ServerRequestHandler);
  }

  /**
   * Joins a room (`rooms.joinEvent`, default `join`, with `{...data, room}`) and keeps
   * track of it: after a reconnection it is joined again with `since`, so that what was
   * missed arrives through the usual listeners, once each. Resolves with the server's reply.
   */
  join<T = unknown>(room: string, data: Readonly<Record<string, unknown>> = {}): Promise<T> {
    return this.rooms.track(room, data, () => this.requestVia<T>(this.rooms.joinEvent, { ...data, room }, {}, false));
  }

  /** Leaves a room joined with {@link join} (`rooms.leaveEvent`, default `leave`). */
  leave<T = unknown>(room: string, data: Readonly<Record<string, unknown>> = {}): Promise<T> {
    this.rooms.left(room);
    return this.requestVia<T>(this.rooms.leaveEvent, { ...data, room }, {}, false);
  }

  /** Listens to the rooms joined again after a reconnection, and whether each recovered what it missed. */
  onRejoin(listener: (rejoin: RoomRejoin) => void): () => void {
    return this.rooms.onRejoin(listener);
  }

  /** Starts connecting, when the client is `closed` (not yet connected, or disconnected); a no-op otherwise. */
  connect(): void {
    this.autoConnecting = false;
    if (this.machine.state !== 'closed') {
      return;
    }
    this.retry.restart();
    this.machine.move('connecting', 'connect');
    void this.attempt(++this.attempts);
  }

  /** Resolves once the client is open; rejects if it closes first, or is closed and not about to connect. */
  whenOpen(): Promise<void> {
    return this.machine.whenOpen(this.autoConnecting);
  }

  /** Sends an event without waiting for anything. Throws `QUEUE_FULL` or `CLOSED` rather than drop it. */
  send(event: string, data?: unknown): void {
    this.write(this.prepare({ event, data }), undefined, false);
  }

  /**
   * Sends a request and resolves with the `data` of its reply. Rejects with a
   * {@link RealtimeClientError}: the server's code and details, `TIMEOUT`, or
   * `DISCONNECTED` when the connection dropped after it was sent. With a contract as the
   * client's type argument, the event, its data and its reply are typed by it.
   */
  request<E extends RequestEvent<Events>>(event: E, ...args: RequestArgs<Events, E>): Promise<ReplyOf<Events, E>>;
  request<T = unknown>(event: UntypedEvent<Events>, data?: unknown, options?: RequestOptions): Promise<T>;
  request(event: string, data?: unknown, options: RequestOptions = {}): Promise<unknown> {
    return this.requestVia(event, data, options, false);
  }

  /**
   * Disconnects, with no reconnection until `connect()`: queued and pending requests fail
   * with `CLOSED`. The code must be one a client may send (1000, 3000-4999; others become
   * 1000), and the reason is cut to the 123 bytes a close frame carries.
   */
  disconnect(code: number = CloseCode.NORMAL, reason = 'client closed'): void {
    this.autoConnecting = false;
    this.attempts++; // an attempt under way stops at its next step
    const socket = this.socket;
    this.socket = undefined;
    this.stopTimers(true);
    const [usable, fitting] = [clientCloseCode(code), trimCloseReason(reason)];
    try {
      socket?.close(usable, fitting);
    } catch {
      // Already closing: nothing more to do.
    }
    this.outbox.fail(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client was disconnected'), true);
    if (this.state !== 'closed') {
      this.machine.move('closed', 'disconnect', { code: usable, reason: fitting });
    }
  }

  private requestVia<T>(event: string, data: unknown, options: { timeoutMs?: number }, direct: boolean): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000;
    return this.outbox.request<T>(event, data, timeoutMs, this.prepare, (frame, id) => this.write(frame, id, direct));
  }

  /** Writes now when open (or `direct`, during the reconnect hook), else queues; true when written. */
  private write(frame: codec.PreparedFrame, id: number | undefined, direct: boolean): boolean {
    // Right after the constructor the client is about to connect: what is sent then waits in the queue.
    if (this.state === 'closed' && !this.autoConnecting) {
      throw new RealtimeClientError(ClientErrorCode.CLOSED, 'the client is closed');
    }
    const socket = this.socket;
    if (socket?.readyState === OPEN && (this.state === 'open' || direct)) {
      socket.send(this.encode(frame));
      return true;
    }
    this.outbox.enqueue(frame, id);
    return false;
  }

  /**
   * One connection attempt: a token, then the WebSocket. `attempt` is its number: once a
   * newer attempt (or a disconnect) has come, it stops at its next step.
   */
  private async attempt(attempt: number): Promise<void> {
    let token: string | undefined;
    try {
      token = await this.tokens.get(this.retry.tokenReason);
    } catch (error) {
      if (attempt === this.attempts && this.state === 'connecting') {
        this.attemptFailed(attempt, `the token provider failed: ${describe(error)}`);
      }
      return;
    }
    if (attempt !== this.attempts || this.state !== 'connecting') {
      return;
    }
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(this.url, codec.protocolsFor(this.encoding, token));
      socket.binaryType = 'arraybuffer';
    } catch (error) {
      // A token that is no valid subprotocol value (base64 with + / =): a new one may do; a fixed one never will.
      // Browsers quote the offending subprotocol (escaped, at times), the token with it: never in an error message.
      const why = `cannot open the WebSocket: ${describe(error).replace(/bearer\.[^\s'"]*/gi, 'bearer.***')}`;
      this.retry.tokenReason = 'expired';
      return typeof this.options.token === 'function' ? this.attemptFailed(attempt, why) : this.end('gave-up', why);
    }
    this.socket = socket;
    let opened = false;
    const timeoutMs = this.options.connectTimeoutMs ?? 15_000;
    this.retry.handshakeWithin(timeoutMs, () => {
      if (this.socket === socket) {
        abandon(socket, 'no handshake');
        this.onClose(1006, `the handshake was not answered within ${timeoutMs} ms`, true);
      }
    });
    socket.addEventListener('open', () => {
      opened = true;
      if (this.socket === socket) {
        this.encode = codec.encoderFor(socket.protocol);
        void this.onOpen(socket, token);
      }
    });
    socket.addEventListener('message', (event) => {
      if (this.socket === socket) {
        this.onMessage(event.data, socket);
      }
    });
    socket.addEventListener('error', () => undefined); // the close event follows and decides
    socket.addEventListener('close', (event) => {
      if (this.socket === socket) {
        this.onClose(event.code, event.reason, opened);
      }
    });
  }

  /** An attempt failed before it had a socket; a listener told of it may have disconnected (or connected) meanwhile. */
  private attemptFailed(attempt: number, message: string): void {
    this.events.error(new RealtimeClientError(ClientErrorCode.DISCONNECTED, message));
    if (attempt === this.attempts && this.state === 'connecting') {
      this.scheduleReconnect(undefined);
    }
  }

  private async onOpen(socket: WebSocketLike, token: string | undefined): Promise<void> {
    const reconnect = this.retry.opened();
    this.tokens.schedule(token, () => void this.refresh(socket));
    this.heartbeat.start(
      () => this.requestVia(PING_EVENT, undefined, { timeoutMs: this.options.pongTimeoutMs ?? 10_000 }, true),
      () => {
        if (this.socket === socket) {
          // No pong: the link is dead even if the socket does not know it yet.
          abandon(socket, 'no pong');
          this.onClose(1006, 'no pong', true);
        }
      },
    );
    const current = () => this.socket === socket && this.state === 'connecting';
    if (reconnect) {
      await this.rooms.rejoinAll({
        request: (body) => this.requestVia(this.rooms.joinEvent, body, {}, true), // ahead of the queue
        // A rejoin cut by the connection's end is tried again on the next one: nothing to tell.
        fail: (error) => this.socket === socket && this.events.error(toClientError(error)),
        guard: (call) => this.events.guard(call),
        later: (ms, call) => this.clock.setTimeout(call, ms),
      });
    }
    if (reconnect && this.options.onReconnect && current()) {
      // The hook's own messages go out at once; everything else waits in the queue.
      const context: ReconnectContext = {
        request: (event, data, options = {}) => this.requestVia(event, data, options, true),
        send: (event, data) => void this.write(this.prepare({ event, data }), undefined, true),
      };
      const clock = keepingTimers(this.clock, (timer) => (this.hookDeadline = timer));
      await runReconnectHook(this.options.onReconnect, context, clock, this.options.onReconnectTimeoutMs, this.events);
    }
    if (!current() || socket.readyState !== OPEN) {
      return;
    }
    this.outbox.flush(
      (frame) => socket.send(this.encode(frame)),
      (error) => this.events.error(toClientError(error)),
    );
    this.machine.move('open', 'opened');
  }

  private onMessage(data: unknown, socket: WebSocketLike): void {
    this.heartbeat.traffic();
    const frame = codec.frameOf(data, this.events);
    if (typeof frame?.event !== 'string' || this.outbox.settle(frame)) {
      return;
    }
    if (frame.sid !== undefined) {
      // A server request, answered on the connection it came on while that stays open.
      const encode = this.encode;
      this.handlers.answer(frame, (reply) => socket.readyState === OPEN && socket.send(encode(reply)));
      return;
    }
    this.rooms.seen(frame);
    if (frame.event === ERROR_EVENT) {
      this.events.error(errorOfFrame(frame.data));
    }
    this.events.dispatch(frame);
  }

  /** The connection (or the attempt) ended; `opened`: it opened, or it did not but was no refusal either (a timeout). */
  private onClose(code: number, reason: string, opened: boolean): void {
    this.socket = undefined;
    this.stopTimers();
    // What was written to this socket may or may not have been handled: say so.
    this.outbox.fail(new RealtimeClientError(ClientErrorCode.DISCONNECTED, `the connection closed (${code}) before the reply`), false);
    if (this.state === 'closed') {
      return;
    }
    const stopFor = finalClose(code, reason, typeof this.options.token !== 'string');
    stopFor === undefined && this.retry.closed(code, !opened);
    return stopFor ? this.end('server-closed', stopFor, { code, reason }) : this.scheduleReconnect({ code, reason });
  }

  private scheduleReconnect(close: { code: number; reason: string } | undefined): void {
    const max = this.options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY;
    if (this.retry.attempt >= max) {
      return this.end('gave-up', `gave up after ${max} reconnection attempts`, close);
    }
    const delay = this.retry.schedule(close?.code, () => {
      if (this.state === 'reconnecting') {
        this.machine.move('connecting', 'retry');
        void this.attempt(++this.attempts);
      }
    });
    this.machine.move('reconnecting', 'connection-lost', close, delay);
  }

  /** Closes the client for good: what waits fails with `CLOSED`, and error listeners hear why. */
  private end(reason: 'server-closed' | 'gave-up', why: string, close?: { code: number; reason: string }): void {
    this.stopTimers();
    this.outbox.fail(new RealtimeClientError(ClientErrorCode.CLOSED, why), true);
    this.machine.move('closed', reason, close);
    this.events.error(new RealtimeClientError(ClientErrorCode.CLOSED, why));
  }

  private async refresh(socket: WebSocketLike): Promise<void> {
    try {
      const token = await this.tokens.get('refresh');
      await this.requestVia(AUTH_EVENT, { token }, {}, false);
      if (this.socket === socket && this.state !== 'closed') {
        this.tokens.schedule(token, () => void this.refresh(socket));
      }
    } catch (error) {
      if (this.state !== 'closed') {
        this.events.error(toClientError(error));
        // Tried again while the token lasts; past it the server closes with 4001, and the reconnection asks anew.
        this.socket === socket && this.tokens.retry(() => void this.refresh(socket));
      }
    }
  }

  private stopTimers(disconnecting = false): void {
    this.retry.stop();
    this.clock.clearTimeout(this.hookDeadline);
    this.rooms.stop((timer) => this.clock.clearTimeout(timer));
    this.tokens.stop(disconnecting); // a token awaited on a lost connection may still serve the next
    this.heartbeat.stop();
  }
}
