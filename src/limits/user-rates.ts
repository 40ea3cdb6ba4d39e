import { type RateLimit, TokenBucket } from './token-bucket.js';

/**
 * The inbound rate of each user on this instance, one bucket shared by all the user's
 * connections. A user's bucket outlives their last connection until it has refilled, so
 * that reconnecting does not buy a fresh burst.
 */
export class UserRates {
  private readonly entries = new Map<string, { bucket: TokenBucket; connections: number; expiry?: NodeJS.Timeout }>();

  constructor(private readonly rate: RateLimit) {}

  /** How many users have a bucket: those connected, and those whose bucket is still refilling. */
  get size(): number {
    return this.entries.size;
  }

  /** The bucket of `sub`, counted for one more connection. */
  acquire(sub: string, now: number): TokenBucket {
    let entry = this.entries.get(sub);
    if (!entry) {
      entry = { bucket: new TokenBucket(this.rate, now), connections: 0 };
      this.entries.set(sub, entry);
    }
    clearTimeout(entry.expiry);
    entry.connections++;
    return entry.bucket;
  }

  /** One connection of `sub` is gone. */
  release(sub: string, now: number): void {
    const entry = this.entries.get(sub);
    if (!entry || --entry.connections > 0) {
      return;
    }
    const wait = entry.bucket.msUntilFull(now);
    if (wait <= 0) {
      this.entries.delete(sub);
      return;
    }
    entry.expiry = setTimeout(() => {
      if (this.entries.get(sub) === entry && entry.connections === 0) {
        this.entries.delete(sub);
      }
    }, wait);
    entry.expiry.unref();
  }
}
