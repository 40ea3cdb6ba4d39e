import { type INestApplicationContext, Logger, type WsMessageHandler } from '@nestjs/common';
import { HttpAdapterHost, type ModuleRef } from '@nestjs/core';
import { AbstractWsAdapter } from '@nestjs/websockets';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { authenticatorOf, HandshakeChecker } from '../auth/handshake.js';
import { TokenLifetime } from '../auth/token-lifetime.js';
import { HeartbeatRegistry, type HeartbeatStats } from '../heartbeat/heartbeat-registry.js';
import { ConnectionCounter } from '../limits/limits.js';
import { type ResolvedOptions, resolveOptions } from '../options/resolve-options.js';
import { LogThrottle } from '../limits/log-throttle.js';
import { RealtimeMetrics } from '../metrics/realtime-metrics.js';
import { PROTOCOL_V1, PROTOCOL_V1_MSGPACK } from '../protocol/envelope.js';
import { RAW_TEXT_MESSAGE, REALTIME_GATEWAY_OPTIONS } from '../realtime.constants.js';
import type { RealtimeGatewayOptions, RealtimeModuleOptions } from '../realtime-options.interface.js';
import { RealtimeHub } from '../rooms/realtime-hub.js';
import { ConnectionLifecycle } from './connection-lifecycle.js';
import type { Connection } from './connection.js';
import { connectionOf } from './connection-registry.js';
import { takeConnectingGateway } from './connecting-gateways.js';
import { DirectTables, findProvider } from './direct-tables.js';
import { Drain } from './drain.js';
import { FrameDispatcher } from './frame-dispatcher.js';
import { FramePolicy } from './frame-policy.js';
import { checkGateway, type GatewaySettings, normalizePath, resolveGatewaySettings } from './gateway-settings.js';
import type { BoundHandler } from './handler-types.js';
import { PortRouters } from '../transport/ws/port-routers.js';
import { wsTransport } from '../transport/ws/ws-transport.js';
import { RealtimeWebSocket } from '../transport/ws/realtime-websocket.js';
import { UpgradeGate } from './upgrade-gate.js';

/** Options Nest hands to {@link RealtimeWsAdapter.create}: the gateway decorator's options. */
export interface GatewayServerOptions {
  /** The gateway's path. */
  path?: string;
  /** Set by {@link RealtimeGateway}. */
  [REALTIME_GATEWAY_OPTIONS]?: RealtimeGatewayOptions;
  /** Socket.IO namespaces are not supported; present only to refuse them clearly. */
  namespace?: unknown;
}

/** Where the adapter finds the HTTP server to share: given directly, or resolved at `create()`. */
export type HttpServerSource = INestApplicationContext | HttpServer | HttpAdapterHost | undefined;

/**
 * Nest WebSocket adapter on `ws` that speaks protocol v1: request ids with exactly one
 * reply each, error frames instead of silent drops, raw-text handlers, the reserved
 * `ping`, 64 KiB frames by default, HTTP 404 for unknown paths and a 1001 close for
 * every client on shutdown.
 *
 * It is the glue between Nest and the parts that do the work: the upgrade gate
 * (`upgrade-gate.ts`), a connection's lifecycle (`connection-lifecycle.ts`), the frame
 * dispatcher and policy (`frame-dispatcher.ts`, `frame-policy.ts`) and the drain
 * (`drain.ts`).
 *
 * `RealtimeModule` installs it by itself; construct it only to pass it to
 * `app.useWebSocketAdapter()` yourself.
 */
export class RealtimeWsAdapter extends AbstractWsAdapter {
  private readonly logger = new Logger('RealtimeWsAdapter');
  private readonly settings = new WeakMap<WebSocketServer, GatewaySettings>();
  /** How many gateways Nest bound to the server of each path's settings. */
  private readonly gatewaysOn = new WeakMap<GatewaySettings, number>();
  private readonly heartbeats = new HeartbeatRegistry();
  private readonly adapterHost: HttpAdapterHost | undefined;
  private readonly handshake: HandshakeChecker;
  private readonly tokens: TokenLifetime;
  private readonly resolved: ResolvedOptions;
  private readonly log: LogThrottle;
  private readonly gate: UpgradeGate;
  private readonly routers: PortRouters;
  private readonly lifecycle: ConnectionLifecycle;
  private readonly drain: Drain;
  private readonly hub: RealtimeHub | undefined;
  private readonly metrics: RealtimeMetrics | undefined;
  private readonly direct: DirectTables;

