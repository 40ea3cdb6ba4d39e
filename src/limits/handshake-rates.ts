import { isIPv6 } from 'node:net';
import { type RateLimit, TokenBucket } from './token-bucket.js';

/** Buckets kept at most; past it, the address seen least recently gives way. About 100 B each. */
const MAX_BUCKETS = 100_000;

/**
 * Upgrade requests per client address, one token bucket each. An IPv6 address counts by
 * its /64 (one customer's allocation), so rotating addresses within it buys nothing.
 * A bucket is forgotten once it would have refilled, so memory follows the addresses seen
 * in the last `burst / perSecond` seconds, and never passes {@link MAX_BUCKETS}.
 */
export class HandshakeRates {
  private readonly buckets = new Map<string, TokenBucket>();
  private sweptAt: number;

  constructor(
    private readonly rate: RateLimit,
    now: number,
  ) {
    this.sweptAt = now;
  }

  /** Takes one handshake for `address` at `now` (ms, monotonic); otherwise ms until one is free. */
  take(address: string, now: number): true | number {
    this.sweep(now);
    const key = addressKey(address);
    let bucket = this.buckets.get(key);
    if (bucket) {
      // Moved to the end: the Map's order is least recently seen first.
      this.buckets.delete(key);
    } else {
      if (this.buckets.size >= MAX_BUCKETS) {
        this.buckets.delete(this.buckets.keys().next().value!);
      }
      bucket = new TokenBucket(this.rate, now);
    }
    this.buckets.set(key, bucket);
    return bucket.take(now) ? true : Math.ceil(1000 / this.rate.perSecond);
  }

  /** Buckets held now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Drops the buckets that have refilled, at most once per refill time. */
  private sweep(now: number): void {
    const refillMs = (this.rate.burst * 1000) / this.rate.perSecond;
    if (now - this.sweptAt < refillMs) {
      return;
    }
    this.sweptAt = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.msUntilFull(now) <= 0) {
        this.buckets.delete(key);
      }
    }
  }
}

/** The key an address is counted under: itself, its IPv4 form, or its IPv6 /64. */
export function addressKey(given: string): string {
  if (!given.includes(':')) {
    return given; // IPv4, the common case, without a parse
  }
  const address = given.toLowerCase(); // hex digits of either case: ::FFFF:1.2.3.4 is mapped too
  if (address.startsWith('::ffff:') && address.includes('.')) {
    return address.slice(7);
  }
  if (!isIPv6(address)) {
    return given;
  }
  return `${expandIPv6(address).slice(0, 4).join(':')}::/64`;
}

/** The eight groups of an IPv6 address, zero-compression expanded (a zone id dropped). */
function expandIPv6(address: string): string[] {
  const bare = address.split('%')[0]!;
  const [head, tail] = bare.includes('::') ? bare.split('::') : [bare, undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}
