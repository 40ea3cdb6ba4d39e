import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import type { HandshakeChecker, HandshakeOutcome } from '../auth/handshake.js';
import type { Authentication } from '../auth/authenticator.interface.js';
import { HandshakeRates } from '../limits/handshake-rates.js';
import { type Admission, clientAddress, type ConnectionCounter, type LimitSettings } from '../limits/limits.js';
import type { LogThrottle, ThrottledLevel } from '../limits/log-throttle.js';
import type { RealtimeHub } from '../rooms/realtime-hub.js';
import type { GatewaySettings } from './gateway-settings.js';
import { normalizePath } from './gateway-settings.js';
import { connectionOf } from './connection-registry.js';
import { describeError } from './realtime-exception.filter.js';
import { CloseCode } from '../protocol/close-codes.js';
import { refuseUpgrade, type UpgradeRefusalCause } from '../transport/ws/upgrade-response.js';

/** The gateways served on one port, by path, and whether the port is draining. */
export interface GatewayRoutes {
  readonly gateways: Map<string, WebSocketServer>;
  draining: boolean;
}

/** What an accepted upgrade hands to its connection. */
export interface Accepted {
  /** Who it is; undefined on a public gateway without credentials. */
  readonly authentication: Authentication | undefined;
  readonly admission: Admission;
}

/** Counts refused upgrades by HTTP status and cause, for metrics. */
export type RefusalListener = (status: number, cause: UpgradeRefusalCause) => void;

/** How an upgrade is refused: the HTTP answer, and what metrics count it as. */
interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly cause: UpgradeRefusalCause;
  readonly headers?: Record<string, string>;
}

const DRAINING: Refusal = { status: 503, code: 'UNAVAILABLE', message: 'the server is shutting down', cause: 'draining' };
const TOO_SLOW: Refusal = { status: 503, code: 'UNAVAILABLE', message: 'the handshake took too long', cause: 'timeout' };
const FAILED: Refusal = { status: 503, code: 'UNAVAILABLE', message: 'try again later', cause: 'error' };
/** Longest part of a client-chosen path written to a log line. */
const LOGGED_PATH_LENGTH = 64;

/**
 * Everything between an HTTP upgrade request and an accepted WebSocket: routing by path
 * (404), draining (503), the address's handshake rate (429), the Origin (403), the
 * connection limits (503/429), the authenticator and the hooks (401/403), a deadline for
 * all of it (503), and the user's broker subscription. Every refusal is a plain HTTP response with a JSON body; no
 * WebSocket is ever opened for it. Refusals are logged through a {@link LogThrottle}
 * (a flood of bad handshakes cannot flood the log), and never with the query string,
 * where a token may be.
 */
export class UpgradeGate {
  /**
   * The upgrade being handed to `ws`, and what it accepted: `ws` completes it and emits
   * 'connection' synchronously, whose listener takes this (see {@link take}).
   */
  private handingOver: IncomingMessage | undefined;
  /** What {@link handingOver} accepted, for the connection to take. */
  private handedOver: Accepted | undefined;
  /** Upgrades still being checked: refused at once when a drain begins. */
  private readonly inFlight = new Set<PendingUpgrade>();
  private readonly rates: HandshakeRates | undefined;

  constructor(
    private readonly log: LogThrottle,
    private readonly handshake: HandshakeChecker,
    private readonly counter: ConnectionCounter,
    private readonly limits: LimitSettings,
    private readonly settingsOf: (server: WebSocketServer) => GatewaySettings,
    private readonly hub: () => RealtimeHub | undefined,
    private readonly onRefused: RefusalListener = () => undefined,
  ) {
    this.rates = limits.handshakeRate ? new HandshakeRates(limits.handshakeRate, performance.now()) : undefined;
  }

  /**
   * Takes one credential check (an in-band `auth`) from the handshake rate of `address`, as a
   * handshake would; false when that address has none left (or true without a rate). So a
   * connection's `auth` frames cannot run the token checks and the application's hooks
   * faster than new connections from its address may.
   */
  mayCheckCredentials(address: string | undefined): boolean {
    return this.rates === undefined || address === undefined || this.rates.take(address, performance.now()) === true;
  }

  /**
   * Refuses a handshake `ws` found malformed (its `wsClientError`: a bad key, version or
   * subprotocol list) as every other refusal is: JSON, counted, logged at a bounded rate.
   */
  malformed(socket: Duplex, path: string, why: string): void {
    const method = /HTTP method/i.test(why);
    const refusal: Refusal = {
      status: method ? 405 : 400,
      code: 'BAD_REQUEST',
      message: why,
      cause: 'bad-request',
      headers: method ? { Allow: 'GET' } : /Sec-WebSocket-Version/i.test(why) ? { 'Sec-WebSocket-Version': '13, 8' } : undefined,
    };
    this.refuse(socket, refusal, 'warn', () => `at ${path}: ${why}`);
  }

