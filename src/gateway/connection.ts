import type { IncomingMessage } from 'node:http';
import type { Writable } from 'node:stream';
import WebSocket from 'ws';
import type { RealtimePrincipal } from '../auth/principal.js';
import type { HeartbeatEntry, HeartbeatMonitor, HeartbeatPeer } from '../heartbeat/heartbeat-monitor.js';
import type { TokenBucket } from '../limits/token-bucket.js';
import type { Admission } from '../limits/limits.js';
import type { GatewayMetrics } from '../metrics/realtime-metrics.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { DisconnectCause, DisconnectReason } from './disconnect-reason.js';
import type { GatewaySettings } from './gateway-settings.js';
import type { PrebuiltFrame } from './prebuilt-frame.js';
import type { DirectHandler } from './direct-dispatch.js';
import type { Deadline } from './deadline-queue.js';
import { corkForThisTurn, uncorkNow, underlyingSocket } from './write-batching.js';

const SLOW_CONSUMER_GRACE_MS = 1000;
/** Text frames, also when the data is a Buffer (a broadcast encoded once). */
const TEXT_FRAME = { binary: false } as const;

const connections = new WeakMap<object, Connection>();

/** The rooms of a connection in none: shared, never added to (see {@link Connection.joinRoom}). */
const NO_ROOMS: Set<string> = new Set();

/** A connection as its heartbeat monitor sees it: one small object, not two closures per connection. */
class HeartbeatOf implements HeartbeatPeer {
  constructor(private readonly connection: Connection) {}

  ping(): void {
    if (this.connection.socket.readyState === WebSocket.OPEN) {
      this.connection.socket.ping();
    }
  }

  terminate(): void {
    this.connection.metrics?.reapedOne();
    this.connection.terminate('heartbeat-timeout');
  }
}

/** @internal Async `handleDisconnect` work still running, of every gateway: a shutdown waits for it. */
export const pendingDisconnectWork = new Set<Promise<unknown>>();

const connectingGateways = new WeakMap<object, object>();

/**
 * @internal Noted by a {@link RealtimeGateway}'s `handleConnection`, which Nest calls just
 * before it binds that gateway's handlers to the client: which instance they belong to.
 */
export function noteConnectingGateway(client: object, instance: object): void {
  connectingGateways.set(client, instance);
}

/** @internal The gateway instance noted for `client`, forgotten as it is read. */
export function takeConnectingGateway(client: object): object | undefined {
  const instance = connectingGateways.get(client);
  connectingGateways.delete(client);
  return instance;
}

/** @internal The plugin's state of a connected client (the `ws` socket), if it has any. */
export function connectionOf(client: object): Connection | undefined {
  return connections.get(client);
}

/** A bound Nest message handler: `(data, context) => Promise<result>`. */
export type BoundHandler = (data: unknown, context: unknown) => unknown;

/**
 * Server-side state of one WebSocket connection: its handlers (several gateways may
 * share a path), its invalid-frame budget and why it ended.
 */
export class Connection {
  readonly handlers = new Map<string, BoundHandler>();
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
  /** How many gateways bound their handlers to it (more than one: Nest's path for all). */
  bindings = 0;
  private invalidCount = 0;
  private invalidWindowStart = 0;
  private closeCause: DisconnectCause | undefined;
  /** Its token's expiry, kept by `TokenLifetime`. */
  expiry: Deadline<Connection> | undefined;
  /** In-band refreshes started, so that a slow one cannot overwrite a newer one. */
  refreshAttempts = 0;
  /** The verified token's claims; undefined on a public gateway without a token. */
  principal: RealtimePrincipal | undefined;
  /** Its heartbeat entry, whose `active` flag any inbound traffic sets; none when heartbeats are off. */
  heartbeat: HeartbeatEntry | undefined;
  private heartbeatMonitor: HeartbeatMonitor | undefined;
  /** The TCP (or TLS) socket under the WebSocket: corked per turn, written prebuilt frames. */
  readonly raw: Writable | undefined;

