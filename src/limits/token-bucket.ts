import { MAX_TIMER_MS } from './deadline.js';

/** A rate as a token bucket: `perSecond` tokens refill continuously, up to `burst`. */
export interface RateLimit {
  /** Sustained rate, per second. */
  perSecond: number;
  /** Tokens available at once. */
  burst: number;
}

/** A token bucket: `take()` succeeds while tokens remain. Refills lazily, no timer. */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly rate: RateLimit,
    now: number,
  ) {
    this.tokens = rate.burst;
    this.updatedAt = now;
  }

  /** How long until the bucket is full again, from `now` (ms). */
  msUntilFull(now: number): number {
    const tokens = Math.min(this.rate.burst, this.tokens + (Math.max(0, now - this.updatedAt) * this.rate.perSecond) / 1000);
    return ((this.rate.burst - tokens) * 1000) / this.rate.perSecond;
  }

  /** Takes one token at time `now` (ms, monotonic); false when there is none. */
  take(now: number): boolean {
    const elapsed = now - this.updatedAt;
    if (elapsed > 0) {
      this.tokens = Math.min(this.rate.burst, this.tokens + (elapsed * this.rate.perSecond) / 1000);
      this.updatedAt = now;
    }
    if (this.tokens < 1) {
      return false;
    }
    this.tokens -= 1;
    return true;
  }
}

/** Throws a clear error unless `rate` is a usable rate. */
export function checkRate(name: string, rate: RateLimit): void {
  if (!(rate.perSecond > 0) || !Number.isFinite(rate.perSecond) || !Number.isSafeInteger(rate.burst) || rate.burst < 1) {
    throw new TypeError(`Realtime option ${name} needs perSecond > 0 and a whole burst >= 1, got ${JSON.stringify(rate)}`);
  }
  // A bucket's state is kept until it is full again; a timer cannot wait longer than this.
  if ((rate.burst * 1000) / rate.perSecond > MAX_TIMER_MS) {
    throw new TypeError(
      `Realtime option ${name} refills its burst in over ${MAX_TIMER_MS} ms (about 24.8 days): raise perSecond or lower burst, got ${JSON.stringify(rate)}`,
    );
  }
}
