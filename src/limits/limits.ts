import type { IncomingMessage } from 'node:http';
import { addressKey } from './handshake-rates.js';
import type { LogThrottleSettings } from './log-throttle.js';
import type { RateLimit } from './token-bucket.js';

/** Limits of one gateway's frames; a gateway's own override the module's. */
export interface FrameLimits {
  /** Largest accepted frame in bytes; a bigger one closes the connection with 1009. Default 64 KiB. */
  maxPayload?: number;
  /** Deepest accepted object/array nesting of a JSON frame (the envelope is level 1). Default 32. */
  maxDepth?: number;
  /**
   * Invalid frames (BAD_REQUEST, UNKNOWN_EVENT, RATE_LIMITED) a connection may send within
   * `windowMs` before it is closed with 1008. Default `{ limit: 100, windowMs: 10000 }`.
   */
  invalidFrames?: { limit: number; windowMs: number };
}

/** Limits of {@link RealtimeModuleOptions.limits}; each has a safe default. */
export interface RealtimeLimits extends FrameLimits {
  /** Open connections (and upgrades under way) on this instance; over it: HTTP 503. Default 50000. */
  maxConnections?: number;
  /** Connections of one user (`sub`) on this instance; over it: HTTP 429. Default 20. */
  maxConnectionsPerUser?: number;
  /** Connections from one IP address (an IPv6 address by its /64) on this instance; over it: HTTP 429. Default 500. */
  maxConnectionsPerIp?: number;
  /** Rooms one connection may be in; one more join: `FORBIDDEN`. Default 100. */
  maxRoomsPerConnection?: number;
  /** Inbound frames per connection; over it: `RATE_LIMITED`. Default 100/s, bursts of 200. `false`: none. */
  messageRate?: RateLimit | false;
  /** Inbound frames per user, all its connections on this instance together. Default 300/s, bursts of 600. `false`: none. */
  userMessageRate?: RateLimit | false;
  /**
   * Outbound bytes a client may have unread: waiting in this process, or taken by the
   * kernel and not yet proven read (a pong to a ping sent after them). Over it, the
   * connection is closed with 4008 and cut a second later. Default 1 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Time for each HTTP request on a socket, an upgrade's included, to arrive in full, and
   * from an upgrade request to the accepted WebSocket (token, hook); over it: 503, or the
   * socket is dropped. Default 10000.
   */
  handshakeTimeoutMs?: number;
  /**
   * Upgrade requests per client address (an IPv6 address counts by its /64); over it: HTTP
   * 429 with `Retry-After`, before the token is even looked at. Default 50/s, bursts of 200.
   * `false`: none.
   */
  handshakeRate?: RateLimit | false;
  /**
   * How long a client has to answer the server's close frame (token expired, kicked,
   * policy violation, shutdown) before its socket is cut. Default 2000.
   */
  closeTimeoutMs?: number;
  /**
   * How long each broker call of a join, a leave, a sign-in, a presence read and the
   * shutdown may take, in ms. A broker that does not answer in time no longer holds them
   * up: a subscription or presence entry left unconfirmed is logged (the broker is
   * expected to restore it, as after an outage), a presence read answers with this
   * instance's members, and a join with `since` fails with `UNAVAILABLE`. A join makes two
   * such waits one after the other (its subscription and presence entry, then the room's
   * history), three with a handler that reads presence before it answers: keep that under
   * your clients' request timeout (10 s in the client SDK). Default 2000.
   */
  brokerTimeoutMs?: number;
  /**
   * Log lines that clients can cause (refused handshakes, policy closes, refused token
   * refreshes): per kind, at most `lines` every `intervalMs`, then one line with the count
   * of those left out. Default 20 lines per 10000 ms.
   */
  logThrottle?: LogThrottleSettings;
  /**
   * Behind proxies you run, which append the address they saw to `X-Forwarded-For`: `true`
   * (one proxy) or the number of proxies. The client's address is then that header's entry
   * added by the outermost one. Default false: the peer's address.
   */
  trustProxy?: boolean | number;
}

