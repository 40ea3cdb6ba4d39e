import { deflateFrame, deflateMessage } from '../transport/deflate.js';
import { type CompressionSettings, MIN_WINDOW_BITS } from '../options/compression.js';
import { type PrebuiltFrame, prebuildBinaryFrame, prebuildTextFrame } from '../transport/prebuilt-frame.js';
import type { PushFrame } from '../transport/push-frame.js';
import { packShared } from '../protocol/msgpack.js';
import { ServerRequests, type ServerRequestOptions } from './server-requests.js';
import type { IncomingMessage } from 'node:http';
import type { RealtimePrincipal } from '../auth/principal.interface.js';
import { HeartbeatEntry, type HeartbeatMonitor } from '../heartbeat/heartbeat-monitor.js';
import type { TokenBucket } from '../limits/token-bucket.js';
import type { Admission } from '../limits/limits.js';
import type { GatewayMetrics } from '../metrics/realtime-metrics.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { DisconnectCause, DisconnectReason } from './disconnect-reason.js';
import type { GatewaySettings } from './gateway-settings.js';
import { type BoundHandler, DIRECT_ONLY, type DirectHandler } from './handler-types.js';
import type { Deadline } from './deadline-queue.js';
import type { RealtimeTransport } from '../transport/transport.interface.js';

/** A client that does not read gets this long to answer its 4008 close: it is not reading, after all. */
const SLOW_CONSUMER_GRACE_MS = 1000;

/** The rooms of a connection in none: shared, never added to (see {@link Connection.joinRoom}). */
const NO_ROOMS: Set<string> = new Set();

/**
 * Server-side state of one WebSocket connection: its handlers (several gateways may
 * share a path), its invalid-frame budget and why it ended.
 */
export class Connection extends HeartbeatEntry implements Deadline {
  /** Nest's handlers bound to this client, by event; made by the first (see {@link handlerFor}). */
  private handlers: Map<string, BoundHandler> | undefined;
  /** The rooms it is in; kept by `RealtimeHub` with {@link joinRoom} and `rooms.delete`. */
  rooms: Set<string> = NO_ROOMS;
  /** The user `RealtimeHub` counts it under: its `sub` when it was registered or signed in. */
  user: string | undefined;
  /** Its inbound rate, and its user's (shared with the user's other connections), and that user. */
  rate: TokenBucket | undefined;
  userRate: TokenBucket | undefined;
  rateUser: string | undefined;
  /** Its place under the connection limits, given back when it closes. */
  admission: Admission | undefined;
  /** Its gateway's metrics, when the application has them. */
  metrics: GatewayMetrics | undefined;
  rawHandler: BoundHandler | undefined;
  /** Handlers the adapter calls itself, shared by every connection of their gateway instance. */
  direct: ReadonlyMap<string, DirectHandler> | undefined;
  /** Nest's disconnect callback of the first gateway that bound one (see the adapter's `bindClientDisconnect`). */
  nestDisconnect: ((reason: DisconnectReason) => void) | undefined;
  /** How many gateways bound their handlers to it (more than one: Nest's path for all). */
  bindings = 0;
  private invalidCount = 0;
  private invalidWindowStart = 0;
  private closeCause: DisconnectCause | undefined;
  /** Why it ended, once its socket closed (see {@link disconnectReason}). */
  endReason: DisconnectReason | undefined;
  /** Its token's expiry, kept by `TokenLifetime`'s deadline queue (see {@link Deadline}). */
  deadlineAt = 0;
  deadlineIndex = -1;
  /** In-band refreshes started, so that a slow one cannot overwrite a newer one. */
  refreshAttempts = 0;
  /** The verified token's claims; undefined on a public gateway without a token. */
  principal: RealtimePrincipal | undefined;
  /** The heartbeat monitor watching it; none when heartbeats are off. */
  private heartbeatMonitor: HeartbeatMonitor | undefined;
  /** Cuts the socket when the client does not answer the server's close frame in time. */
  private closeTimer: NodeJS.Timeout | undefined;
  /** Who waits for the close (see whenClosed); null once closed. */
  private closedWaiters: (() => void)[] | null | undefined;
  /** How what it sends is compressed (see {@link useCompression}); undefined without permessage-deflate. */
  private deflate: { readonly settings: CompressionSettings; readonly windowBits: number } | undefined;
  /** It speaks the MessagePack encoding (binary frames both ways), not JSON. */
  binary = false;
  /** The server's requests to this client that wait for its reply; made by the first. */
  asked: ServerRequests | undefined;
  /** Requests dispatched and not yet answered (see afterReply). */
  requestsInFlight = 0;
  /** What waits for the next answered request (see afterReply). */
  private afterReplyHooks: (() => void)[] | undefined;
  /** Bytes sent, bytes proven read (a pong to a probe ping sent after them), the probe out (see {@link mayWrite}). */
  private sentBytes = 0;
  private readBytes = 0;
  private probeMark: number | undefined;
  private probeSentAt = 0;
  constructor(
    /** The client as Nest's handlers see it (a `ws` WebSocket with the default transport). */
    readonly socket: object,
    /** What sends, pings, closes and resets the socket: a connection never touches `ws` itself. */
    readonly transport: RealtimeTransport,
    /**
     * The upgrade request, kept only for the application's `verifyConnection` hook, which
     * an in-band `auth` runs again; without a hook it is not held (about 1.3 KB a connection).
     */
    readonly request: IncomingMessage | undefined,
    readonly settings: GatewaySettings,
    /** Its adapter's async `handleDisconnect` work still running, which a shutdown waits for. */
    readonly disconnectWork: Set<Promise<unknown>>,
  ) {
    super();
  }

