import type { IncomingMessage } from 'node:http';
import type { TokenLifetime } from '../auth/token-lifetime.js';
import type { HeartbeatRegistry } from '../heartbeat/heartbeat-registry.js';
import type { ConnectionCounter } from '../limits/limits.js';
import type { LogThrottle } from '../limits/log-throttle.js';
import type { GatewayMetrics } from '../metrics/realtime-metrics.js';
import type { RealtimeHub } from '../rooms/realtime-hub.js';
import { PROTOCOL_V1_MSGPACK } from '../protocol/envelope.js';
import { Connection } from './connection.js';
import { connectionOf, forgetConnection, registerConnection } from './connection-registry.js';
import type { Drain } from './drain.js';
import { stopObservables } from './observable-replies.js';
import type { FrameDispatcher } from './frame-dispatcher.js';
import type { FramePolicy } from './frame-policy.js';
import type { GatewaySettings } from './gateway-settings.js';
import type { UpgradeGate } from './upgrade-gate.js';
import type { RealtimeTransport, TransportEvents } from '../transport/transport.interface.js';

/** What a {@link ConnectionLifecycle} works with: the adapter's parts. */
export interface LifecycleParts {
  /** How sockets are spoken to and listened to. */
  readonly transport: RealtimeTransport;
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

  /** Sets up a connection the transport has just accepted. */
  open(socket: object, request: IncomingMessage, settings: GatewaySettings, metrics: GatewayMetrics | undefined): void {
    const { gate, tokens, policy, heartbeats, drain, transport } = this.parts;
    const connection = new Connection(socket, transport, this.parts.keepRequest ? request : undefined, settings, drain.disconnectWork);
    connection.binary = transport.protocol(socket) === PROTOCOL_V1_MSGPACK;
    connection.useCompression();
    // Registered and counted only once nothing before the try below can throw: past it, abandon() undoes both.
    registerConnection(socket, connection);
    connection.metrics = metrics;
    metrics?.connected();
    // From here on, what the upgrade held (its place, its user's subscription) is the connection's.
    const accepted = gate.take(request);
    const authentication = accepted?.authentication;
    connection.admission = accepted?.admission;
    try {
      if (authentication) {
        tokens.attach(connection, authentication);
      }
      policy.attach(connection, authentication?.principal.sub);
      if (settings.heartbeat) {
        connection.watch(heartbeats.monitorFor(settings.heartbeat));
      }
      this.parts.hub()?.attach(connection);
      transport.listen(socket, this.events, settings.heartbeat !== undefined);
    } catch (error) {
      this.abandon(connection, authentication?.principal.sub);
      throw error;
    }
  }

  /**
   * Gives back what a connection whose set-up threw took or held, and forgets it: the
   * upgrade gate closes its socket, whose close then finds no connection.
   */
  private abandon(connection: Connection, sub: string | undefined): void {
    forgetConnection(connection.socket);
    this.giveBack(connection);
    const hub = this.parts.hub();
    if (sub !== undefined && connection.user === undefined) {
      hub?.releaseUser(sub); // the hold the upgrade took, not yet the connection's
    }
    hub?.detach(connection);
    connection.metrics?.disconnected('server');
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

  /** What a connection holds apart from its rooms and user: timers, token deadline, place, rates. */
  private giveBack(connection: Connection): void {
    connection.release();
    this.parts.tokens.detach(connection);
    if (connection.admission) {
      this.parts.counter.release(connection.admission);
    }
    this.parts.policy.release(connection);
  }

  private onClose(connection: Connection, code: number, reason: Buffer): void {
    const why = connection.disconnectReason(code, reason);
    connection.metrics?.disconnected(why.cause);
    this.giveBack(connection);
    stopObservables(connection);
    // After the gateway's handleDisconnect (called next), which may still want to know the
    // connection's rooms.
    queueMicrotask(() => this.parts.hub()?.detach(connection));
    // Nest's handleDisconnect, last: no 'close' listener of its own per socket.
    connection.nestDisconnect?.(why);
  }

  /**
   * What the transport tells of every connection's socket, made once per adapter: the
   * socket's {@link Connection} is looked up. No closures per connection.
   */
  private readonly events: TransportEvents = ((lifecycle: ConnectionLifecycle) => ({
    message(socket: object, data: Buffer, isBinary: boolean): void {
      const connection = connectionOf(socket);
      if (connection) {
        lifecycle.dispatcher.onFrame(connection, data, isBinary);
      }
    },
    close(socket: object, code: number, reason: Buffer): void {
      const connection = connectionOf(socket);
      if (connection) {
        lifecycle.onClose(connection, code, reason);
      }
    },
    error(socket: object, error: Error, tooBig: boolean): void {
      const connection = connectionOf(socket);
      if (tooBig) {
        connection?.markCause('message-too-big');
      }
      // The transport closes the connection itself with the fitting code (1002, 1007, 1009).
      lifecycle.parts.log.log(
        'debug',
        'connection error',
        () => `connection at ${connection?.settings.path ?? '?'} failed: ${error.message}`,
      );
    },
    ping(socket: object): void {
      connectionOf(socket)?.markAlive();
    },
    pong(socket: object, payload: Buffer): void {
      // Proof of life, and perhaps of reading (Connection.mayWrite).
      const connection = connectionOf(socket);
      connection?.markAlive();
      connection?.acknowledge(payload);
    },
  }))(this);
}
