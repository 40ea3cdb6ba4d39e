import type { Logger } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { HandshakeChecker } from '../auth/handshake.js';
import type { RealtimePrincipal } from '../auth/principal.js';
import { redactUrl } from '../auth/token-extractor.js';
import { type Admission, type ConnectionCounter, type LimitSettings } from '../limits/limits.js';
import type { RealtimeHub } from '../rooms/realtime-hub.js';
import type { GatewaySettings } from './gateway-settings.js';
import { normalizePath } from './gateway-settings.js';
import { describeError } from './realtime-exception.filter.js';
import { refuseUpgrade } from './upgrade-response.js';

/** The gateways served on one port, by path, and whether the port is draining. */
export interface GatewayRoutes {
  readonly gateways: Map<string, WebSocketServer>;
  draining: boolean;
}

/** What an accepted upgrade hands to its connection. */
export interface Accepted {
  readonly principal: RealtimePrincipal | undefined;
  readonly admission: Admission;
}

/** Counts of refused upgrades by HTTP status, for metrics. */
export type RefusalListener = (status: number) => void;

/**
 * Everything between an HTTP upgrade request and an accepted WebSocket: routing by path
 * (404), draining (503), the connection limits (503/429), the token and the hooks
 * (401/403), a deadline for all of it (503), and the user's broker subscription. Every
 * refusal is a plain HTTP response with a JSON body; no WebSocket is ever opened for it.
 */
export class UpgradeGate {
  private readonly accepted = new WeakMap<IncomingMessage, Accepted>();
  /** Upgrades still being checked: refused at once when a drain begins. */
  private readonly inFlight = new Set<() => void>();

  constructor(
    private readonly logger: Logger,
    private readonly handshake: HandshakeChecker,
    private readonly counter: ConnectionCounter,
    private readonly limits: LimitSettings,
    private readonly settingsOf: (server: WebSocketServer) => GatewaySettings,
    private readonly hub: () => RealtimeHub | undefined,
    private readonly onRefused: RefusalListener = () => undefined,
  ) {}

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
      this.refuse(socket, 503, 'UNAVAILABLE', 'the server is shutting down');
      return;
    }
    const url = request.url ?? '/';
    const query = url.indexOf('?');
    const path = normalizePath(query === -1 ? url : url.slice(0, query));
    const server = routes.gateways.get(path);
    if (!server) {
      this.logger.debug(`upgrade refused (404): no gateway at ${path}`);
      this.refuse(socket, 404, 'NOT_FOUND', `no WebSocket gateway at ${path}`);
      return;
    }
    const admission = this.counter.admit(request);
    if ('status' in admission) {
      this.logger.warn(`upgrade refused (${admission.status} ${admission.code}) at ${path}: ${admission.message}`);
      this.refuse(socket, admission.status, admission.code, admission.message);
      return;
    }
    let finished = false;
    /** Ends the upgrade here with a refusal, unless it has already ended. */
    const abandon = (message: string): void => {
      if (!finished) {
        finished = true;
        clearTimeout(deadline);
        this.inFlight.delete(cancel);
        this.counter.release(admission);
        this.refuse(socket, 503, 'UNAVAILABLE', message);
      }
    };
    const cancel = (): void => abandon('the server is shutting down');
    this.inFlight.add(cancel);
    const deadline = setTimeout(() => {
      this.logger.warn(`upgrade at ${path} from ${request.socket.remoteAddress} took over ${this.limits.handshakeTimeoutMs} ms`);
      abandon('the handshake took too long');
    }, this.limits.handshakeTimeoutMs);
    deadline.unref();
    const fail = (error: unknown): void => {
      if (!finished) {
        this.logger.error(`upgrade at ${path} failed: ${describeError(error)}`);
        abandon('try again later');
      }
    };
    this.handshake
      .check(request, this.settingsOf(server))
      .then(async (outcome) => {
        if (finished) {
          return;
        }
        if ('refusal' in outcome) {
          finished = true;
          clearTimeout(deadline);
          this.inFlight.delete(cancel);
          this.counter.release(admission);
          const { status, code, message, detail, headers } = outcome.refusal;
          this.logger.warn(
            `upgrade refused (${status} ${code}) at ${path} from ${request.socket.remoteAddress}: ${detail} ` +
              `[${redactUrl(request.url)}]`,
          );
          this.refuse(socket, status, code, message, headers);
          return;
        }
        const sub = outcome.principal?.sub;
        if (sub !== undefined) {
          const refusal = this.counter.admitUser(admission, sub);
          if (refusal) {
            finished = true;
            clearTimeout(deadline);
            this.inFlight.delete(cancel);
            this.logger.warn(`upgrade refused (${refusal.status} ${refusal.code}) at ${path}: ${refusal.message}`);
            this.refuse(socket, refusal.status, refusal.code, refusal.message);
            return;
          }
        }
        const hub = this.hub();
        if (sub !== undefined && hub) {
          // Messages to the user must reach the connection from its first frame on, so the
          // user's broker subscription is in place before the upgrade completes.
          await hub.holdUser(sub);
        }
        if (finished) {
          if (sub !== undefined) {
            hub?.releaseUser(sub);
          }
          return;
        }
        finished = true;
        clearTimeout(deadline);
        this.inFlight.delete(cancel);
        let completed = false;
        try {
          completed = this.complete(routes, server, request, socket, head, { principal: outcome.principal, admission });
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
      this.refuse(socket, 503, 'UNAVAILABLE', 'the server is shutting down');
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

  private refuse(socket: Duplex, status: number, code: string, message: string, headers?: Record<string, string>): void {
    this.onRefused(status);
    refuseUpgrade(socket, status, code, message, headers);
  }
}

function ignoreSocketError(): void {
  // The socket is being refused or handed to ws; its own close path reports it.
}