/** {@link RealtimeLimits} with every default applied. */
export interface LimitSettings {
  readonly maxPayload: number;
  readonly maxDepth: number;
  readonly invalidFrames: { readonly limit: number; readonly windowMs: number };
  readonly maxConnections: number;
  readonly maxConnectionsPerUser: number;
  readonly maxConnectionsPerIp: number;
  readonly maxRoomsPerConnection: number;
  readonly messageRate: RateLimit | false;
  readonly userMessageRate: RateLimit | false;
  readonly maxBufferedBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly handshakeRate: RateLimit | false;
  readonly closeTimeoutMs: number;
  readonly brokerTimeoutMs: number;
  readonly logThrottle: LogThrottleSettings;
  readonly trustProxy: boolean | number;
}

/** Why an upgrade is refused by a connection limit. */
export interface LimitRefusal {
  readonly status: 429 | 503;
  readonly code: 'TOO_MANY_CONNECTIONS' | 'UNAVAILABLE';
  readonly message: string;
  readonly cause: 'server-full' | 'address-connections' | 'user-connections';
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

  /** Addresses and users counted now: none is kept once its last connection is gone. */
  get tracked(): { addresses: number; users: number } {
    return { addresses: this.perIp.size, users: this.perUser.size };
  }

  /**
   * Takes a place for an upgrade request from the client address `address`, or says why
   * not. An IPv6 address counts by its /64, as for the handshake rate.
   */
  admit(address: string): Admission | LimitRefusal {
    const ip = addressKey(address);
    if (this.total >= this.limits.maxConnections) {
      return { status: 503, code: 'UNAVAILABLE', message: 'the server is at its connection limit', cause: 'server-full' };
    }
    if ((this.perIp.get(ip) ?? 0) >= this.limits.maxConnectionsPerIp) {
      return { status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections from this address', cause: 'address-connections' };
    }
    this.total++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
    // Every field from the start: one added later would move them all out of the object.
    return { ip, user: undefined, released: false };
  }

  /**
   * Counts the admission under its user once the token is known, or says why not. An
   * upgrade refused here gives its place back (`releaseOnRefusal`); a connection that
   * tried to sign in keeps it.
   */
  admitUser(admission: Admission, sub: string, releaseOnRefusal = true): LimitRefusal | undefined {
    if (admission.user !== undefined) {
      return undefined;
    }
    if ((this.perUser.get(sub) ?? 0) >= this.limits.maxConnectionsPerUser) {
      if (releaseOnRefusal) {
        this.release(admission);
      }
      return { status: 429, code: 'TOO_MANY_CONNECTIONS', message: 'too many connections for this user', cause: 'user-connections' };
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
}

/**
 * The client's address: the peer's, or behind `trustProxy` proxies, the entry of
 * `X-Forwarded-For` the outermost trusted proxy added. Proxies append to the header, so
 * entries before it are whatever the client sent and are never trusted.
 */
export function clientAddress(request: IncomingMessage, trustProxy: boolean | number): string {
  const hops = trustProxy === true ? 1 : trustProxy || 0;
  if (hops > 0) {
    const header = request.headers['x-forwarded-for'];
    const entries = (Array.isArray(header) ? header.join(',') : (header ?? ''))
      .split(',')
      .map((entry) => entry.trim())
      .filter(Boolean);
    const trusted = entries[entries.length - hops];
    if (trusted) {
      return withoutPort(trusted);
    }
  }
  return request.socket.remoteAddress ?? 'unknown';
}

/**
 * An `X-Forwarded-For` entry without the port some proxies add (`1.2.3.4:5678`,
 * `[2001:db8::1]:443`): with it, every connection, from a new port, would count as a
 * client of its own under the per-address limits.
 */
function withoutPort(entry: string): string {
  const match = /^\[([^\]]+)\](?::\d+)?$/.exec(entry) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  return match ? match[1]! : entry;
}

function decrement(counts: Map<string, number>, key: string): void {
  const next = (counts.get(key) ?? 1) - 1;
  if (next > 0) {
    counts.set(key, next);
  } else {
    counts.delete(key);
  }
}