  constructor(
    readonly socket: WebSocket,
    /**
     * The upgrade request, kept only for the application's `verifyConnection` hook, which
     * an in-band `auth` runs again; without a hook it is not held (about 1.3 KB a connection).
     */
    readonly request: IncomingMessage | undefined,
    readonly settings: GatewaySettings,
  ) {
    connections.set(socket, this);
    this.raw = underlyingSocket(socket);
  }

  /** Puts the connection under a heartbeat monitor: pinged when silent, terminated when it stays so. */
  watch(monitor: HeartbeatMonitor): void {
    this.heartbeatMonitor = monitor;
    this.heartbeat = monitor.add(new HeartbeatOf(this));
  }

  /** Adds a room to {@link rooms}; the set is made on the first join (most connections join none). */
  joinRoom(room: string): void {
    if (this.rooms === NO_ROOMS) {
      this.rooms = new Set();
    }
    this.rooms.add(room);
  }

  /** Records proof of life: called for every inbound frame, pong and ping. */
  markAlive(): void {
    if (this.heartbeat) {
      this.heartbeat.active = true;
    }
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends a text frame if the connection is still open; false when it was not sent. */
  send(text: string | Buffer): boolean {
    if (!this.mayWrite()) {
      return false;
    }
    this.socket.send(text, TEXT_FRAME);
    return true;
  }

  /**
   * Sends a frame built once for many recipients (a broadcast) straight to the socket,
   * as `ws` itself would write it; false when it was not sent.
   */
  sendPrebuilt(frame: PrebuiltFrame): boolean {
    if (!this.mayWrite()) {
      return false;
    }
    // ws queues nothing of its own here (no permessage-deflate), so the order of frames holds.
    if (this.raw) {
      // Corked for this turn: the pushes of several broadcasts in one turn leave in one write.
      corkForThisTurn(this.raw);
      this.raw.write(frame.bytes);
    } else {
      this.socket.send(frame.payload, TEXT_FRAME);
    }
    return true;
  }

  /** Open, and not holding more unsent bytes than allowed (else cut as a slow consumer). */
  private mayWrite(): boolean {
    if (this.socket.readyState !== WebSocket.OPEN) {
      return false;
    }
    // Checked before queueing more: a client that reads may get one frame larger than the
    // limit; one that does not read is cut once what waits for it passes the limit. What
    // this turn's cork holds back is written out first: only what the kernel refuses counts.
    if (this.socket.bufferedAmount > this.settings.maxBufferedBytes) {
      if (this.raw && uncorkNow(this.raw) && this.socket.bufferedAmount <= this.settings.maxBufferedBytes) {
        return true;
      }
      this.cutSlowConsumer();
      return false;
    }
    return true;
  }

  /**
   * A client that does not read while the server writes would make its buffer grow
   * without bound: close it with 4008, and cut it if it does not answer within a second
   * (it is not reading, after all).
   */
  private cutSlowConsumer(): void {
    this.close(CloseCode.SLOW_CONSUMER, 'slow consumer', 'slow-consumer');
    setTimeout(() => {
      if (this.socket.readyState !== WebSocket.CLOSED) {
        this.socket.terminate();
      }
    }, SLOW_CONSUMER_GRACE_MS).unref();
  }

  /** Closes with a close frame, remembering why, so `handleDisconnect` can tell. */
  close(code: number, reason: string, cause: DisconnectCause): void {
    this.closeCause ??= cause;
    this.socket.close(code, reason);
  }

  /** Drops the connection without a close handshake. */
  terminate(cause: DisconnectCause): void {
    this.closeCause ??= cause;
    this.socket.terminate();
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

  /** Releases what the connection holds; called once it has closed. */
  release(): void {
    if (this.heartbeat) {
      this.heartbeatMonitor!.remove(this.heartbeat);
      this.heartbeat = undefined;
    }
  }

  disconnectReason(code: number, reason: Buffer): DisconnectReason {
    const cause = this.closeCause ?? (code === 1006 ? 'lost' : 'client');
    return { code, reason: reason.toString(), cause };
  }
}
