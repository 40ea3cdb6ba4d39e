import type { HeartbeatTiming } from '../heartbeat/heartbeat-monitor.js';
import {
  DEFAULTS,
  optionalObject,
  positiveInteger,
  rejectMoved,
  type ResolvedOptions,
  resolveHeartbeat,
  toOriginSet,
} from '../options/resolve-options.js';
import type { RealtimeGatewayOptions } from '../realtime-options.interface.js';

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

/** The settings of the gateway at `path`: the module's, overridden by the gateway's own options. */
export function resolveGatewaySettings(path: string, module: ResolvedOptions, gateway: RealtimeGatewayOptions = {}): GatewaySettings {
  rejectMoved(gateway, `${path}: `);
  optionalObject(`${path}: limits`, gateway.limits);
  optionalObject(`${path}: heartbeat`, gateway.heartbeat === false ? undefined : gateway.heartbeat);
  const frames = gateway.limits ?? {};
  const settings: GatewaySettings = {
    path,
    maxPayload: frames.maxPayload ?? module.limits.maxPayload,
    maxDepth: frames.maxDepth ?? module.limits.maxDepth,
    invalidFrames: frames.invalidFrames ?? module.limits.invalidFrames,
    public: gateway.public ?? false,
    roles: gateway.roles ?? [],
    allowedOrigins: gateway.allowedOrigins !== undefined ? toOriginSet(gateway.allowedOrigins) : module.allowedOrigins,
    heartbeat:
      gateway.heartbeat === undefined
        ? module.heartbeat
        : resolveHeartbeat(`${path}: heartbeat`, gateway.heartbeat, module.heartbeat ?? DEFAULTS.heartbeat),
    maxBufferedBytes: module.limits.maxBufferedBytes,
    maxRoomsPerConnection: module.limits.maxRoomsPerConnection,
    closeTimeoutMs: module.limits.closeTimeoutMs,
  };
  positiveInteger(`${path}: limits.maxPayload`, settings.maxPayload);
  positiveInteger(`${path}: limits.maxDepth`, settings.maxDepth);
  positiveInteger(`${path}: limits.invalidFrames.limit`, settings.invalidFrames.limit);
  positiveInteger(`${path}: limits.invalidFrames.windowMs`, settings.invalidFrames.windowMs);
  return Object.freeze(settings);
}

/** `/echo/` and `echo` both become `/echo`; the root stays `/`. */
export function normalizePath(path: string): string {
  let p = path.startsWith('/') ? path : `/${path}`;
  while (p.length > 1 && p.endsWith('/')) {
    p = p.slice(0, -1);
  }
  return p;
}