  /** Puts the connection under a heartbeat monitor: pinged when silent, terminated when it stays so. */
  watch(monitor: HeartbeatMonitor): void {
    this.heartbeatMonitor = monitor;
    monitor.add(this);
  }

  /**
   * Sends a request to the client (protocol 1.2) and resolves with the `data` of its reply;
   * see `RealtimeHub.request()` for how it fails.
   */
  ask(event: string, data: unknown, options: ServerRequestOptions): Promise<unknown> {
    this.asked ??= new ServerRequests();
    return this.asked.ask((frame) => this.sendFrame(frame), event, data, options);
  }

  /** Binds Nest's `handler` of `event` to this client, unless a handler of that event is bound already. */
  bindHandler(event: string, handler: BoundHandler): void {
    this.handlers ??= new Map();
    if (!this.handlers.has(event)) {
      this.handlers.set(event, handler);
    }
  }

  /** The handler of `event`: Nest's, bound to this client, or `DIRECT_ONLY` for one only `direct` has. */
  handlerFor(event: string): BoundHandler | undefined {
    return this.handlers?.get(event) ?? (this.direct?.has(event) ? DIRECT_ONLY : undefined);
  }

  /** Adds a room to {@link rooms}; the set is made on the first join (most connections join none). */
  joinRoom(room: string): void {
    if (this.rooms === NO_ROOMS) {
      this.rooms = new Set();
    }
    this.rooms.add(room);
  }

  /** Its heartbeat monitor's ping, sent while it is open. */
  heartbeatPing(): void {
    this.isOpen && this.transport.ping(this.socket);
  }

  /** Its heartbeat monitor found it silent for too long: cut it. */
  heartbeatTimeout(): void {
    this.metrics?.reapedOne();
    this.terminate('heartbeat-timeout');
  }

  /** Records proof of life: called for every inbound frame, pong and ping. */
  markAlive(): void {
    this.active = true;
  }

  /** Open and not closing: once the server (or the client) starts closing, its frames are discarded. */
  get isOpen(): boolean {
    return this.transport.isOpen(this.socket);
  }

  /**
   * Sends a frame (a reply, an error, a request) in the connection's encoding if it is still
   * open; false when it was not sent.
   * @throws what the encoding throws for data it cannot carry (a `BigInt`, a cycle).
   */
  sendFrame(frame: object): boolean {
    return this.sendOne(this.binary ? prebuildBinaryFrame(packShared(frame)) : prebuildTextFrame(JSON.stringify(frame)));
  }

  /** Sends a text frame as it is (JSON, or a raw handler's text) if the connection is still open; false when it was not sent. */
  send(text: string | Buffer): boolean {
    return this.sendOne(prebuildTextFrame(text));
  }

