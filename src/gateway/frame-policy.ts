import { CloseCode } from '../protocol/close-codes.js';
import type { ErrorCode } from '../protocol/error-codes.js';
import { errorFrame, type MessageId } from '../protocol/envelope.js';
import type { LimitSettings } from '../limits/limits.js';
import type { LogThrottle } from '../limits/log-throttle.js';
import { TokenBucket } from '../limits/token-bucket.js';
import { UserRates } from '../limits/user-rates.js';
import type { Connection } from './connection.js';

/**
 * What a connection may send: its inbound rate and its user's (shared by the user's
 * connections on this instance), and the invalid-frame budget past which it is closed
 * with 1008. Refusals are answered with an error frame carrying the request's id.
 */
export class FramePolicy {
  /** Per-user inbound rate on this instance, shared by the user's connections. */
  private readonly userRates: UserRates | undefined;

  constructor(
    private readonly limits: LimitSettings,
    private readonly log: LogThrottle,
  ) {
    this.userRates = limits.userMessageRate ? new UserRates(limits.userMessageRate) : undefined;
  }

  /** Gives a new connection its rate, and its user's when it has one. */
  attach(connection: Connection, sub: string | undefined): void {
    if (this.limits.messageRate) {
      connection.rate = new TokenBucket(this.limits.messageRate, performance.now());
    }
    if (sub !== undefined) {
      this.attachUser(connection, sub);
    }
  }

  /** Counts the connection under its user's rate (at the handshake, or when it signs in later). */
  attachUser(connection: Connection, sub: string): void {
    if (this.userRates) {
      connection.userRate = this.userRates.acquire(sub, performance.now());
      connection.rateUser = sub;
    }
  }

  /** How many users' rates this instance keeps (connected users, and buckets still refilling). */
  get trackedUsers(): number {
    return this.userRates?.size ?? 0;
  }

  /** A closed connection's share of its user's rate is given back. */
  release(connection: Connection): void {
    if (connection.rateUser !== undefined) {
      this.userRates?.release(connection.rateUser, performance.now());
    }
  }

  /** Takes a token from the connection's bucket and its user's; false when either is empty. */
  withinRate(connection: Connection): boolean {
    if (!connection.rate && !connection.userRate) {
      return true;
    }
    const now = performance.now();
    return (connection.rate?.take(now) ?? true) && (connection.userRate?.take(now) ?? true);
  }

  /**
   * Answers a frame the protocol refuses, and closes connections that keep sending them
   * with 1008: one log line for the close (at a bounded rate across connections), none
   * per frame.
   */
  refuse(
    connection: Connection,
    id: MessageId | undefined,
    code: ErrorCode,
    message: string,
    closeReason = 'too many invalid frames',
  ): void {
    connection.sendFrame(errorFrame(id, code, message));
    connection.metrics?.error(code);
    if (connection.countInvalidFrame(Date.now()) && connection.close(CloseCode.POLICY_VIOLATION, closeReason, 'policy-violation')) {
      this.log.log('warn', 'policy close', () => `closing a connection at ${connection.settings.path} with 1008: ${closeReason}`);
    }
  }
}