  /** Refuses every upgrade still being checked with 503 (the server is shutting down). */
  drain(): void {
    for (const pending of [...this.inFlight]) {
      this.finish(pending, DRAINING);
    }
  }

  /** Takes what the upgrade of `request` accepted; called once by the new connection. */
  take(request: IncomingMessage): Accepted | undefined {
    const accepted = this.handingOver === request ? this.handedOver : undefined;
    this.handingOver = undefined;
    this.handedOver = undefined;
    return accepted;
  }

  route(routes: GatewayRoutes, request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Until ws takes the socket over, a reset by the peer must not become an unhandled 'error'.
    socket.on('error', ignoreSocketError);
    if (routes.draining) {
      this.refuse(socket, DRAINING);
      return;
    }
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = normalizePath(query === -1 ? url : url.slice(0, query));
    const server = routes.gateways.get(path);
    if (!server) {
      const refusal = { status: 404, code: 'NOT_FOUND', message: `no WebSocket gateway at ${path}`, cause: 'not-found' } as const;
      this.refuse(socket, refusal, 'debug', () => `no gateway at ${JSON.stringify(path.slice(0, LOGGED_PATH_LENGTH))}`);
      return;
    }
    const address = clientAddress(request, this.limits.trustProxy);
    const settings = this.settingsOf(server);
    const wait = this.rates?.take(address, performance.now()) ?? true;
    if (wait !== true) {
      const refusal: Refusal = {
        status: 429,
        code: 'TOO_MANY_CONNECTIONS',
        message: 'too many handshakes from this address: slow down',
        cause: 'handshake-rate',
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(wait / 1000))) },
      };
      this.refuse(socket, refusal, 'warn', () => `at ${path} from ${address}`);
      return;
    }
    // Browsers send an Origin; a request without one (a server, a script) is let through.
    const origin = request.headers.origin;
    if (settings.allowedOrigins && origin !== undefined && !settings.allowedOrigins.has(origin)) {
      const refusal = { status: 403, code: 'FORBIDDEN', message: 'origin not allowed', cause: 'origin' } as const;
      this.refuse(
        socket,
        refusal,
        'warn',
        () => `at ${path} from ${address}: origin ${JSON.stringify(origin.slice(0, 200))} is not in the allowlist`,
      );
      return;
    }
    const admission = this.counter.admit(address);
    if ('status' in admission) {
      this.refuse(socket, admission, 'warn', () => `at ${path} from ${address}: ${admission.message}`);
      return;
    }
    const pending = new PendingUpgrade(routes, server, request, socket, head, path, address, admission);
    this.inFlight.add(pending);
    pending.deadline = setTimeout(this.timeOut, this.limits.handshakeTimeoutMs, pending);
    pending.deadline.unref();
    this.handshake
      .check(request, settings)
      .then(
        (outcome) => this.checked(pending, outcome),
        (error: unknown) => this.fail(pending, error),
      )
      .catch((error: unknown) => this.fail(pending, error));
  }

  /** What the handshake checks decided: refused, or on to the user's subscription and `ws`. */
  private checked(pending: PendingUpgrade, outcome: HandshakeOutcome): void {
    try {
      if (pending.finished) {
        return;
      }
      if ('refusal' in outcome) {
        const refusal = outcome.refusal;
        this.finish(pending, refusal, 'warn', () => `at ${pending.path} from ${pending.address}: ${refusal.detail}`);
        return;
      }
      const authentication = outcome.authentication;
      const sub = authentication?.principal.sub;
      if (sub !== undefined) {
        const refusal = this.counter.admitUser(pending.admission, sub);
        if (refusal) {
          this.finish(pending, refusal, 'warn', () => `at ${pending.path} from ${pending.address}: ${refusal.message}`);
          return;
        }
      }
      const hub = this.hub();
      if (sub !== undefined && hub) {
        // Messages to the user must reach the connection from its first frame on, so the
        // user's broker subscription is in place before the upgrade completes.
        pending.held = { hub, sub };
        hub
          .holdUser(sub)
          .then(
            () => this.upgrade(pending, authentication),
            (error: unknown) => this.fail(pending, error),
          )
          .catch((error: unknown) => this.fail(pending, error));
      } else {
        this.upgrade(pending, authentication);
      }
    } catch (error) {
      this.fail(pending, error);
    }
  }

  /** Hands the upgrade to `ws` unless it has ended meanwhile; what it held is given back if it does not complete. */
  private upgrade(pending: PendingUpgrade, authentication: Authentication | undefined): void {
    if (!this.finish(pending)) {
      return;
    }
    let completed = false;
    try {
      completed = this.complete(pending, { authentication, admission: pending.admission });
    } catch (error) {
      // ws itself threw: the socket is in no known state.
      this.log.log('error', 'upgrade failed', () => `upgrade at ${pending.path} failed: ${describeError(error)}`);
      pending.socket.destroy();
    } finally {
      // Not upgraded, or no connection took what it held: give it back.
      if (completed) {
        pending.held = undefined; // the connection's now
      } else {
        this.counter.release(pending.admission);
        letGoOfUser(pending);
      }
    }
  }

  /** Ends an upgrade here, refused, unless it has already ended; gives its place back. */
  private finish(pending: PendingUpgrade, refusal?: Refusal, level?: ThrottledLevel, line?: () => string): boolean {
    if (pending.finished) {
      return false;
    }
    pending.finished = true;
    clearTimeout(pending.deadline);
    this.inFlight.delete(pending);
    if (refusal) {
      this.counter.release(pending.admission);
      // At once, even while the user's subscription is still being made: one that never
      // completes must not keep the user's channel held (and the user's next upgrades waiting on it).
      letGoOfUser(pending);
      this.refuse(pending.socket, refusal, level, line);
    }
    return true;
  }

  /** The handshake checks or the user's subscription failed: 503, logged. */
  private fail(pending: PendingUpgrade, error: unknown): void {
    this.finish(pending, FAILED, 'error', () => `at ${pending.path}: ${describeError(error)}`);
  }

  /** The deadline of an upgrade passed (a timer callback, one for the gate). */
  private readonly timeOut = (pending: PendingUpgrade): void => {
    this.finish(
      pending,
      TOO_SLOW,
      'warn',
      () => `at ${pending.path} from ${pending.address}: took over ${this.limits.handshakeTimeoutMs} ms`,
    );
  };

  /** Hands an accepted request to ws; false when the socket went away or the server is draining. */
  private complete(pending: PendingUpgrade, accepted: Accepted): boolean {
    const { routes, server, request, socket, head } = pending;
    if (socket.destroyed) {
      return false;
    }
    if (routes.draining) {
      this.refuse(socket, DRAINING);
      return false;
    }
    let upgraded = false;
    this.handingOver = request;
    this.handedOver = accepted;
    try {
      // Without verifyClient, ws completes or refuses a handshake synchronously.
      server.handleUpgrade(request, socket, head, (ws) => {
        upgraded = true;
        socket.off('error', ignoreSocketError);
        try {
          server.emit('connection', ws, request);
        } catch (error) {
          // Once the connection has taken what the upgrade held, its close gives it back;
          // before that (nothing took it), the gate does.
          upgraded = this.handingOver !== request;
          this.setUpFailed(pending, ws, error);
        }
      });
    } finally {
      this.handingOver = undefined;
      this.handedOver = undefined;
    }
    return upgraded;
  }

  /**
   * A listener of the new socket's 'connection' threw: the plugin's set-up, Nest's or the
   * application's. The socket is closed with 1011 (the client may retry); a connection
   * that was set up gives back its place and its user's subscription when it closes.
   */
  private setUpFailed(pending: PendingUpgrade, ws: WebSocket, error: unknown): void {
    this.log.log('error', 'connection set-up failed', () => `connection set-up at ${pending.path} failed: ${describeError(error)}`);
    const connection = connectionOf(ws);
    if (connection) {
      connection.close(CloseCode.INTERNAL_ERROR, 'internal error', 'server');
    } else {
      ws.close(CloseCode.INTERNAL_ERROR, 'internal error');
    }
  }

  /**
   * Answers with `refusal`, counts it, and logs it (at a bounded rate per cause) when a
   * level is given: `line` says where and why, without the query string.
   */
  private refuse(socket: Duplex, refusal: Refusal, level?: ThrottledLevel, line?: () => string): void {
    this.onRefused(refusal.status, refusal.cause);
    if (level && line) {
      this.log.log(level, `upgrade refused: ${refusal.cause}`, () => `upgrade refused (${refusal.status} ${refusal.code}) ${line()}`);
    }
    refuseUpgrade(socket, refusal.status, refusal.code, refusal.message, refusal.headers);
  }
}

/** Gives back the hold an upgrade took on its user's channel, if it holds one (once). */
function letGoOfUser(pending: PendingUpgrade): void {
  const held = pending.held;
  if (held) {
    pending.held = undefined;
    held.hub.releaseUser(held.sub);
  }
}

function ignoreSocketError(): void {
  // The socket is being refused or handed to ws; its own close path reports it.
}

/** An upgrade being checked: what it needs to complete, its place under the limits, and its deadline. */
class PendingUpgrade {
  finished = false;
  deadline: NodeJS.Timeout | undefined = undefined;
  /** The hold it took on its user's channel, until it gives it back or its connection takes it. */
  held: { readonly hub: RealtimeHub; readonly sub: string } | undefined = undefined;

  constructor(
    readonly routes: GatewayRoutes,
    readonly server: WebSocketServer,
    readonly request: IncomingMessage,
    readonly socket: Duplex,
    readonly head: Buffer,
    readonly path: string,
    readonly address: string,
    readonly admission: Admission,
  ) {}
}
