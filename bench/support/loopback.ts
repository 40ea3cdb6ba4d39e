import type { RateLimitOptions } from '../../src/index.js';

/**
 * The handshake rate of the benchmark servers. Every benchmark connection comes from
 * 127.0.0.1, thousands a second, far past the per-address default: this rate is never
 * reached, so the limiter runs (and costs what it costs) without refusing anyone.
 */
export const LOOPBACK_HANDSHAKE_RATE: RateLimitOptions = { perSecond: 1_000_000_000, burst: 1_000_000_000 };
