import type { IncomingMessage } from 'node:http';
import { checkRate, type RateLimit } from './token-bucket.js';

/** Limits of {@link RealtimeModuleOptions.limits}; each has a safe default. */
export interface RealtimeLimits {
  /** Open connections (and upgrades under way) on this instance; over it: HTTP 503. Default 50000. */
  maxConnections?: number;
  /** Connections of one user (`sub`) on this instance; over it: HTTP 429. Default 20. */
  maxConnectionsPerUser?: number;
  /** Connections from one IP address on this instance; over it: HTTP 429. Default 500. */
  maxConnectionsPerIp?: number;
  /** Rooms one connection may be in; one more join: `FORBIDDEN`. Default 100. */
  maxRoomsPerConnection?: number;
  /** Inbound frames per connection; over it: `RATE_LIMITED`. Default 100/s, bursts of 200. `false`: none. */
  messageRate?: RateLimit | false;
  /** Inbound frames per user, all its connections on this instance together. Default 300/s, bursts of 600. `false`: none. */
  userMessageRate?: RateLimit | false;
  /**
   * Outbound bytes buffered for one connection (a client that does not read); over it the
   * connection is closed with 4008 and cut a second later. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /** Time from the upgrade request to the accepted WebSocket (headers, token, hook); over it: 503, or the socket is dropped. Default 10000. */
  handshakeTimeoutMs?: number;
  /** Take the client's address from the first `X-Forwarded-For` entry (behind a proxy you trust). Default false. */
  trustProxy?: boolean;
}

/** {@link RealtimeLimits} with every default applied. */
export interface LimitSettings {
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerIp: number;
  readonly maxRoomsPerConnection: number;
  readonly messageRate: RateLimit | false;
  readonly userMessageRate: RateLimit | false;
  readonly maxBufferedBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly trustProxy: boolean;
}

/** Fills in the defaults and checks the values, with a clear error at startup. */
export function resolveLimits(limits: RealtimeLimits = {}): LimitSettings {
  const settings: LimitSettings = {
    maxConnections: limits.maxConnections ?? 50_000,
    maxConnectionsPerUser: limits.maxConnectionsPerUser ?? 20,
    maxConnectionsPerIp: limits.maxConnectionsPerIp ?? 500,
    maxRoomsPerConnection: limits.maxRoomsPerConnection ?? 100,
    messageRate: limits.messageRate ?? { perSecond: 100, burst: 200 },
    userMessageRate: limits.userMessageRate ?? { perSecond: 300, burst: 600 },
    maxBufferedBytes: limits.maxBufferedBytes ?? 1024 * 1024,
    handshakeTimeoutMs: limits.handshakeTimeoutMs ?? 10_000,
    trustProxy: limits.trustProxy ?? false,
  };
  for (const name of ['maxConnections', 'maxConnectionsPerUser', 'maxConnectionsPerIp', 'maxRoomsPerConnection', 'maxBufferedBytes', 'handshakeTimeoutMs'] as const) {
    const value = settings[name];
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`Realtime option limits.${name} must be a positive integer, got ${String(value)}`);
    }
  }
  for (const name of ['messageRate', 'userMessageRate'] as const) {
    const rate = settings[name];
    if (rate !== false) {
      checkRate(`limits.${name}`, rate);
    }
  }
  return settings;
}

/** Why an upgrade is refused by a connection limit. */
export interface LimitRefusal {
  readonly status: 429 | 503;
  readonly code: 'TOO_MANY_CONNECTIONS' | 'UNAVAILABLE';
  readonly message: string;
}

/** A connection's place under the limits, from the upgrade request until it closes. */
export interface Admission {
  readonly ip: string;
  user?: string;
  released: boolean;
}

/** Counts connections (and upgrades under way) in all, per IP and per user, against the limits. */
export class ConnectionCounter {
  private total = 0;
  private readonly perIp = new Map<string, number>();
  private readonly perUser = new Map<string, number>();

  constructor(private readonly limits: LimitSettings) {}

  /** Open connections and upgrades under way. */
  get count(): number {
    return this.total;
  }

  /** Takes a place for an upgrade request, or says why not. */
  admit(request: IncomingMessage): Admission | LimitRefusal {
    if (this.total >= this.limits.maxConnections) {
      return { status: 503, code: 'UNAVAILABLE', message: 'the server is at its connection limit' };
    }
    const ip = this.clientIp(request);
    if ((this.perIp.get(ip) ?? 0) >= this.limits.maxConnectionsPerIp) {
      return { status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections from this address' };
    }
    this.total++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    return { ip, released: false };
  }

  /** Counts the admission under its user once the token is known, or says why not (and releases it). */
  admitUser(admission: Admission, sub: string): LimitRefusal | undefined {
    if ((this.perUser.get(sub) ?? 0) >= this.limits.maxConnectionsPerUser) {
      this.release(admission);
      return { status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections for this user' };
    }
    admission.user = sub;
    this.perUser.set(sub, (this.perUser.get(sub) ?? 0) + 1);
    return undefined;
  }

  /** Gives the place back: the upgrade failed or the connection closed. Idempotent. */
  release(admission: Admission): void {
    if (admission.released) {
      return;
    }
    admission.released = true;
    this.total--;
    decrement(this.perIp, admission.ip);
    if (admission.user !== undefined) {
      decrement(this.perUser, admission.user);
    }
  }

  private clientIp(request: IncomingMessage): string {
    if (this.limits.trustProxy) {
      const forwarded = request.headers['x-forwarded-for'];
      const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
      if (first) {
        return first;
      }
    }
    return request.socket.remoteAddress ?? 'unknown';
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const next = (counts.get(key) ?? 1) - 1;
  if (next > 0) {
    counts.set(key, next);
  } else {
    counts.delete(key);
  }
}
