import { type ClientClock, keepingTimers, MAX_DELAY_MS, withinDeadline } from './clock.js';
import type { TokenProvider, TokenReason } from './client-options.js';
import { tokenTimes } from './jwt-expiry.js';

const MIN_REFRESH_DELAY_MS = 1000;
/** The longest pause before a failed refresh is tried again (it is tried while the token lasts). */
const REFRESH_RETRY_MS = 5000;
/** How far in the future a token's `iat` may lie by this device's clock before the clock counts as wrong. */
const CLOCK_SKEW_MS = 60_000;

/**
 * The client's token: asked of the provider with a deadline, and refreshed before it
 * expires (`refreshBeforeExpiryMs`, or half its lifetime if shorter) when there is a
 * provider to ask for a new one.
 */
export class TokenKeeper {
  private timer: unknown;
  /** When the token in use expires, by this device's clock (undefined: unknown). */
  private expiresAt: number | undefined;
  /** The deadlines of the tokens asked of the provider and still awaited. */
  private readonly deadlines = new Set<unknown>();

  constructor(
    private readonly clock: ClientClock,
    private readonly provider: string | TokenProvider | undefined,
    private readonly timeoutMs: number,
    private readonly refreshBeforeMs: number,
  ) {}

  /** A token for `reason`: the fixed one, or the provider's within `tokenTimeoutMs`. */
  async get(reason: TokenReason): Promise<string | undefined> {
    const provider = this.provider;
    if (typeof provider !== 'function') {
      return provider;
    }
    let deadline: unknown;
    const clock = keepingTimers(this.clock, (timer) => this.deadlines.add((deadline = timer)));
    try {
      return await withinDeadline(
        clock,
        () => provider(reason),
        this.timeoutMs,
        () => new Error(`no token within ${this.timeoutMs} ms`),
      );
    } finally {
      this.deadlines.delete(deadline);
    }
  }

  /**
   * Calls `due` when `token`, just accepted by the server, should be refreshed; nothing
   * without an expiry or a provider. Its lifetime is read off this device's clock, unless
   * that clock disagrees with the token (it looks expired, or issued in the future): then
   * from the token's own `exp - iat`. A token that looks expired and has no `iat` is not
   * refreshed in-band: the server closes with 4001 when it expires, and the reconnection
   * asks for a new one (rather than a refresh every second).
   */
  schedule(token: string | undefined, due: () => void): void {
    this.clock.clearTimeout(this.timer);
    this.expiresAt = undefined;
    const times = token ? tokenTimes(token) : undefined;
    if (times === undefined || typeof this.provider !== 'function') {
      return;
    }
    const now = this.clock.now();
    const { expiresAt, issuedAt } = times;
    const skewed = issuedAt !== undefined && (expiresAt <= now || issuedAt > now + CLOCK_SKEW_MS);
    const lifetime = skewed ? expiresAt - issuedAt : expiresAt - now;
    if (lifetime <= 0) {
      return;
    }
    this.expiresAt = now + lifetime;
    const before = Math.min(this.refreshBeforeMs, lifetime / 2);
    this.at(now + Math.max(MIN_REFRESH_DELAY_MS, lifetime - before), due);
  }

  /**
   * A refresh failed: calls `due` again after a pause (at most {@link REFRESH_RETRY_MS}),
   * while the token in use still has that long to live.
   */
  retry(due: () => void): void {
    const left = this.expiresAt === undefined ? 0 : this.expiresAt - this.clock.now();
    const pause = Math.min(REFRESH_RETRY_MS, left / 2);
    if (pause >= MIN_REFRESH_DELAY_MS) {
      this.at(this.clock.now() + pause, due);
    }
  }

  /**
   * Stops the refresh schedule; with `awaited`, the deadlines of the tokens still awaited
   * too (the client disconnects: a provider that never answers then keeps no timer set).
   */
  stop(awaited = false): void {
    this.clock.clearTimeout(this.timer);
    if (awaited) {
      this.deadlines.forEach((deadline) => this.clock.clearTimeout(deadline));
      this.deadlines.clear();
    }
  }

  /** Calls `due` at `time` of the clock; timers beyond ~24.8 days fire at once, so it waits in steps and looks again. */
  private at(time: number, due: () => void): void {
    this.clock.clearTimeout(this.timer);
    const wait = time - this.clock.now();
    this.timer = this.clock.setTimeout(() => (wait > MAX_DELAY_MS ? this.at(time, due) : due()), Math.max(0, Math.min(wait, MAX_DELAY_MS)));
  }
}
