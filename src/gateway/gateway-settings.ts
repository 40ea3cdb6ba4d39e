import type { HeartbeatTiming } from '../heartbeat/heartbeat-monitor.js';
import { type LimitSettings, resolveLimits } from '../limits/limits.js';
import { DEFAULT_HEARTBEAT, DEFAULT_INVALID_FRAMES, DEFAULT_MAX_DEPTH, DEFAULT_MAX_PAYLOAD } from '../realtime.constants.js';
import type { RealtimeGatewayOptions, RealtimeModuleOptions } from '../realtime-options.interface.js';

/** The effective, validated settings of one gateway (module options overridden by the gateway's). */
export interface GatewaySettings {
  readonly path: string;
  readonly maxPayload: number;
  readonly maxDepth: number;
  readonly invalidFrames: { readonly limit: number; readonly windowMs: number };
  readonly public: boolean;
  readonly roles: readonly string[];
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  /** Heartbeat timing; undefined when heartbeats are off. */
  readonly heartbeat: HeartbeatTiming | undefined;
  /** Outbound bytes buffered for a connection before it is cut as a slow consumer (4008). */
  readonly maxBufferedBytes: number;
  /** Rooms a connection may be in. */
  readonly maxRoomsPerConnection: number;
  /** How long a client has to answer the server's close frame before its socket is cut. */
  readonly closeTimeoutMs: number;
}

export function resolveGatewaySettings(
  path: string,
  module: RealtimeModuleOptions,
  gateway: RealtimeGatewayOptions = {},
  limits: LimitSettings = resolveLimits(module.limits),
): GatewaySettings {
  const settings: GatewaySettings = {
    path,
    maxPayload: gateway.maxPayload ?? module.maxPayload ?? DEFAULT_MAX_PAYLOAD,
    maxDepth: gateway.maxDepth ?? module.maxDepth ?? DEFAULT_MAX_DEPTH,
    invalidFrames: gateway.invalidFrames ?? module.invalidFrames ?? DEFAULT_INVALID_FRAMES,
    public: gateway.public ?? false,
    roles: gateway.roles ?? [],
    allowedOrigins: toOriginSet(gateway.allowedOrigins ?? module.allowedOrigins),
    heartbeat: resolveHeartbeat(path, module.heartbeat, gateway.heartbeat),
    maxBufferedBytes: limits.maxBufferedBytes,
    maxRoomsPerConnection: limits.maxRoomsPerConnection,
    closeTimeoutMs: limits.closeTimeoutMs,
  };
  positiveInteger(`${path}: maxPayload`, settings.maxPayload);
  positiveInteger(`${path}: maxDepth`, settings.maxDepth);
  positiveInteger(`${path}: invalidFrames.limit`, settings.invalidFrames.limit);
  positiveInteger(`${path}: invalidFrames.windowMs`, settings.invalidFrames.windowMs);
  return settings;
}

function resolveHeartbeat(
  path: string,
  module: RealtimeModuleOptions['heartbeat'],
  gateway: RealtimeGatewayOptions['heartbeat'],
): HeartbeatTiming | undefined {
  const setting = gateway ?? module;
  if (setting === false) {
    return undefined;
  }
  const base = gateway !== undefined && module ? module : {};
  const timing = {
    intervalMs: setting?.intervalMs ?? base.intervalMs ?? DEFAULT_HEARTBEAT.intervalMs,
    timeoutMs: setting?.timeoutMs ?? base.timeoutMs ?? DEFAULT_HEARTBEAT.timeoutMs,
  };
  positiveInteger(`${path}: heartbeat.intervalMs`, timing.intervalMs);
  positiveInteger(`${path}: heartbeat.timeoutMs`, timing.timeoutMs);
  return timing;
}

export function positiveInteger(name: string, value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new TypeError(`Realtime option ${name} must be a positive integer, got ${String(value)}`);
  }
}

/** `/echo/` and `echo` both become `/echo`; the root stays `/`. */
export function normalizePath(path: string): string {
  let p = path.startsWith('/') ? path : `/${path}`;
  while (p.length > 1 && p.endsWith('/')) {
    p = p.slice(0, -1);
  }
  return p;
}

function toOriginSet(origins: string[] | undefined): ReadonlySet<string> | undefined {
  if (origins === undefined) {
    return undefined;
  }
  for (const origin of origins) {
    if (typeof origin !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/i.test(origin)) {
      throw new TypeError(`Realtime allowedOrigins entries must be origins like "https://app.example.com", got ${String(origin)}`);
    }
  }
  return new Set(origins);
}
