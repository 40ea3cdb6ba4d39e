import type { IncomingMessage } from 'node:http';
import type WebSocket from 'ws';
import type { TokenLifetime } from '../auth/token-lifetime.js';
import type { HeartbeatRegistry } from '../heartbeat/heartbeat-registry.js';
import type { ConnectionCounter } from '../limits/limits.js';
import type { LogThrottle } from '../limits/log-throttle.js';
import type { GatewayMetrics } from '../metrics/realtime-metrics.js';
import type { RealtimeHub } from '../rooms/realtime-hub.js';
import { Connection, connectionOf } from './connection.js';
import type { Drain } from './drain.js';
import type { FrameDispatcher } from './frame-dispatcher.js';
import type { FramePolicy } from './frame-policy.js';
import type { GatewaySettings } from './gateway-settings.js';
import type { UpgradeGate } from './upgrade-gate.js';
import { wsTransport } from '../transport/ws/ws-transport.js';
import { corkOnData, underlyingSocket } from '../transport/ws/write-batching.js';

/** What a {@link ConnectionLifecycle} works with: the adapter's parts. */
export interface LifecycleParts {
  readonly gate: UpgradeGate;
  readonly tokens: TokenLifetime;
  readonly policy: FramePolicy;
  readonly counter: ConnectionCounter;
  readonly heartbeats: HeartbeatRegistry;
  readonly drain: Drain;
  readonly dispatcher: FrameDispatcher;
  readonly log: LogThrottle;
  /** The rooms hub, when the application has one (looked up late: it may come after the adapter). */
  readonly hub: () => RealtimeHub | undefined;
  /** Keep the upgrade request on the connection (for a `verifyConnection` hook an in-band `auth` runs again). */
  readonly keepRequest: boolean;
}

/**
 * A connection from the accepted upgrade to its close: what the handshake admitted (its
 * place under the limits, its principal and token expiry), its rates, its heartbeat, its
 * rooms, the socket's listeners; and on close, giving all of it back.
 */
export class ConnectionLifecycle {
  /** Read per frame: a field of its own rather than one more lookup through `parts`. */
  private readonly dispatcher: FrameDispatcher;

  constructor(private readonly parts: LifecycleParts) {
    this.dispatcher = parts.dispatcher;
  }

  /** Sets up a connection `ws` has just accepted. */
  open(socket: WebSocket, request: IncomingMessage, settings: GatewaySettings, metrics: GatewayMetrics | undefined): void {
    const { gate, tokens, policy, heartbeats, drain } = this.parts;
    const connection = new Connection(socket, wsTransport, this.parts.keepRequest ? request : undefined, settings, drain.disconnectWork);
    connection.metrics = metrics;
    metrics?.connected();
    const accepted = gate.take(request);
    const authentication = accepted?.authentication;
    if (authentication) {
      tokens.attach(connection, authentication);
    }
    connection.admission = accepted?.admission;
    policy.attach(connection, authentication?.principal.sub);
    if (settings.heartbeat) {
      connection.watch(heartbeats.monitorFor(settings.heartbeat));
      socket.on('ping', markAlive);
    }
    // Also without heartbeats: a pong is how a client proves it reads (Connection.mayWrite).
    socket.on('pong', onPong);
    socket.on('close', this.listeners.close);
    this.parts.hub()?.attach(connection);
    socket.on('error', this.listeners.error);
    socket.on('message', this.listeners.message);
    // Before ws's own 'data' listener: the replies to the frames of one chunk leave in one write.
    underlyingSocket(socket)?.prependListener('data', corkOnData);
  }

  /**
   * A public gateway's connection signs in with an in-band `auth`: it now counts against
   * its user's connection limit and rate, as if it had come with the token. Returns why
   * not, when the user is at the limit.
   */
  admitSignIn(connection: Connection, sub: string): string | undefined {
    if (connection.admission) {
      const refusal = this.parts.counter.admitUser(connection.admission, sub, false);
      if (refusal) {
        return refusal.message;
      }
    }
    this.parts.policy.attachUser(connection, sub);
    return undefined;
  }

  private onClose(connection: Connection, code: number, reason: Buffer): void {
    connection.metrics?.disconnected(connection.disconnectReason(code, reason).cause);
    connection.release();
    this.parts.tokens.detach(connection);
    if (connection.admission) {
      this.parts.counter.release(connection.admission);
    }
    this.parts.policy.release(connection);
    // After the gateway's handleDisconnect (a later 'close' listener), which may still
    // want to know the connection's rooms.
    queueMicrotask(() => this.parts.hub()?.detach(connection));
  }

  /**
   * The listeners of every connection's socket, made once per adapter: `this` is the
   * socket, whose {@link Connection} is looked up. No closures per connection.
   */
  private readonly listeners = ((lifecycle: ConnectionLifecycle) => ({
    message(this: WebSocket, data: Buffer, isBinary: boolean): void {
      const connection = connectionOf(this);
      if (connection) {
        lifecycle.dispatcher.onFrame(connection, data, isBinary);
      }
    },
    close(this: WebSocket, code: number, reason: Buffer): void {
      const connection = connectionOf(this);
      if (connection) {
        lifecycle.onClose(connection, code, reason);
      }
    },
    error(this: WebSocket, error: Error & { code?: string }): void {
      const connection = connectionOf(this);
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        connection?.markCause('message-too-big');
      }
      // ws closes the connection itself with the fitting code (1002, 1007, 1009).
      lifecycle.parts.log.log(
        'debug',
        'connection error',
        () => `connection at ${connection?.settings.path ?? '?'} failed: ${error.message}`,
      );
    },
  }))(this);
}

/** A ping from a client (shared by every connection: `this` is the `ws` socket). */
function markAlive(this: WebSocket): void {
  connectionOf(this)?.markAlive();
}

/** A pong from a client: proof of life, and perhaps of reading (shared: `this` is the `ws` socket). */
function onPong(this: WebSocket, payload: Buffer): void {
  const connection = connectionOf(this);
  connection?.markAlive();
  connection?.acknowledge(payload);
}
