import { Logger } from '@nestjs/common';

/** The sample app's settings, read from the environment (see the README). */
export interface SampleConfig {
  port: number;
  host: string;
  jwtSecret: string;
  allowedOrigins: string[] | undefined;
  heartbeat: { intervalMs: number; timeoutMs: number };
  /** Set: rooms span every instance sharing this Redis. Unset: in-memory broker. */
  redisUrl: string | undefined;
  /** Set (instead of redisUrl): some nodes of a Redis Cluster, `REDIS_CLUSTER=host:port,host:port`. */
  redisCluster: { host: string; port: number }[] | undefined;
  /** How long a killed instance's users stay in presence (Redis only). */
  presenceTtlMs: number;
  /** PEM files to serve https and wss with; unset: plain http and ws. */
  tls: { certFile: string; keyFile: string } | undefined;
  /** LOG_FORMAT=json: structured log lines. */
  jsonLogs: boolean;
  /** COMPRESSION=on: permessage-deflate for clients that offer it. */
  compression: boolean;
}

/** Used when JWT_SECRET is unset: fine on a laptop, never in production. */
export const DEVELOPMENT_JWT_SECRET = 'development-only-secret-change-me-0123456789';

export function loadConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const port = env.PORT === undefined || env.PORT === '' ? 3000 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`PORT must be a port number (0 to 65535), got "${env.PORT}"`);
  }
  let jwtSecret = env.JWT_SECRET;
  if (!jwtSecret) {
    new Logger('SampleApp').warn(
      '!!! JWT_SECRET is not set: using a well-known DEVELOPMENT secret. Anyone can forge tokens. ' +
        'Set JWT_SECRET to a long random value outside development. !!!',
    );
    jwtSecret = DEVELOPMENT_JWT_SECRET;
  }
  const allowedOrigins = env.ALLOWED_ORIGINS
    ? env.ALLOWED_ORIGINS.split(',')
        .map((origin) => origin.trim())
        .filter(Boolean)
    : undefined;
  if (allowedOrigins?.length === 0) {
    // An empty allowlist would refuse every browser: not what a blank value means.
    throw new Error(`ALLOWED_ORIGINS lists no origin, got "${env.ALLOWED_ORIGINS}": unset it to leave Origin unchecked`);
  }
  const heartbeat = {
    intervalMs: milliseconds(env, 'HEARTBEAT_INTERVAL_MS', 25_000),
    timeoutMs: milliseconds(env, 'HEARTBEAT_TIMEOUT_MS', 10_000),
  };
  const redisUrl = env.REDIS_URL || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) {
    throw new Error(`REDIS_URL must be a redis:// or rediss:// URL, got "${redisUrl}"`);
  }
  const redisCluster = env.REDIS_CLUSTER ? env.REDIS_CLUSTER.split(',').map((node) => clusterNode(node.trim())) : undefined;
  if (redisCluster && redisUrl) {
    throw new Error('REDIS_URL and REDIS_CLUSTER exclude each other: set one (a server, or some nodes of a cluster)');
  }
  const presenceTtlMs = milliseconds(env, 'PRESENCE_TTL_MS', 30_000);
  if (!env.TLS_CERT !== !env.TLS_KEY) {
    throw new Error('TLS_CERT and TLS_KEY go together: set both (PEM files) for https/wss, or neither');
  }
  const tls = env.TLS_CERT && env.TLS_KEY ? { certFile: env.TLS_CERT, keyFile: env.TLS_KEY } : undefined;
  if (env.LOG_FORMAT && env.LOG_FORMAT !== 'json' && env.LOG_FORMAT !== 'text') {
    throw new Error(`LOG_FORMAT must be "text" or "json", got "${env.LOG_FORMAT}"`);
  }
  const jsonLogs = env.LOG_FORMAT === 'json';
  const compression = onOff(env, 'COMPRESSION');
  return {
    port,
    host: env.HOST || '127.0.0.1',
    jwtSecret,
    allowedOrigins,
    heartbeat,
    redisUrl,
    redisCluster,
    presenceTtlMs,
    tls,
    jsonLogs,
    compression,
  };
}

/** `on`/`true`/`1` or `off`/`false`/`0`/unset; anything else is a clear error. */
function onOff(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = (env[name] ?? '').trim().toLowerCase();
  if (raw === '' || raw === 'off' || raw === 'false' || raw === '0') {
    return false;
  }
  if (raw === 'on' || raw === 'true' || raw === '1') {
    return true;
  }
  throw new Error(`${name} must be "on" or "off", got "${env[name]}"`);
}

function clusterNode(node: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(node);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) {
    throw new Error(`REDIS_CLUSTER must list host:port pairs separated by commas, got "${node}"`);
  }
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') {
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new Error(`${name} must be a positive whole number of milliseconds, got "${raw}"`);
  }
  return value;
}
