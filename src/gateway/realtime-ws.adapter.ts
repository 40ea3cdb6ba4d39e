import { type INestApplicationContext, Logger, type WsMessageHandler } from '@nestjs/common';
import { ApplicationConfig, HttpAdapterHost, type ModuleRef } from '@nestjs/core';
import { AbstractWsAdapter } from '@nestjs/websockets';
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Duplex } from 'node:stream';
import { isObservable, lastValueFrom } from 'rxjs';
import WebSocket, { WebSocketServer } from 'ws';
import { ErrorCode } from '../protocol/error-codes.js';
import { CloseCode } from '../protocol/close-codes.js';
import { HandshakeChecker } from '../auth/handshake.js';
import { JwtVerifier } from '../auth/jwt-verifier.js';
import { TokenLifetime } from '../auth/token-lifetime.js';
import {
  AUTH_EVENT,
  encodeError,
  encodeReply,
  type MessageId,
  parseFrame,
  PING_EVENT,
  requestIdOf,
  PONG_EVENT,
  PROTOCOL_V1,
} from '../protocol/envelope.js';
import { DEFAULT_SHUTDOWN_TIMEOUT_MS, RAW_TEXT_MESSAGE, REALTIME_GATEWAY_OPTIONS } from '../realtime.constants.js';
import type { RealtimeGatewayOptions, RealtimeModuleOptions } from '../realtime-options.interface.js';
import { Connection, connectionOf, pendingDisconnectWork, takeConnectingGateway } from './connection.js';
import { directHandlersOf } from './direct-dispatch.js';
import type { BoundHandler, DirectHandler } from './handler-types.js';
import { armHeadersDeadline, type HeadersDeadline } from './headers-deadline.js';
import { corkOnData } from './write-batching.js';
import { LogThrottle } from '../limits/log-throttle.js';
import { UserRates } from '../limits/user-rates.js';
import { HeartbeatMonitor, type HeartbeatTiming } from '../heartbeat/heartbeat-monitor.js';
import { type GatewaySettings, normalizePath, positiveInteger, resolveGatewaySettings } from './gateway-settings.js';
import { failWithException } from './realtime-exception.filter.js';
import { MessageContext } from './message-context.js';
import { type GatewayRoutes, UpgradeGate } from './upgrade-gate.js';
import { ConnectionCounter, type LimitSettings, resolveLimits } from '../limits/limits.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { type GatewayMetrics, RealtimeMetrics } from '../metrics/realtime-metrics.js';

import { RealtimeHub } from '../rooms/realtime-hub.js';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';

/** Metrics label of raw-text frames. */
const RAW_METRIC_LABEL = '(raw)';

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
type HttpServerSource = INestApplicationContext | HttpServer | HttpAdapterHost | undefined;

/** The HTTP server of one port and the gateways served on it, by path. */
interface PortRouter extends GatewayRoutes {
  readonly httpServer: HttpServer;
  readonly ownsServer: boolean;
  readonly onUpgrade: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
  headers?: HeadersDeadline;
}

const APP_PORT = 0;

/**
 * Nest WebSocket adapter on `ws` that speaks protocol v1: request ids with exactly one
 * reply each, error frames instead of silent drops, raw-text handlers, the reserved
 * `ping`, 64 KiB frames by default, HTTP 404 for unknown paths and a 1001 close for
 * every client on shutdown.
 *
 * `RealtimeModule` installs it by itself; construct it only to pass it to
 * `app.useWebSocketAdapter()` yourself.
 */
export class RealtimeWsAdapter extends AbstractWsAdapter {
  private readonly logger = new Logger('RealtimeWsAdapter');
  /** Lines clients can cause (refusals, policy closes) go through it: a flood cannot flood the log. */
  private readonly log: LogThrottle;
  private readonly routers = new Map<number, PortRouter>();
  private readonly settings = new WeakMap<WebSocketServer, GatewaySettings>();
  private readonly heartbeats = new Map<string, HeartbeatMonitor>();
  private readonly adapterHost: HttpAdapterHost | undefined;
  private readonly shutdownTimeoutMs: number;
  private readonly shutdownCloseCode: number;
  private readonly shutdownBatchSize: number;
  private readonly handshake: HandshakeChecker;
  private readonly tokens: TokenLifetime;
  private readonly limits: LimitSettings;
  private readonly counter: ConnectionCounter;
  private readonly gate: UpgradeGate;
  /** Per-user inbound rate on this instance, shared by the user's connections. */
  private readonly userRates: UserRates | undefined;

