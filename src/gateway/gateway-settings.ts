import { type CompressionSettings, resolveCompression } from '../options/compression.js';
import type { HeartbeatTiming } from '../heartbeat/heartbeat-monitor.js';
import {
  DEFAULTS,
  nestingDepth,
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
  /** permessage-deflate; undefined when it is off. */
  readonly compression: CompressionSettings | undefined;
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
    compression: resolveCompression(`${path}: compression`, gateway.compression, module.compression),
  };
  positiveInteger(`${path}: limits.maxPayload`, settings.maxPayload);
  nestingDepth(`${path}: limits.maxDepth`, settings.maxDepth);
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

/**
 * Refuses at startup a gateway the adapter cannot serve (a Socket.IO namespace, an
 * authenticated gateway without an authenticator), and warns of one that is not
 * decorated with `@RealtimeGateway`.
 */
export function checkGateway(
  settings: GatewaySettings,
  declared: { namespace?: unknown; decorated: boolean; authenticator: boolean },
  warn: (line: string) => void,
): void {
  const path = settings.path;
  if (declared.namespace !== undefined) {
    throw new Error('RealtimeWsAdapter does not support namespaces: give each gateway its own path');
  }
  if (!declared.decorated) {
    warn(
      `The gateway at ${path} is not decorated with @RealtimeGateway: Nest's own filter answers ` +
        `its handlers' errors with an "exception" event without the request id, and a request ` +
        `with an id then also gets an empty reply. Decorate it with @RealtimeGateway`,
    );
  }
  if (!settings.public && !declared.authenticator) {
    throw new Error(
      `The gateway at ${path} requires authentication, but RealtimeModule has none: set auth.secret, ` +
        'auth.publicKey or auth.keyResolver (JWT), or an authenticator, or mark the gateway { public: true }',
    );
  }
  if (settings.public && settings.roles.length > 0) {
    // A client without credentials has no roles to check: it would get in where one with a token lacking them is refused.
    throw new Error(
      `The gateway at ${path} is public and requires roles (${settings.roles.join(', ')}): a client without a token ` +
        'would skip them. Drop { public: true }, or require the roles per handler with @RequireRoles',
    );
  }
}