  /**
   * Sends a frame built for this connection alone, compressed (uncached) when it is over
   * the threshold. Written like a broadcast's frames, straight to the socket under `ws`:
   * one frame header written here, no `ws` framing per send.
   */
  private sendOne(frame: PrebuiltFrame): boolean {
    const deflate = this.deflate;
    if (deflate && frame.payload.length >= deflate.settings.threshold) {
      return this.writeFrame(deflateMessage(frame.payload, deflate.settings, deflate.windowBits, frame.binary) ?? frame);
    }
    return this.writeFrame(frame);
  }

  /**
   * Sends a push built once for many recipients (a broadcast) in the connection's encoding,
   * through the transport's fan-out (the same bytes for every recipient); false when it was
   * not sent. On a connection with compression, a frame over the threshold goes compressed:
   * once per frame and window, whatever the number of recipients.
   */
  sendPush(push: PushFrame): boolean {
    const frame = this.binary ? push.binaryFrame() : push.textFrame();
    if (!frame) {
      return false; // not encodable for this connection (logged by the push)
    }
    const deflate = this.deflate;
    if (deflate && frame.payload.length >= deflate.settings.threshold) {
      return this.writeFrame(deflateFrame(frame, deflate.settings, deflate.windowBits) ?? frame);
    }
    return this.writeFrame(frame);
  }

  /** Writes a whole frame through the transport's fan-out, if it may be written now. */
  private writeFrame(frame: PrebuiltFrame): boolean {
    if (!this.mayWrite(frame.bytes.length)) {
      return false;
    }
    this.transport.sendPrebuilt(this.socket, frame);
    return true;
  }

  /**
   * Compresses what it sends from now on, when the gateway compresses and the connection
   * negotiated permessage-deflate with a window a raw deflate can use (a client that allows
   * less than {@link MIN_WINDOW_BITS} gets no compression).
   */
  useCompression(): void {
    const settings = this.settings.compression;
    const window = settings ? this.transport.deflateWindow(this.socket) : undefined;
    if (settings && window !== undefined && window >= MIN_WINDOW_BITS) {
      this.deflate = { settings, windowBits: Math.min(window, settings.windowBits) };
    }
  }

  /**
   * Whether `bytes` more may be sent: the connection is open and its client keeps up;
   * a client that does not is cut as a slow consumer. Two bounds, both `maxBufferedBytes`:
   *
   * - What waits in this process (ws's `bufferedAmount`), checked before queueing more: a
   *   reading client may get one frame past the limit; one that does not read is cut once
   *   what waits for it passes it. What this turn's cork holds back is written out first:
   *   only what the kernel refuses counts.
   * - What the kernel has taken but the client has not read. The kernel's buffers take
   *   megabytes before anything waits here, so bytes count as unread until the client
   *   answers a ping sent after them (TCP keeps order: the pong proves it read them). Past
   *   the limit a probe ping goes out; a client that has not answered it after a second,
   *   while another limit's worth went out behind it, is cut.
   */
  private mayWrite(bytes: number): boolean {
    const { socket, transport } = this;
    if (!transport.isOpen(socket)) {
      return false;
    }
    const limit = this.settings.maxBufferedBytes;
    if (transport.bufferedAmount(socket) > limit) {
      if (!(transport.flushHeld(socket) && transport.bufferedAmount(socket) <= limit)) {
        this.cutSlowConsumer();
        return false;
      }
    }
    this.sentBytes += bytes;
    if (this.sentBytes - this.readBytes > limit && !this.probe(this.sentBytes - bytes, limit)) {
      this.cutSlowConsumer();
      return false;
    }
    return true;
  }

  /**
   * Asks the client to prove it read the first `mark` bytes sent, unless it is already asked;
   * false when it has not answered for over a second while more than `limit` bytes went
   * out after the question. A slow reader on a slow link is given the time to read what
   * came before the ping, as long as the server does not pile up another `limit` behind it.
   */
  private probe(mark: number, limit: number): boolean {
    if (this.probeMark === undefined) {
      // Written before the frame about to be sent: its answer proves what came before.
      this.probeMark = mark;
      this.probeSentAt = performance.now();
      this.transport.ping(this.socket, String(mark));
      return true;
    }
    return this.sentBytes - this.probeMark <= limit || performance.now() - this.probeSentAt <= SLOW_CONSUMER_GRACE_MS;
  }