  /**
   * @param appOrHttpServer the application (or its HTTP server) whose server gateways share
   * @param options the module's options
   * @param hub the rooms hub; found in `appOrHttpServer` when it is the application
   * @param metrics where to count; found in `appOrHttpServer` when it is the application; `null`: nowhere
   * @param providers where gateway instances and the application's configuration are
   * found (for the direct dispatch path); defaults to `appOrHttpServer` when it is the application
   */
  constructor(
    appOrHttpServer?: HttpServerSource,
    private readonly options: RealtimeModuleOptions = {},
    hub?: RealtimeHub,
    metrics?: RealtimeMetrics | null,
    providers?: ModuleRef,
  ) {
    super(appOrHttpServer instanceof HttpAdapterHost ? undefined : appOrHttpServer);
    const app = appOrHttpServer instanceof HttpAdapterHost ? undefined : appOrHttpServer;
    this.direct = new DirectTables(providers ?? app);
    this.hub = hub ?? findProvider(app, RealtimeHub);
    this.metrics = metrics === null ? undefined : (metrics ?? findProvider(app, RealtimeMetrics));
    this.adapterHost = appOrHttpServer instanceof HttpAdapterHost ? appOrHttpServer : undefined;
    this.resolved = resolveOptions(options);
    const limits = this.resolved.limits;
    this.drain = new Drain(this.resolved.shutdown);
    // Lines clients can cause (refusals, policy closes) go through it: a flood cannot flood the log.
    this.log = new LogThrottle(this.logger, limits.logThrottle);
    this.handshake = new HandshakeChecker(authenticatorOf(options), options.auth);
    this.tokens = new TokenLifetime(
      this.handshake,
      this.log,
      {
        admit: (connection, sub) => this.lifecycle.admitSignIn(connection, sub),
        signedIn: (connection) => this.hub?.identify(connection) ?? Promise.resolve(),
        mayCheck: (connection) => this.gate.mayCheckCredentials(connection.admission?.ip),
      },
      limits.handshakeTimeoutMs,
    );
    const counter = new ConnectionCounter(limits);
    const policy = new FramePolicy(limits, this.log);
    this.gate = new UpgradeGate(
      this.log,
      this.handshake,
      counter,
      limits,
      (server) => this.settings.get(server)!,
      () => this.hub,
      (status, cause) => this.metrics?.refusedUpgrade(status, cause),
    );
    this.routers = new PortRouters(this.gate, limits.handshakeTimeoutMs, this.logger, () => this.appHttpServer());
    this.lifecycle = new ConnectionLifecycle({
      transport: wsTransport,
      gate: this.gate,
      tokens: this.tokens,
      policy,
      counter,
      heartbeats: this.heartbeats,
      drain: this.drain,
      dispatcher: new FrameDispatcher(policy, this.tokens, this.log, limits.logThrottle),
      log: this.log,
      hub: () => this.hub,
      keepRequest: options.auth?.verifyConnection !== undefined,
    });
  }

  create(port: number, options: GatewayServerOptions = {}): WebSocketServer {
    const path = normalizePath(options.path ?? '/');
    const gatewayOptions = options[REALTIME_GATEWAY_OPTIONS];
    const settings = resolveGatewaySettings(path, this.resolved, gatewayOptions);
    const declared = {
      namespace: options.namespace,
      decorated: gatewayOptions !== undefined,
      authenticator: !!this.handshake.authenticator,
    };
    checkGateway(settings, declared, (line) => this.logger.warn(line));
    const router = this.routers.for(port);
    if (router.gateways.has(path)) {
      throw new Error(`Two WebSocket servers on port ${port} share the path ${path}`);
    }
    const server = new WebSocketServer({
      noServer: true,
      clientTracking: true,
      // Its emit hands the core its events: no listeners per connection (see RealtimeWebSocket).
      WebSocket: RealtimeWebSocket,
      maxPayload: settings.maxPayload,
      perMessageDeflate: settings.compression
        ? {
            // ws only negotiates and inflates (up to maxPayload): the adapter compresses each
            // outbound message itself, on its own (no context takeover), once per broadcast.
            // The two go together: ws applies its threshold only with server_no_context_takeover,
            // and the infinite threshold keeps even an application's own ws.send() (compress:
            // true by default) uncompressed, so ws's sender never holds a frame back while it
            // compresses one, and frames written past it keep their order.
            threshold: Number.POSITIVE_INFINITY,
            serverNoContextTakeover: true,
            concurrencyLimit: settings.compression.inflateConcurrency,
          }
        : false,
      handleProtocols: selectProtocol,
    });
    server.on('error', (error) => this.logger.error(`WebSocket server at ${path}: ${error.message}`));
    // ws hands its own refusals (malformed handshakes) here rather than answering them in HTML, uncounted.
    server.on('wsClientError', (error: Error, socket: Duplex) => this.gate.malformed(socket, path, error.message));
    const gatewayMetrics = this.metrics?.forGateway(path);
    server.on('connection', (socket: WebSocket, request: IncomingMessage) =>
      this.lifecycle.open(socket, request, settings, gatewayMetrics),
    );
    this.settings.set(server, settings);
    router.gateways.set(path, server);
    return server;
  }

