import type { RealtimePresenceOptions } from './rooms/presence-options.js';
import type { RealtimeCompressionOptions } from './options/compression.js';
import type { RealtimeAuthOptions } from './auth/auth-options.interface.js';
import type { RealtimeAuthenticator } from './auth/authenticator.interface.js';
import type { RealtimeBroker } from './broker/broker.interface.js';
import type { FrameLimits, RealtimeLimits } from './limits/limits.js';
import type { RealtimeValidationSetting } from './validation/validation-options.interface.js';

/** Heartbeat timing, in milliseconds; a field left out keeps its default (or the module's). */
export interface RealtimeHeartbeatOptions {
  /** Silence after which the server pings. Default 25000. */
  intervalMs?: number;
  /** Further silence after which the server terminates the connection. Default 10000. */
  timeoutMs?: number;
}

/** Options of {@link RealtimeModule}: defaults for every gateway of the application. */
export interface RealtimeModuleOptions {
  /**
   * JWT verification at the handshake. Required unless every gateway is public:
   * gateways are authenticated by default.
   */
  auth?: RealtimeAuthOptions;
  /**
   * Your own authenticator (an API key, a session cookie…) instead of JWT. `auth` may then
   * still carry `verifyConnection` and its timeout, but no JWT keys.
   */
  authenticator?: RealtimeAuthenticator;
  /**
   * Exact origins (`https://app.example.com`) allowed to connect; others get 403 before
   * the upgrade. Requests without an `Origin` header (non-browser clients) are allowed.
   * Default: not checked.
   */
  allowedOrigins?: string[];
  /** How `app.close()` drains connections. */
  shutdown?: RealtimeShutdownOptions;
  /** Connection, frame, room, rate and buffer limits, each with a safe default. */
  limits?: RealtimeLimits;
  /**
   * Count connections, messages, errors and handler durations in `RealtimeMetrics`.
   * `false` leaves the registry empty and spares the hot path the counting. Default true.
   */
  metrics?: boolean;
  /**
   * The broker rooms, user targeting and presence go through. Default: a `MemoryBroker`
   * (one instance). `new RedisBroker({ url })` from `nestjs-realtime/redis` spans instances.
   */
  broker?: RealtimeBroker;
  /**
   * Room history, for offsets and recovery (docs/protocol.md §7): each room keeps at least its
   * latest `size` messages for `ttlMs` after its last one, every room push carries its
   * `offset`, and a `join` with `since` gets what it missed. `false` turns it off (pushes
   * then carry no offset). Default `{ size: 100, ttlMs: 300000 }`.
   */
  history?: RealtimeHistoryOptions | false;
  /**
   * Presence events: with `{ events: true }`, a room's members on every instance are told
   * when a user joins the room (their first connection in it) or leaves it (their last),
   * `{"event": "presence", "room", "data": {"joined": sub}}` or `{"left": sub}`, once a
   * change has settled for `debounceMs` (default 1000). Default: off.
   */
  presence?: RealtimePresenceOptions;
  /**
   * Heartbeat: a connection from which nothing arrived for `intervalMs` is pinged; one
   * silent for `intervalMs + timeoutMs` is terminated. `false` turns it off.
   * Default `{ intervalMs: 25000, timeoutMs: 10000 }`.
   */
  heartbeat?: RealtimeHeartbeatOptions | false;
  /**
   * Validation of `@MessageBody()` DTOs in `@RealtimeGateway` handlers, or `false` to turn
   * it off. Default `{ whitelist: true, forbidNonWhitelisted: true, transform: true }`.
   */
  validation?: RealtimeValidationSetting;
  /**
   * permessage-deflate, for clients that offer it (browsers do): messages over a threshold
   * are sent compressed, and compressed inbound ones are accepted, inflated no further than
   * `limits.maxPayload`. `true` for the defaults. Default false: compression costs CPU on
   * every compressed message.
   */
  compression?: RealtimeCompressionOptions | boolean;
}

/** `RealtimeModuleOptions.history`: how much of each room's history is kept. */
export interface RealtimeHistoryOptions {
  /** At least this many of a room's latest messages. Default 100. */
  size?: number;
  /** For this long after the room's last message, in ms; then the history, and its epoch, is gone. Default 300000 (5 minutes). */
  ttlMs?: number;
}

/** How `app.close()` drains connections (`RealtimeModuleOptions.shutdown`). */
export interface RealtimeShutdownOptions {
  /**
   * The longest the drain takes, in ms: what is still open then (connections, gateways'
   * async `handleDisconnect` work) is terminated or no longer waited for. A client that
   * does not answer its close frame is cut sooner, after `limits.closeTimeoutMs`. Default 30000.
   */
  timeoutMs?: number;
  /** Close code sent to every client: 1001 (going away) or 1012 (restart: come back soon). Default 1001. */
  closeCode?: 1001 | 1012;
  /** Connections closed per event-loop turn, so that a large drain does not stall the process. Default 500. */
  batchSize?: number;
}

/**
 * Per-gateway options, given to {@link RealtimeGateway}: a subset of the module's, which
 * they override for this gateway, plus who may connect.
 */
export interface RealtimeGatewayOptions extends Pick<RealtimeModuleOptions, 'allowedOrigins' | 'heartbeat' | 'validation' | 'compression'> {
  /** Accept connections without credentials (credentials that are given must still be valid). Default false. */
  public?: boolean;
  /** Roles the principal's `roles` must all contain, checked at the handshake (403). */
  roles?: string[];
  /** Frame limits for this gateway, over the module's `limits`. */
  limits?: FrameLimits;
}
