import { MAX_DELAY_MS } from './clock.js';

/** Reconnection delays: exponential growth with full jitter. */
export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. Default 500. */
  initialMs?: number;
  /** Upper bound of any delay, in ms. Default 20000. */
  maxMs?: number;
  /** Factor applied to the bounds after a 1013 (try again later) close. Default 4. */
  overloadFactor?: number;
}

/** Backoff options with every default applied. */
export type ResolvedBackoff = Required<BackoffOptions>;

/** Fills in the defaults (for a value left out, `undefined` or `null`) and checks the values. */
export function resolveBackoff(options: BackoffOptions = {}): ResolvedBackoff {
  const given = Object.entries(options).filter(([, value]) => value != null);
  const resolved = { initialMs: 500, maxMs: 20_000, overloadFactor: 4, ...(Object.fromEntries(given) as BackoffOptions) };
  const { initialMs, maxMs, overloadFactor } = resolved;
  // A timer longer than MAX_DELAY_MS fires at once: the bound after an overload close must stay below it.
  if (!(initialMs > 0) || !(maxMs >= initialMs) || !(overloadFactor >= 1) || !(maxMs * overloadFactor <= MAX_DELAY_MS)) {
    throw new RangeError(
      `RealtimeClient: option backoff needs 0 < initialMs <= maxMs, overloadFactor >= 1 and maxMs * overloadFactor <= ${MAX_DELAY_MS}, got ${JSON.stringify(resolved)}`,
    );
  }
  return resolved;
}

/**
 * The delay before reconnection attempt `attempt` (0 for the first): a uniformly random
 * value in `[0, min(maxMs, initialMs * 2^attempt))` ("full jitter"), so that clients cut
 * off together do not come back together. After an overload close both bounds grow by
 * `overloadFactor`.
 */
export function backoffDelay(attempt: number, options: ResolvedBackoff, overloaded = false, random: () => number = Math.random): number {
  const factor = overloaded ? options.overloadFactor : 1;
  const ceiling = Math.min(options.maxMs * factor, options.initialMs * factor * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
