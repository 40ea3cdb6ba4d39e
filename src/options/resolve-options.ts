import { type CompressionSettings, resolveCompression } from './compression.js';
import type { HistoryPolicy } from '../broker/broker.interface.js';
import type { HeartbeatTiming } from '../heartbeat/heartbeat-monitor.js';
import type { LimitSettings, RealtimeLimits } from '../limits/limits.js';
import { MAX_TIMER_MS } from '../limits/deadline.js';
import { describeValue } from './describe-value.js';
import { checkRate } from '../limits/token-bucket.js';
import { CloseCode } from '../protocol/close-codes.js';
import { DEFAULT_MAX_DEPTH } from '../protocol/envelope.js';
import type { RealtimeHeartbeatOptions, RealtimeModuleOptions } from '../realtime-options.interface.js';

/** Every default of the module's options, in one place. */
export const DEFAULTS = Object.freeze({
  limits: Object.freeze({
    maxConnections: 50_000,
    maxConnectionsPerUser: 20,
    maxConnectionsPerIp: 500,
    maxRoomsPerConnection: 100,
    messageRate: Object.freeze({ perSecond: 100, burst: 200 }),
    userMessageRate: Object.freeze({ perSecond: 300, burst: 600 }),
    maxBufferedBytes: 1024 * 1024,
    handshakeTimeoutMs: 10_000,
    handshakeRate: Object.freeze({ perSecond: 50, burst: 200 }),
    closeTimeoutMs: 2000,
    brokerTimeoutMs: 2000,
    logThrottle: Object.freeze({ lines: 20, intervalMs: 10_000 }),
    trustProxy: false,
    maxPayload: 64 * 1024,
    maxDepth: DEFAULT_MAX_DEPTH,
    invalidFrames: Object.freeze({ limit: 100, windowMs: 10_000 }),
  }) satisfies LimitSettings,
  shutdown: Object.freeze({ timeoutMs: 30_000, closeCode: CloseCode.GOING_AWAY as 1001 | 1012, batchSize: 500 }),
  heartbeat: Object.freeze({ intervalMs: 25_000, timeoutMs: 10_000 }),
  history: Object.freeze({ size: 100, ttlMs: 300_000 }),
});

/** `RealtimeModuleOptions.shutdown` with every default applied. */
export interface ShutdownSettings {
  readonly timeoutMs: number;
  readonly closeCode: 1001 | 1012;
  readonly batchSize: number;
}

/** The module's options, checked, with every default applied, and frozen. */
export interface ResolvedOptions {
  readonly limits: LimitSettings;
  readonly shutdown: ShutdownSettings;
  /** The module's heartbeat timing; undefined when heartbeats are off. */
  readonly heartbeat: HeartbeatTiming | undefined;
  readonly allowedOrigins: ReadonlySet<string> | undefined;
  readonly metrics: boolean;
  /** Room history; undefined when it is off (`history: false`). */
  readonly history: HistoryPolicy | undefined;
  /** permessage-deflate; undefined when it is off (the default). */
  readonly compression: CompressionSettings | undefined;
}

/** Options that moved, and where they went: a clear error instead of a silently ignored key. */
const MOVED: Readonly<Record<string, string>> = {
  maxPayload: 'limits.maxPayload',
  maxDepth: 'limits.maxDepth',
  invalidFrames: 'limits.invalidFrames',
  shutdownTimeoutMs: 'shutdown.timeoutMs',
  shutdownCloseCode: 'shutdown.closeCode',
  shutdownBatchSize: 'shutdown.batchSize',
};