  /** A pong arrived: when it answers the outstanding probe, what was sent before it has been read. */
  acknowledge(payload: Buffer): void {
    if (this.probeMark !== undefined && payload.toString('latin1') === String(this.probeMark)) {
      this.readBytes = this.probeMark;
      this.probeMark = undefined;
    }
  }

  /**
   * A client that does not read while the server writes would make its buffer grow
   * without bound: close it with 4008, and cut it if it does not answer within a second.
   */
  private cutSlowConsumer(): void {
    this.close(CloseCode.SLOW_CONSUMER, 'slow consumer', 'slow-consumer', SLOW_CONSUMER_GRACE_MS);
  }

  /**
   * Starts the close handshake with a close frame, remembering why, so `handleDisconnect`
   * can tell; false when the connection was already closing. From then on nothing the
   * client sends is dispatched (see {@link isOpen}), and a client that does not answer
   * the close frame within `graceMs` (the gateway's `closeTimeoutMs` by default) has its
   * socket cut, instead of holding it for `ws`'s 30 s.
   */
  close(code: number, reason: string, cause: DisconnectCause, graceMs = this.settings.closeTimeoutMs): boolean {
    if (!this.isOpen) {
      return false;
    }
    this.closeCause ??= cause;
    this.transport.close(this.socket, code, reason);
    this.closeTimer = setTimeout(cutUnanswered, graceMs, this);
    this.closeTimer.unref();
    return true;
  }

  /** Drops the connection without a close handshake (and without what the kernel still holds for it). */
  terminate(cause: DisconnectCause): void {
    this.closeCause ??= cause;
    this.transport.reset(this.socket);
  }

  /** Marks why the connection is about to end when `ws` itself closes it (e.g. 1009). */
  markCause(cause: DisconnectCause): void {
    this.closeCause ??= cause;
  }

  /** Counts one invalid frame; true when the connection is over its limit. */
  countInvalidFrame(now: number): boolean {
    const { limit, windowMs } = this.settings.invalidFrames;
    if (now - this.invalidWindowStart >= windowMs) {
      this.invalidWindowStart = now;
      this.invalidCount = 0;
    }
    return ++this.invalidCount > limit;
  }

  /**
   * Runs `hook` right after the next request of this connection is answered: a room
   * join's recovered messages follow the join's reply. With no request in flight (a join
   * made outside a handler), it runs once the current microtasks are done.
   */
  afterReply(hook: () => void): void {
    if (this.requestsInFlight === 0) {
      queueMicrotask(hook);
      return;
    }
    (this.afterReplyHooks ??= []).push(hook);
  }

  /** @internal A request was answered (or finished without an answer). */
  requestSettled(): void {
    this.requestsInFlight--;
    const hooks = this.afterReplyHooks;
    if (hooks) {
      this.afterReplyHooks = undefined;
      hooks.forEach((hook) => hook());
    }
  }

  /** Resolves once the connection has closed (at once if it has). */
  whenClosed(): Promise<void> {
    if (this.closedWaiters === null) {
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.closedWaiters ??= []).push(resolve));
  }

  /** Releases what the connection holds; called once it has closed. */
  release(): void {
    this.asked?.closed();
    const waiters = this.closedWaiters;
    this.closedWaiters = null;
    waiters?.forEach((resolve) => resolve());
    clearTimeout(this.closeTimer);
    this.heartbeatMonitor?.remove(this);
    this.heartbeatMonitor = undefined;
  }

  /**
   * Why the connection ended, from its socket's close code and reason, remembered for
   * the gateways' `handleDisconnect` (NestJS 11 passes them no reason of its own).
   */
  disconnectReason(code: number, reason: Buffer): DisconnectReason {
    const cause = this.closeCause ?? (code === 1006 ? 'lost' : 'client');
    this.endReason = { code, reason: reason.toString(), cause };
    return this.endReason;
  }
}

/** Cuts a socket whose client did not answer the close frame in time (a timer callback). */
function cutUnanswered(connection: Connection): void {
  connection.transport.reset(connection.socket);
}
