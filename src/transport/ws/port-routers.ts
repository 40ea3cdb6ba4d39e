import type { Logger } from '@nestjs/common';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { armHeadersDeadline, type HeadersDeadline } from './headers-deadline.js';
import { asksForWebSocket, serveAsHttp } from './other-upgrades.js';
import type { GatewayRoutes, UpgradeGate } from '../../gateway/upgrade-gate.js';

/** The HTTP server of one port and the gateways served on it, by path. */
export interface PortRouter extends GatewayRoutes {
  /** The HTTP server of the port. */
  readonly httpServer: HttpServer;
  /** The adapter made this server (a gateway with a port of its own) and closes it. */
  readonly ownsServer: boolean;
  /** Its `'upgrade'` listener: the upgrade gate. */
  readonly onUpgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** The headers deadline of its sockets. */
  readonly headers: HeadersDeadline;
}

/** The port gateways without a port of their own share: the application's. */
const APP_PORT = 0;

/**
 * The HTTP servers gateways are served on, one router per port: the application's own
 * server (port 0 in the gateway decorator), or a server of the adapter's own for a
 * gateway given a port. Each routes upgrades through the gate and keeps the headers
 * deadline on its sockets.
 */
export class PortRouters {
  private readonly routers = new Map<number, PortRouter>();

  constructor(
    private readonly gate: UpgradeGate,
    private readonly handshakeTimeoutMs: number,
    private readonly logger: Logger,
    private readonly appHttpServer: () => HttpServer,
  ) {}

  /** The router of `port`, made (and its own server listening) on first use. */
  for(port: number): PortRouter {
    const existing = this.routers.get(port);
    if (existing) {
      return existing;
    }
    const shared = port === APP_PORT ? this.appHttpServer() : undefined;
    const httpServer =
      shared ??
      createServer((_request, response) => {
        response
          .writeHead(426, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ error: 'UPGRADE_REQUIRED', message: 'this port serves WebSocket connections only' }));
      });
    const router: PortRouter = {
      httpServer,
      ownsServer: !shared,
      gateways: new Map(),
      draining: false,
      onUpgrade: (request, socket, head) =>
        asksForWebSocket(request)
          ? this.gate.route(router, request, socket, head)
          : serveAsHttp(
              httpServer,
              request,
              socket,
              (listener) => listener === router.onUpgrade || listener === router.headers.upgradeListener,
              this.handshakeTimeoutMs,
            ),
      headers: armHeadersDeadline(httpServer, this.handshakeTimeoutMs),
    };
    httpServer.on('upgrade', router.onUpgrade);
    if (shared) {
      // Kept through dispose (late upgrades get 503), and gone with the server.
      httpServer.once('close', () => {
        httpServer.off('upgrade', router.onUpgrade);
        router.headers.disarm();
      });
    } else {
      httpServer.on('error', (error) => this.logger.error(`WebSocket port ${port}: ${error.message}`));
      httpServer.listen(port);
    }
    this.routers.set(port, router);
    return router;
  }

  /**
   * Starts draining `server`'s router: its upgrades get 503 from now on. Every router's
   * sockets with nothing under way (idle keep-alive ones, half-sent requests) are closed:
   * they would hold the HTTP server's close, and the process, until their deadline.
   */
  drain(server: WebSocketServer): void {
    for (const router of this.routers.values()) {
      if ([...router.gateways.values()].includes(server)) {
        router.draining = true;
      }
      router.headers.dropWaiting();
    }
  }

  /** Closes the servers the adapter made; a shared server keeps answering upgrades with 503 until the application closes it. */
  async dispose(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const router of this.routers.values()) {
      router.draining = true;
      router.headers.dropWaiting();
      if (router.ownsServer) {
        router.httpServer.off('upgrade', router.onUpgrade);
        router.headers.disarm();
        closing.push(new Promise((resolve) => router.httpServer.close(() => resolve())));
      }
    }
    this.routers.clear();
    await Promise.all(closing);
  }
}