/** Checks the module's options and fills in the defaults; a bad value is a clear error at startup. */
export function resolveOptions(options: RealtimeModuleOptions = {}): ResolvedOptions {
  rejectMoved(options, '');
  // `shutdown: 5000` for `shutdown: { timeoutMs: 5000 }`, say: a clear error, not the defaults.
  optionalObject('limits', options.limits);
  optionalObject('shutdown', options.shutdown);
  optionalObject('heartbeat', options.heartbeat === false ? undefined : options.heartbeat);
  optionalObject('history', options.history === false ? undefined : options.history);
  const shutdown = {
    timeoutMs: options.shutdown?.timeoutMs ?? DEFAULTS.shutdown.timeoutMs,
    closeCode: options.shutdown?.closeCode ?? DEFAULTS.shutdown.closeCode,
    batchSize: options.shutdown?.batchSize ?? DEFAULTS.shutdown.batchSize,
  };
  if (options.metrics !== undefined && typeof options.metrics !== 'boolean') {
    // Only `false` turns counting off: the string 'false' from the environment would leave it on.
    throw new TypeError(`Realtime option metrics must be true or false, got ${describeValue(options.metrics)}`);
  }
  delayMs('shutdown.timeoutMs', shutdown.timeoutMs);
  positiveInteger('shutdown.batchSize', shutdown.batchSize);
  if (shutdown.closeCode !== CloseCode.GOING_AWAY && shutdown.closeCode !== CloseCode.SERVICE_RESTART) {
    throw new TypeError(`Realtime option shutdown.closeCode must be 1001 or 1012, got ${String(shutdown.closeCode)}`);
  }
  return Object.freeze({
    limits: Object.freeze(resolveLimits(options.limits)),
    shutdown: Object.freeze(shutdown),
    heartbeat: resolveHeartbeat('heartbeat', options.heartbeat, DEFAULTS.heartbeat),
    allowedOrigins: toOriginSet(options.allowedOrigins),
    metrics: options.metrics ?? true,
    history: resolveHistory(options.history),
    compression: resolveCompression('compression', options.compression, undefined),
  });
}

/** `history` with its defaults applied; undefined when it is off. */
export function resolveHistory(history: RealtimeModuleOptions['history']): HistoryPolicy | undefined {
  if (history === false) {
    return undefined;
  }
  const policy = { size: history?.size ?? DEFAULTS.history.size, ttlMs: history?.ttlMs ?? DEFAULTS.history.ttlMs };
  positiveInteger('history.size', policy.size);
  positiveInteger('history.ttlMs', policy.ttlMs);
  return Object.freeze(policy);
}

/** `limits` with every default applied. */
export function resolveLimits(limits: RealtimeLimits = {}): LimitSettings {
  const defaults = DEFAULTS.limits;
  const settings: LimitSettings = {
    maxConnections: limits.maxConnections ?? defaults.maxConnections,
    maxConnectionsPerUser: limits.maxConnectionsPerUser ?? defaults.maxConnectionsPerUser,
    maxConnectionsPerIp: limits.maxConnectionsPerIp ?? defaults.maxConnectionsPerIp,
    maxRoomsPerConnection: limits.maxRoomsPerConnection ?? defaults.maxRoomsPerConnection,
    messageRate: limits.messageRate ?? defaults.messageRate,
    userMessageRate: limits.userMessageRate ?? defaults.userMessageRate,
    maxBufferedBytes: limits.maxBufferedBytes ?? defaults.maxBufferedBytes,
    handshakeTimeoutMs: limits.handshakeTimeoutMs ?? defaults.handshakeTimeoutMs,
    handshakeRate: limits.handshakeRate ?? defaults.handshakeRate,
    closeTimeoutMs: limits.closeTimeoutMs ?? defaults.closeTimeoutMs,
    brokerTimeoutMs: limits.brokerTimeoutMs ?? defaults.brokerTimeoutMs,
    logThrottle: limits.logThrottle ?? defaults.logThrottle,
    trustProxy: limits.trustProxy ?? defaults.trustProxy,
    maxPayload: limits.maxPayload ?? defaults.maxPayload,
    maxDepth: limits.maxDepth ?? defaults.maxDepth,
    invalidFrames: limits.invalidFrames ?? defaults.invalidFrames,
  };
  for (const name of [
    'maxConnections',
    'maxConnectionsPerUser',
    'maxConnectionsPerIp',
    'maxRoomsPerConnection',
    'maxBufferedBytes',
    'maxPayload',
  ] as const) {
    positiveInteger(`limits.${name}`, settings[name]);
  }
  nestingDepth('limits.maxDepth', settings.maxDepth);
  if (typeof settings.trustProxy !== 'boolean' && !(Number.isSafeInteger(settings.trustProxy) && settings.trustProxy >= 0)) {
    // A string from the environment ('true', '1') would otherwise count every client under the proxy's address.
    throw new TypeError(
      `Realtime option limits.trustProxy must be true, false or a number of proxies (an integer >= 0), got ${JSON.stringify(settings.trustProxy)}`,
    );
  }
  for (const name of ['handshakeTimeoutMs', 'closeTimeoutMs', 'brokerTimeoutMs'] as const) {
    delayMs(`limits.${name}`, settings[name]);
  }
  positiveInteger('limits.logThrottle.lines', settings.logThrottle.lines);
  delayMs('limits.logThrottle.intervalMs', settings.logThrottle.intervalMs);
  positiveInteger('limits.invalidFrames.limit', settings.invalidFrames.limit);
  positiveInteger('limits.invalidFrames.windowMs', settings.invalidFrames.windowMs);
  for (const name of ['messageRate', 'userMessageRate', 'handshakeRate'] as const) {
    const rate = settings[name];
    if (rate !== false) {
      checkRate(`limits.${name}`, rate);
    }
  }
  return settings;
}