  private hub: RealtimeHub | undefined;
  private readonly metrics: RealtimeMetrics | undefined;
  private readonly providers: HttpServerSource | ModuleRef;
  /** Direct handlers by gateway instance; null: the instance takes Nest's path (not a singleton). */
  private readonly directTables = new WeakMap<object, ReadonlyMap<string, DirectHandler> | null>();
  /** Errors of direct handlers are logged under the name the exception filter's have. */
  private readonly filterLogger = new Logger('RealtimeExceptionFilter');

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
    this.providers = providers ?? appOrHttpServer;
    this.hub = hub ?? findProvider(appOrHttpServer, RealtimeHub);
    this.metrics = metrics === null ? undefined : (metrics ?? findProvider(appOrHttpServer, RealtimeMetrics));
    this.adapterHost = appOrHttpServer instanceof HttpAdapterHost ? appOrHttpServer : undefined;
    this.shutdownTimeoutMs = options.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS;
    positiveInteger('shutdownTimeoutMs', this.shutdownTimeoutMs);
    this.limits = resolveLimits(options.limits);
    this.log = new LogThrottle(this.logger, this.limits.logThrottle);
    this.handshake = new HandshakeChecker(options.auth ? new JwtVerifier(options.auth) : undefined, options.auth);
    this.tokens = new TokenLifetime(this.handshake, this.log, {
      admit: (connection, sub) => this.admitSignIn(connection, sub),
      signedIn: (connection) => this.hub?.identify(connection) ?? Promise.resolve(),
    });
    this.counter = new ConnectionCounter(this.limits);
    this.userRates = this.limits.userMessageRate ? new UserRates(this.limits.userMessageRate) : undefined;
    this.shutdownCloseCode = options.shutdownCloseCode ?? CloseCode.GOING_AWAY;
    if (this.shutdownCloseCode !== CloseCode.GOING_AWAY && this.shutdownCloseCode !== CloseCode.SERVICE_RESTART) {
      throw new TypeError(`Realtime option shutdownCloseCode must be 1001 or 1012, got ${String(options.shutdownCloseCode)}`);
    }
    this.shutdownBatchSize = options.shutdownBatchSize ?? 500;
    positiveInteger('shutdownBatchSize', this.shutdownBatchSize);
    this.gate = new UpgradeGate(
      this.log,
      this.handshake,
      this.counter,
      this.limits,
      (server) => this.settings.get(server)!,
      () => this.hub,
      (status, cause) => this.metrics?.refusedUpgrade(status, cause),
    );
  }

  create(port: number, options: GatewayServerOptions = {}): WebSocketServer {
    if (options.namespace !== undefined) {
      throw new Error('RealtimeWsAdapter does not support namespaces: give each gateway its own path');
    }
    const path = normalizePath(options.path ?? '/');
    const gatewayOptions = options[REALTIME_GATEWAY_OPTIONS];
    if (!gatewayOptions) {
      this.logger.warn(
        `The gateway at ${path} is not decorated with @RealtimeGateway: Nest's own filter answers ` +
          `its handlers' errors with an "exception" event without the request id, and a request ` +
          `with an id then also gets an empty reply. Decorate it with @RealtimeGateway`,
      );
    }
    const settings = resolveGatewaySettings(path, this.options, gatewayOptions, this.limits);
    if (!settings.public && !this.handshake.verifier) {
      throw new Error(
        `The gateway at ${path} requires authentication, but RealtimeModule has no auth options: ` +
          'set auth.secret, auth.publicKey or auth.keyResolver, or mark the gateway { public: true }',
      );
    }
    const router = this.routerFor(port);
    if (router.gateways.has(path)) {
      throw new Error(`Two WebSocket servers on port ${port} share the path ${path}`);
    }
    const server = new WebSocketServer({
      noServer: true,
      clientTracking: true,
      maxPayload: settings.maxPayload,
      perMessageDeflate: false,
      handleProtocols: (protocols) => (protocols.has(PROTOCOL_V1) ? PROTOCOL_V1 : false),
    });
    server.on('error', (error) => this.logger.error(`WebSocket server at ${path}: ${error.message}`));
    const gatewayMetrics = this.metrics?.forGateway(path);
    server.on('connection', (socket: WebSocket, request: IncomingMessage) =>
      this.setUpConnection(socket, request, settings, gatewayMetrics),
    );
    this.settings.set(server, settings);
    router.gateways.set(path, server);
    return server;
  }

  override bindClientConnect(server: WebSocketServer, callback: (...args: unknown[]) => void): void {
    server.on('connection', callback);
  }

  bindMessageHandlers(client: WebSocket, handlers: WsMessageHandler[]): void {
    const connection = connectionOf(client);
    if (!connection) {
      return;
    }
    // One gateway on the path: its plain handlers skip Nest's async pipeline. Several: Nest's path for all.
    const gateway = takeConnectingGateway(client);
    connection.direct = ++connection.bindings === 1 && gateway ? this.directHandlers(gateway) : undefined;
    for (const { message, callback } of handlers) {
      const event = String(message);
      if (event === RAW_TEXT_MESSAGE) {
        connection.rawHandler ??= callback as BoundHandler;
      } else if (connection.handlers.has(event)) {
        // Two gateways on one path both subscribed to it: the first wins, as Nest's map does.
        continue;
      } else {
        connection.handlers.set(event, callback as BoundHandler);
      }
    }
  }

  override bindClientDisconnect(client: WebSocket, callback: (reason: unknown) => void): void {
    // 'on', not 'once': ws emits 'close' once, and once() would add a wrapper per connection.
    client.on('close', (code: number, reason: Buffer) => {
      const connection = connectionOf(client);
      callback(connection ? connection.disconnectReason(code, reason) : { code, reason: reason.toString(), cause: 'client' });
    });
  }

  /**
   * Drains a gateway: upgrades are refused with 503 from now on; open connections are
   * closed with 1001 (or `shutdownCloseCode`) in batches; it waits for their close
   * handshakes and their gateways' async `handleDisconnect` work, and terminates what is
   * left at `shutdownTimeoutMs`.
   */
  override async close(server: WebSocketServer): Promise<void> {
    const settings = this.settings.get(server);
    for (const router of this.routers.values()) {
      if (settings && router.gateways.get(settings.path) === server) {
        router.draining = true;
      }
    }
    const deadline = Date.now() + this.shutdownTimeoutMs;
    this.gate.drain();
    // Idle keep-alive sockets and half-sent requests would hold the HTTP server's close
    // (and the process) until their deadline: nothing is under way on them, end them now.
    for (const router of this.routers.values()) {
      router.headers?.dropWaiting();
    }
    const sockets = [...server.clients];
    const closing: Promise<void>[] = [];
    for (let start = 0; start < sockets.length; start += this.shutdownBatchSize) {
      for (const socket of sockets.slice(start, start + this.shutdownBatchSize)) {
        closing.push(this.closeGracefully(socket, deadline));
      }
      // Let the batch's close frames go out (and other work run) before the next batch.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(closing);
    // Every gateway's async handleDisconnect still running, including those of connections
    // that closed just before the drain began.
    const work = [...pendingDisconnectWork];
    if (work.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
      await Promise.race([Promise.allSettled(work), timeout]);
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Heartbeat figures of this adapter: connections watched, connections terminated for
   * silence, and sweep timers running (one per distinct timing, never one per connection).
   */
  heartbeatStats(): { watched: number; reaped: number; timers: number } {
    let watched = 0;
    let reaped = 0;
    let timers = 0;
    for (const monitor of this.heartbeats.values()) {
      watched += monitor.size;
      reaped += monitor.reaped;
      timers += monitor.running ? 1 : 0;
    }
    return { watched, reaped, timers };
  }

  override async dispose(): Promise<void> {
    for (const monitor of this.heartbeats.values()) {
      monitor.stop();
    }
    this.tokens.stop();
    this.log.flush();
    const closing: Promise<void>[] = [];
    for (const router of this.routers.values()) {
      // A shared server still listens until the application closes it: upgrades that
      // arrive meanwhile keep getting 503 from the draining router, not the HTTP stack's 404.
      router.draining = true;
      router.headers?.dropWaiting();
      if (router.ownsServer) {
        router.httpServer.off('upgrade', router.onUpgrade);
        router.headers?.disarm();
        closing.push(new Promise((resolve) => router.httpServer.close(() => resolve())));
      }
    }
    this.routers.clear();
    await Promise.all(closing);
  }

  private routerFor(port: number): PortRouter {
    const router = this.routers.get(port);
    if (router) {
      return router;
    }
    const shared = port === APP_PORT ? this.appHttpServer() : undefined;
    const httpServer =
      shared ??
      createServer((_request, response) => {
        response
          .writeHead(426, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ error: 'UPGRADE_REQUIRED', message: 'this port serves WebSocket connections only' }));
      });
    const gateways = new Map<string, WebSocketServer>();
    const created: PortRouter = {
      httpServer,
      ownsServer: !shared,
      gateways,
      draining: false,
      onUpgrade: (request, socket, head) => this.gate.route(created, request, socket, head),
    };
    created.headers = armHeadersDeadline(httpServer, this.limits.handshakeTimeoutMs);
    httpServer.on('upgrade', created.onUpgrade);
    if (!shared) {
      httpServer.on('error', (error) => this.logger.error(`WebSocket port ${port}: ${error.message}`));
      httpServer.listen(port);
    }
    this.routers.set(port, created);
    return created;
  }

  /** The monitor of one heartbeat timing, shared by every gateway that uses it. */
  private heartbeatMonitor(timing: HeartbeatTiming): HeartbeatMonitor {
    const key = `${timing.intervalMs}:${timing.timeoutMs}`;
    let monitor = this.heartbeats.get(key);
    if (!monitor) {
      monitor = new HeartbeatMonitor(timing);
      this.heartbeats.set(key, monitor);
    }
    return monitor;
  }

  private appHttpServer(): HttpServer | undefined {
    const server = (this.httpServer as HttpServer | undefined) ?? this.adapterHost?.httpAdapter?.getHttpServer();
    if (!server) {
      throw new Error(
        'RealtimeWsAdapter found no HTTP server to share: create the app with an HTTP adapter ' +
          '(NestFactory.create) or give gateways a port of their own',
      );
    }
    return server as HttpServer;
  }

  private setUpConnection(socket: WebSocket, request: IncomingMessage, settings: GatewaySettings, metrics?: GatewayMetrics): void {
    const connection = new Connection(socket, this.options.auth?.verifyConnection ? request : undefined, settings);
    connection.metrics = metrics;
    metrics?.connected();
    const accepted = this.gate.take(request);
    const principal = accepted?.principal;
    if (principal) {
      this.tokens.attach(connection, principal);
    }
    connection.admission = accepted?.admission;
    if (this.limits.messageRate) {
      connection.rate = new TokenBucket(this.limits.messageRate, performance.now());
    }
    if (principal) {
      this.attachUserRate(connection, principal.sub);
    }
    if (settings.heartbeat) {
      connection.watch(this.heartbeatMonitor(settings.heartbeat));
      socket.on('ping', markAlive);
    }
    // Also without heartbeats: a pong is how a client proves it reads (Connection.mayWrite).
    socket.on('pong', onPong);
    socket.on('close', this.socketListeners.close);
    this.hub?.attach(connection);
    socket.on('error', this.socketListeners.error);
    socket.on('message', this.socketListeners.message);
    // Before ws's own 'data' listener: the replies to the frames of one chunk leave in one write.
    connection.raw?.prependListener('data', corkOnData);
  }

  /**
   * The listeners of every connection's socket, made once per adapter: `this` is the
   * socket, whose {@link Connection} is looked up. No closures per connection.
   */
  private readonly socketListeners = ((adapter: RealtimeWsAdapter) => ({
    message(this: WebSocket, data: Buffer, isBinary: boolean): void {
      const connection = connectionOf(this);
      if (connection) {
        adapter.onFrame(connection, data, isBinary);
      }
    },
    close(this: WebSocket, code: number, reason: Buffer): void {
      const connection = connectionOf(this);
      if (connection) {
        adapter.onClose(connection, code, reason);
      }
    },
    error(this: WebSocket, error: Error & { code?: string }): void {
      const connection = connectionOf(this);
      if (error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
        connection?.markCause('message-too-big');
      }
      // ws closes the connection itself with the fitting code (1002, 1007, 1009).
      adapter.log.log('debug', 'connection error', () => `connection at ${connection?.settings.path ?? '?'} failed: ${error.message}`);
    },
  }))(this);

  private onClose(connection: Connection, code: number, reason: Buffer): void {
    connection.metrics?.disconnected(connection.disconnectReason(code, reason).cause);
    connection.release();
    this.tokens.detach(connection);
    if (connection.admission) {
      this.counter.release(connection.admission);
    }
    if (connection.rateUser !== undefined) {
      this.userRates?.release(connection.rateUser, performance.now());
    }
    // After the gateway's handleDisconnect (a later 'close' listener), which may still
    // want to know the connection's rooms.
    queueMicrotask(() => this.hub?.detach(connection));
  }

  private onFrame(connection: Connection, data: Buffer, isBinary: boolean): void {
    if (!connection.isOpen) {
      // Closing (by the server or the client): discarded at the socket, not dispatched,
      // counted, answered or logged. The close handshake or its timeout ends the socket.
      return;
    }
    connection.markAlive();
    if (!this.withinRate(connection)) {
      connection.metrics?.messageIn(undefined);
      // Only the id is read: exactly one reply per id holds under a flood too, and the
      // invalid-frame budget bounds how many frames are read that far.
      const id = isBinary ? undefined : requestIdOf(data.toString());
      this.refuseFrame(connection, id, ErrorCode.RATE_LIMITED, 'too many messages: slow down', 'rate limit exceeded');
      return;
    }
    if (isBinary) {
      connection.metrics?.messageIn(undefined);
      this.refuseFrame(connection, undefined, ErrorCode.BAD_REQUEST, 'binary frames are not accepted on this gateway');
      return;
    }
    const text = data.toString();
    const parsed = parseFrame(text, connection.settings.maxDepth);
    if (parsed.kind === 'invalid') {
      connection.metrics?.messageIn(undefined);
      this.refuseFrame(connection, parsed.id, ErrorCode.BAD_REQUEST, parsed.message);
      return;
    }
    if (parsed.kind === 'raw') {
      connection.metrics?.messageIn(RAW_METRIC_LABEL);
      if (connection.rawHandler) {
        this.dispatch(new MessageContext(connection, RAW_TEXT_MESSAGE, undefined, true), connection.rawHandler, text);
      } else {
        this.refuseFrame(connection, undefined, ErrorCode.BAD_REQUEST, 'frame must be a JSON object');
      }
      return;
    }
    const { event, id, data: payload } = parsed.frame;
    const handler = connection.handlers.get(event);
    connection.metrics?.messageIn(handler || event === PING_EVENT || event === AUTH_EVENT ? event : undefined);
    if (event === PING_EVENT) {
      connection.send(encodeReply(PONG_EVENT, id, { t: Date.now() }));
      return;
    }
    if (event === AUTH_EVENT) {
      this.tokens.refresh(connection, id, payload);
      return;
    }
    if (!handler) {
      this.refuseFrame(connection, id, ErrorCode.UNKNOWN_EVENT, `no handler for event "${event}"`);
      return;
    }
    this.dispatch(new MessageContext(connection, event, id), handler, payload);
  }

  /**
   * Answers a frame the protocol refuses, and closes connections that keep sending them
   * with 1008: one log line for the close (at a bounded rate across connections), none
   * per frame.
   */
  private refuseFrame(
    connection: Connection,
    id: MessageId | undefined,
    code: ErrorCode,
    message: string,
    closeReason = 'too many invalid frames',
  ): void {
    connection.send(encodeError(id, code, message));
    connection.metrics?.error(code);
    if (connection.countInvalidFrame(Date.now()) && connection.close(CloseCode.POLICY_VIOLATION, closeReason, 'policy-violation')) {
      this.log.log('warn', 'policy close', () => `closing a connection at ${connection.settings.path} with 1008: ${closeReason}`);
    }
  }

  /** Takes a token from the connection's bucket and its user's; false when either is empty. */
  private withinRate(connection: Connection): boolean {
    if (!connection.rate && !connection.userRate) {
      return true;
    }
    const now = performance.now();
    return (connection.rate?.take(now) ?? true) && (connection.userRate?.take(now) ?? true);
  }

  private attachUserRate(connection: Connection, sub: string): void {
    if (this.userRates) {
      connection.userRate = this.userRates.acquire(sub, performance.now());
      connection.rateUser = sub;
    }
  }

  /**
   * A public gateway's connection signs in with an in-band `auth`: it now counts against
   * its user's connection limit and rate, as if it had come with the token. Returns why
   * not, when the user is at the limit.
   */
  private admitSignIn(connection: Connection, sub: string): string | undefined {
    if (connection.admission) {
      const refusal = this.counter.admitUser(connection.admission, sub, false);
      if (refusal) {
        return refusal.message;
      }
    }
    this.attachUserRate(connection, sub);
    return undefined;
  }

  private dispatch(context: MessageContext, handler: BoundHandler, payload: unknown): void {
    const direct = context.raw ? undefined : context.connection.direct?.get(context.event);
    // Errors of a direct handler are answered (and logged) as the gateway's filter would;
    // on Nest's path, an error that gets here escaped the filters (one rethrew, say).
    const logger = direct ? this.filterLogger : this.logger;
    let result: unknown;
    try {
      result = direct ? direct(context.connection.socket, payload) : handler(payload, context);
    } catch (error) {
      failWithException(context, error, logger);
      return;
    }
    this.settle(context, result, logger);
  }

  /** Sends the handler's result once it is known: a value, a promise or an observable. */
  private settle(context: MessageContext, result: unknown, logger: Logger): void {
    if (context.isSettled) {
      return;
    }
    if (isObservable(result)) {
      lastValueFrom(result, { defaultValue: undefined }).then(
        (value) => this.settle(context, value, logger),
        (error: unknown) => failWithException(context, error, logger),
      );
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.settle(context, value, logger),
        (error: unknown) => failWithException(context, error, logger),
      );
      return;
    }
    if (isWsResponse(result)) {
      context.reply(result.data, result.event, true);
      return;
    }
    context.reply(result);
  }

  /**
   * The handlers of `gateway` the adapter may call itself; none when the application's
   * providers cannot be reached or the gateway is not a static singleton (request-scoped,
   * say), which only Nest's own path handles.
   */
  private directHandlers(gateway: object): ReadonlyMap<string, DirectHandler> | undefined {
    // Worked out at a gateway instance's first connection: provider lookups cost a handshake 2%.
    let table = this.directTables.get(gateway);
    if (table === undefined) {
      const config = this.provider(ApplicationConfig);
      const singleton = config !== undefined && this.provider(gateway.constructor as new () => object) === gateway;
      // The validation pipe gets the options Nest's injector would give it: the module's.
      const moduleOptions = findProvider<RealtimeModuleOptions>(this.providers, REALTIME_MODULE_OPTIONS);
      table = singleton ? directHandlersOf(gateway, config, moduleOptions) : null;
      this.directTables.set(gateway, table);
    }
    return table ?? undefined;
  }

  private provider<T>(type: new (...args: never[]) => T): T | undefined {
    return findProvider(this.providers, type);
  }

  private closeGracefully(socket: WebSocket, deadline: number): Promise<void> {
    if (socket.readyState === WebSocket.CLOSED) {
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const connection = connectionOf(socket);
      const timer = setTimeout(
        () => {
          connection ? connection.terminate('shutdown') : socket.terminate();
        },
        Math.max(0, deadline - Date.now()),
      );
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      const reason = this.shutdownCloseCode === CloseCode.SERVICE_RESTART ? 'server restarting' : 'server shutting down';
      if (connection) {
        connection.close(this.shutdownCloseCode, reason, 'shutdown');
      } else {
        socket.close(this.shutdownCloseCode, reason);
      }
    });
  }
}

/** A provider of the application given as the adapter's first argument, if it has one. */
function findProvider<T>(source: HttpServerSource | ModuleRef, type: (new (...args: never[]) => T) | symbol): T | undefined {
  if (!source || source instanceof HttpAdapterHost || !('get' in source) || typeof source.get !== 'function') {
    return undefined;
  }
  try {
    return source.get(type, { strict: false });
  } catch {
    return undefined; // No RealtimeModule in this application: no rooms, no metrics.
  }
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** A Nest `WsResponse`: exactly `{event, data}` with a string event. */
function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false;
  }
  const keys = Object.keys(value);
  return typeof (value as { event?: unknown }).event === 'string' && keys.length === 2 && keys.includes('event') && keys.includes('data');
}
