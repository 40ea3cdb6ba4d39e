import { backoffDelay, type ResolvedBackoff } from './backoff.js';
import type { ClientClock } from './clock.js';
import type { TokenReason } from './client-options.js';
import { CloseCode } from '../protocol/close-codes.js';

/**
 * How long a connection must stay open before its attempts count from zero again. A
 * server that accepts and then closes at once (a failing `handleConnection`, a 1013 under
 * load) otherwise has every client back at the first, shortest delay, forever.
 */
export const STABLE_AFTER_MS = 5000;

/**
 * @internal Where the client's reconnection stands: the attempts since a connection last
 * proved stable, whether a 1013 (overloaded) came since, and why the next token is asked
 * for; with the timers of an attempt (its handshake's deadline, the wait before the next
 * one, the wait for a connection to prove stable), which {@link stop} clears.
 */
export class Reconnection {
  /** Attempts since the last stable connection. */
  attempt = 0;
  /** A 1013 came since the last stable connection: the delays grow by the overload factor. */
  overloaded = false;
  /** Why the next connection asks the provider for a token. */
  tokenReason: TokenReason = 'connect';
  private everOpened = false;
  private handshakeTimer: unknown;
  private retryTimer: unknown;
  private stableTimer: unknown;

  constructor(
    private readonly clock: ClientClock,
    private readonly backoff: ResolvedBackoff,
    private readonly random: (() => number) | undefined,
  ) {}

  /** `connect()` was called: the attempts start over. */
  restart(): void {
    this.attempt = 0;
    this.overloaded = false;
  }

  /** Calls `timedOut` unless the handshake of the attempt under way ends (opened, or {@link stop}) within `ms`. */
  handshakeWithin(ms: number, timedOut: () => void): void {
    this.clock.clearTimeout(this.handshakeTimer);
    this.handshakeTimer = this.clock.setTimeout(timedOut, ms);
  }

  /**
   * A connection opened; true when it is a reconnection. Its attempts start over once it
   * has stayed open {@link STABLE_AFTER_MS} (unless {@link stop} comes first).
   */
  opened(): boolean {
    const again = this.everOpened;
    this.everOpened = true;
    this.tokenReason = 'reconnect';
    this.clock.clearTimeout(this.handshakeTimer);
    this.clock.clearTimeout(this.stableTimer);
    this.stableTimer = this.clock.setTimeout(() => this.restart(), STABLE_AFTER_MS);
    return again;
  }

  /**
   * The connection (or the attempt) ended with `code`; `refused`: before it opened, where a
   * browser cannot tell a 401 from any other failure, so a new token may help.
   */
  closed(code: number | undefined, refused: boolean): void {
    if (code === CloseCode.TOKEN_EXPIRED || refused) {
      this.tokenReason = 'expired';
    }
    // Overload lasts until a connection proves stable, whatever closes the attempts meanwhile.
    this.overloaded ||= code === CloseCode.TRY_AGAIN_LATER;
  }

  /**
   * Calls `retry` after the delay the next attempt waits (a 4001 after a stable connection:
   * none), and counts it as made; returns the delay.
   */
  schedule(code: number | undefined, retry: () => void): number {
    const delay =
      code === CloseCode.TOKEN_EXPIRED && this.attempt === 0 ? 0 : backoffDelay(this.attempt, this.backoff, this.overloaded, this.random);
    this.attempt++;
    this.clock.clearTimeout(this.retryTimer);
    this.retryTimer = this.clock.setTimeout(retry, delay);
    return delay;
  }

  /** Clears every timer: the handshake's deadline, the next attempt's wait, the wait for stability. */
  stop(): void {
    this.clock.clearTimeout(this.handshakeTimer);
    this.clock.clearTimeout(this.retryTimer);
    this.clock.clearTimeout(this.stableTimer);
  }
}