/** A heartbeat setting over `base` (a field left out keeps the base's); undefined when it is `false`. */
export function resolveHeartbeat(
  name: string,
  setting: RealtimeHeartbeatOptions | false | undefined,
  base: HeartbeatTiming,
): HeartbeatTiming | undefined {
  if (setting === false) {
    return undefined;
  }
  const timing = { intervalMs: setting?.intervalMs ?? base.intervalMs, timeoutMs: setting?.timeoutMs ?? base.timeoutMs };
  // The sweep timer's period is a quarter of the shorter one: both must be delays a timer can wait for.
  delayMs(`${name}.intervalMs`, timing.intervalMs);
  delayMs(`${name}.timeoutMs`, timing.timeoutMs);
  return Object.freeze(timing);
}

/**
 * Exact origins (`https://app.example.com`), checked, each as a browser sends it in its
 * `Origin` header: host in lower case and punycode, no default port (`https://App.example.com:443`
 * is `https://app.example.com`). An origin of a scheme URLs give no origin of their own
 * (`capacitor://localhost`) is kept as written, its scheme and host in lower case.
 */
export function toOriginSet(origins: string[] | undefined): ReadonlySet<string> | undefined {
  if (origins === undefined) {
    return undefined;
  }
  if (!Array.isArray(origins)) {
    throw new TypeError(`Realtime allowedOrigins must be an array of origins, got ${describeValue(origins)}`);
  }
  return new Set(
    origins.map((origin) => {
      if (typeof origin !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/i.test(origin)) {
        throw new TypeError(`Realtime allowedOrigins entries must be origins like "https://app.example.com", got ${String(origin)}`);
      }
      let serialized: string;
      try {
        serialized = new URL(origin).origin;
      } catch {
        throw new TypeError(`Realtime allowedOrigins entry ${JSON.stringify(origin)} is not a valid origin`);
      }
      return serialized === 'null' ? origin.toLowerCase() : serialized;
    }),
  );
}

/** Throws a clear error unless `value` is an object or absent. */
export function optionalObject(name: string, value: unknown): void {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TypeError(`Realtime option ${name} must be an object, got ${JSON.stringify(value)}`);
  }
}

/** Throws a clear error unless `value` is a positive whole number. */
export function positiveInteger(name: string, value: unknown): void {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new TypeError(`Realtime option ${name} must be a positive integer, got ${String(value)}`);
  }
}

/** The deepest nesting `limits.maxDepth` may allow: a frame is walked recursively, and far deeper ones would exhaust the stack. */
export const MAX_NESTING_DEPTH = 1000;

/** Throws unless `value` is a nesting depth a frame may be checked to: a positive integer up to {@link MAX_NESTING_DEPTH}. */
export function nestingDepth(name: string, value: unknown): void {
  positiveInteger(name, value);
  if ((value as number) > MAX_NESTING_DEPTH) {
    throw new TypeError(`Realtime option ${name} must be at most ${MAX_NESTING_DEPTH}, got ${String(value)}`);
  }
}

/** Throws unless `value` is a delay a timer can wait for: a positive integer of ms up to about 24.8 days. */
export function delayMs(name: string, value: unknown): void {
  positiveInteger(name, value);
  if ((value as number) > MAX_TIMER_MS) {
    throw new TypeError(`Realtime option ${name} must be at most ${MAX_TIMER_MS} ms (about 24.8 days), got ${String(value)}`);
  }
}

/** Throws for an option given where it used to be, naming where it is now. */
export function rejectMoved(options: object, where: string): void {
  for (const [old, now] of Object.entries(MOVED)) {
    if (old in options) {
      throw new TypeError(`Realtime option ${where}${old} is now ${where}${now}`);
    }
  }
}