  override bindClientConnect(server: WebSocketServer, callback: (...args: unknown[]) => void): void {
    // Nest binds each gateway on the path here, all of them before the first connection.
    const settings = this.settings.get(server);
    if (settings) {
      this.gatewaysOn.set(settings, (this.gatewaysOn.get(settings) ?? 0) + 1);
    }
    server.on('connection', callback);
  }

  bindMessageHandlers(client: WebSocket, handlers: WsMessageHandler[]): void {
    const connection = connectionOf(client);
    if (!connection) {
      return;
    }
    // One gateway on the path: its plain handlers skip Nest's async pipeline. Several: Nest's path for all.
    const gateway = takeConnectingGateway(client);
    const direct = ++connection.bindings === 1 && gateway ? this.direct.of(gateway) : undefined;
    connection.direct = direct;
    // The sole gateway of its path: a handler the adapter calls itself needs no bound copy per connection.
    const sole = direct !== undefined && this.gatewaysOn.get(connection.settings) === 1;
    for (const { message, callback } of handlers) {
      const event = String(message);
      if (event === RAW_TEXT_MESSAGE) {
        connection.rawHandler ??= callback as BoundHandler;
      } else if (!(sole && direct.has(event))) {
        // Two gateways on one path both subscribed to it: the first wins, as Nest's map does.
        connection.bindHandler(event, callback as BoundHandler);
      }
    }
  }

  override bindClientDisconnect(client: WebSocket, callback: (reason: unknown) => void): void {
    const own = connectionOf(client);
    if (own && !own.nestDisconnect) {
      // The first gateway's: kept on the connection and called when it closes, with no listener of its own.
      own.nestDisconnect = callback;
      return;
    }
    // 'on', not 'once': ws emits 'close' once, and once() would add a wrapper per connection.
    client.on('close', (code: number, reason: Buffer) => {
      const connection = connectionOf(client);
      callback(connection ? connection.disconnectReason(code, reason) : { code, reason: reason.toString(), cause: 'client' });
    });
  }

  /**
   * Drains a gateway: upgrades are refused with 503 from now on; open connections are
   * closed with 1001 (or `shutdown.closeCode`) in batches; it waits for their close
   * handshakes and their gateways' async `handleDisconnect` work, and terminates what is
   * left at `shutdown.timeoutMs`.
   */
  override async close(server: WebSocketServer): Promise<void> {
    this.routers.drain(server);
    this.gate.drain();
    const connections: Connection[] = [];
    for (const socket of server.clients) {
      const connection = connectionOf(socket);
      if (connection) {
        connections.push(connection);
      } else {
        socket.terminate(); // never set up (its lifecycle failed to open): nothing to drain
      }
    }
    await this.drain.run(connections);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Heartbeat figures of this adapter: connections watched, connections terminated for
   * silence, and sweep timers running (one per distinct timing, never one per connection).
   */
  heartbeatStats(): HeartbeatStats {
    return this.heartbeats.stats();
  }

  override async dispose(): Promise<void> {
    this.heartbeats.stop();
    this.tokens.stop();
    this.log.flush();
    await this.routers.dispose();
  }

  private appHttpServer(): HttpServer {
    const server = (this.httpServer as HttpServer | undefined) ?? this.adapterHost?.httpAdapter?.getHttpServer();
    if (!server) {
      throw new Error(
        'RealtimeWsAdapter found no HTTP server to share: create the app with an HTTP adapter ' +
          '(NestFactory.create) or give gateways a port of their own',
      );
    }
    return server as HttpServer;
  }
}

/** The subprotocol of a handshake: MessagePack when the client offers it (it offers JSON too, for older servers), else JSON. */
function selectProtocol(protocols: Set<string>): string | false {
  return protocols.has(PROTOCOL_V1_MSGPACK) ? PROTOCOL_V1_MSGPACK : protocols.has(PROTOCOL_V1) ? PROTOCOL_V1 : false;
}
