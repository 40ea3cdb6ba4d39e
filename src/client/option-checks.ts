import type { RealtimeClientOptions } from './client-options.js';
import { MAX_DELAY_MS } from './clock.js';

/** The options that are delays in ms. */
const DELAYS = ['tokenTimeoutMs', 'connectTimeoutMs', 'requestTimeoutMs', 'pongTimeoutMs', 'onReconnectTimeoutMs'] as const;

/**
 * @internal Checks a client's numeric options, so that a mistake fails at the constructor
 * with the option's name instead of as timeouts firing at once (a delay of `NaN`, below
 * 1 ms or over {@link MAX_DELAY_MS} does) or a queue that refuses everything. An option
 * that is `undefined` or `null` takes its default: the options are returned as a view of
 * the given ones in which those given as `null` (options read from JSON have them) are
 * absent (`resolveBackoff` does the same inside `backoff`).
 * @throws a `RangeError` naming the first option that is not valid.
 */
export function checkClientOptions(given: RealtimeClientOptions): RealtimeClientOptions {
  // Read through to the caller's object (its getters and prototype included), its nulls hidden.
  const options = Object.create(given) as RealtimeClientOptions & Record<string, unknown>;
  for (const key in given) {
    if ((given as Record<string, unknown>)[key] === null) {
      options[key] = undefined;
    }
  }
  for (const name of DELAYS) {
    if (options[name] != null) {
      checkDelay(`option ${name}`, options[name]);
    }
  }
  const ping = options.pingIntervalMs;
  if (ping != null && ping !== false) {
    checkDelay('option pingIntervalMs', ping, 'or false');
  }
  // Not a timer's delay: the refresh comes at the lifetime's half when this is longer.
  const refresh = options.refreshBeforeExpiryMs;
  if (refresh != null && !(typeof refresh === 'number' && refresh >= 0)) {
    throw new RangeError(`RealtimeClient: option refreshBeforeExpiryMs must be a number of ms of at least 0, got ${shown(refresh)}`);
  }
  checkCount('maxQueue', options.maxQueue);
  checkCount('maxReconnectAttempts', options.maxReconnectAttempts);
  return options;
}

/**
 * @internal Checks a delay in ms: at least 1 and at most {@link MAX_DELAY_MS}.
 * @throws a `RangeError` that names `what`.
 */
export function checkDelay(what: string, value: unknown, alternative = ''): void {
  if (!(typeof value === 'number' && value >= 1 && value <= MAX_DELAY_MS)) {
    const or = alternative ? ` ${alternative}` : '';
    throw new RangeError(`RealtimeClient: ${what} must be a number of ms from 1 to ${MAX_DELAY_MS}${or}, got ${shown(value)}`);
  }
}

/** A count: a whole number of at least 0, or `Infinity` for no limit. */
function checkCount(name: string, value: unknown): void {
  if (value != null && !(typeof value === 'number' && (Number.isInteger(value) || value === Number.POSITIVE_INFINITY) && value >= 0)) {
    throw new RangeError(`RealtimeClient: option ${name} must be a whole number of at least 0 or Infinity, got ${shown(value)}`);
  }
}

/** A value as an error message shows it (`NaN` and `Infinity` as such, not as JSON's `null`). */
function shown(value: unknown): string {
  return typeof value === 'number' || value === undefined ? String(value) : (JSON.stringify(value) ?? String(value));
}
