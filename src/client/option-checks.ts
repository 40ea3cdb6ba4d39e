import type { RealtimeClientOptions } from './client-options.js';
import { MAX_DELAY_MS } from './clock.js';

/** The options that are delays in ms over 0. */
const DELAYS = ['tokenTimeoutMs', 'requestTimeoutMs', 'pongTimeoutMs', 'onReconnectTimeoutMs'] as const;

/**
 * @internal Checks a client's numeric options, so that a mistake fails at the constructor
 * with the option's name instead of as timeouts firing at once (a delay of `NaN`, below 0
 * or over {@link MAX_DELAY_MS} does) or a queue that refuses everything.
 * @throws a `RangeError` naming the first option that is not valid.
 */
export function checkClientOptions(options: RealtimeClientOptions): void {
  for (const name of DELAYS) {
    if (options[name] !== undefined) {
      checkDelay(`option ${name}`, options[name]);
    }
  }
  if (options.pingIntervalMs !== undefined && options.pingIntervalMs !== false) {
    checkDelay('option pingIntervalMs', options.pingIntervalMs, 'or false');
  }
  const refresh = options.refreshBeforeExpiryMs;
  if (refresh !== undefined && !(typeof refresh === 'number' && refresh >= 0 && refresh <= MAX_DELAY_MS)) {
    throw new RangeError(
      `RealtimeClient: option refreshBeforeExpiryMs must be a number of ms from 0 to ${MAX_DELAY_MS}, got ${shown(refresh)}`,
    );
  }
  checkCount('maxQueue', options.maxQueue);
  const attempts = options.maxReconnectAttempts;
  if (attempts !== Number.POSITIVE_INFINITY) {
    checkCount('maxReconnectAttempts', attempts, ' (or Infinity)');
  }
}

/**
 * @internal Checks a delay in ms: over 0 and at most {@link MAX_DELAY_MS}.
 * @throws a `RangeError` that names `what`.
 */
export function checkDelay(what: string, value: unknown, alternative = ''): void {
  if (!(typeof value === 'number' && value > 0 && value <= MAX_DELAY_MS)) {
    const or = alternative ? ` ${alternative}` : '';
    throw new RangeError(`RealtimeClient: ${what} must be a number of ms over 0 and at most ${MAX_DELAY_MS}${or}, got ${shown(value)}`);
  }
}

function checkCount(name: string, value: unknown, alternative = ''): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isInteger(value) && value >= 0)) {
    throw new RangeError(`RealtimeClient: option ${name} must be a whole number of at least 0${alternative}, got ${shown(value)}`);
  }
}

/** A value as an error message shows it (`NaN` and `Infinity` as such, not as JSON's `null`). */
function shown(value: unknown): string {
  return typeof value === 'number' || value === undefined ? String(value) : (JSON.stringify(value) ?? String(value));
}
