import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { HandshakeChecker } from '../auth/handshake.js';
import type { Authentication } from '../auth/authenticator.interface.js';
import { HandshakeRates } from '../limits/handshake-rates.js';
import { type Admission, clientAddress, type ConnectionCounter, type LimitSettings } from '../limits/limits.js';
import type { LogThrottle, ThrottledLevel } from '../limits/log-throttle.js';
import type { RealtimeHub } from '../rooms/realtime-hub.js';
import type { GatewaySettings } from './gateway-settings.js';
import { normalizePath } from './gateway-settings.js';
import { describeError } from './realtime-exception.filter.js';
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
  private readonly accepted = new WeakMap<IncomingMessage, Accepted>();
  /** Upgrades still being checked: refused at once when a drain begins. */
  private readonly inFlight = new Set<() => void>();
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

  /** Refuses every upgrade still being checked with 503 (the server is shutting down). */
  drain(): void {
    for (const cancel of [...this.inFlight]) {
      cancel();
    }
  }

  /** Takes what the upgrade of `request` accepted; called once by the new connection. */
  take(request: IncomingMessage): Accepted | undefined {
    const accepted = this.accepted.get(request);
    this.accepted.delete(request);
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
    let finished = false;
    /** Ends the upgrade here, refused, unless it has already ended; gives its place back. */
    const finish = (refusal?: Refusal, level?: ThrottledLevel, line?: () => string): boolean => {
      if (finished) {
        return false;
      }
      finished = true;
      clearTimeout(deadline);
      this.inFlight.delete(cancel);
      if (refusal) {
        this.counter.release(admission);
        this.refuse(socket, refusal, level, line);
      }
      return true;
    };
    const cancel = (): void => void finish(DRAINING);
    this.inFlight.add(cancel);
    const deadline = setTimeout(() => {
      finish(TOO_SLOW, 'warn', () => `at ${path} from ${address}: took over ${this.limits.handshakeTimeoutMs} ms`);
    }, this.limits.handshakeTimeoutMs);
    deadline.unref();
    const fail = (error: unknown): void => {
      finish(FAILED, 'error', () => `at ${path}: ${describeError(error)}`);
    };
    this.handshake
      .check(request, settings)
      .then(async (outcome) => {
        if (finished) {
          return;
        }
        if ('refusal' in outcome) {
          const refusal = outcome.refusal;
          finish(refusal, 'warn', () => `at ${path} from ${address}: ${refusal.detail}`);
          return;
        }
        const sub = outcome.authentication?.principal.sub;
        if (sub !== undefined) {
          const refusal = this.counter.admitUser(admission, sub);
          if (refusal) {
            finish(refusal, 'warn', () => `at ${path} from ${address}: ${refusal.message}`);
            return;
          }
        }
        const hub = this.hub();
        if (sub !== undefined && hub) {
          // Messages to the user must reach the connection from its first frame on, so the
          // user's broker subscription is in place before the upgrade completes.
          await hub.holdUser(sub);
        }
        if (!finish()) {
          if (sub !== undefined) {
            hub?.releaseUser(sub);
          }
          return;
        }
        let completed = false;
        try {
          completed = this.complete(routes, server, request, socket, head, { authentication: outcome.authentication, admission });
        } finally {
          // Not upgraded (or setting the connection up threw): give back what it held.
          if (!completed) {
            this.counter.release(admission);
            if (sub !== undefined) {
              hub?.releaseUser(sub);
            }
          }
        }
      }, fail)
      .catch(fail);
  }

  /** Hands an accepted request to ws; false when the socket went away or the server is draining. */
  private complete(
    routes: GatewayRoutes,
    server: WebSocketServer,
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    accepted: Accepted,
  ): boolean {
    if (socket.destroyed) {
      return false;
    }
    if (routes.draining) {
      this.refuse(socket, DRAINING);
      return false;
    }
    this.accepted.set(request, accepted);
    let upgraded = false;
    server.handleUpgrade(request, socket, head, (ws) => {
      upgraded = true;
      socket.off('error', ignoreSocketError);
      server.emit('connection', ws, request);
    });
    // Without verifyClient, ws completes or refuses a handshake synchronously.
    if (!upgraded) {
      this.accepted.delete(request);
    }
    return upgraded;
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

function ignoreSocketError(): void {
  // The socket is being refused or handed to ws; its own close path reports it.
}
