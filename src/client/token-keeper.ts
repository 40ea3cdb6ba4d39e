import { type ClientClock, keepingTimers, MAX_DELAY_MS, withinDeadline } from './clock.js';
import type { TokenProvider, TokenReason } from './client-options.js';
import { tokenExpiry } from './jwt-expiry.js';

const MIN_REFRESH_DELAY_MS = 1000;

/**
 * The client's token: asked of the provider with a deadline, and refreshed before it
 * expires (`refreshBeforeExpiryMs`, or half its lifetime if shorter) when there is a
 * provider to ask for a new one.
 */
export class TokenKeeper {
  private timer: unknown;
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

  /** Calls `due` when `token` should be refreshed; nothing without an expiry or a provider. */
  schedule(token: string | undefined, due: () => void): void {
    this.clock.clearTimeout(this.timer);
    const expiry = token ? tokenExpiry(token) : undefined;
    if (expiry === undefined || typeof this.provider !== 'function') {
      return;
    }
    const lifetime = expiry - this.clock.now();
    const before = Math.min(this.refreshBeforeMs, lifetime / 2);
    const wait = Math.max(MIN_REFRESH_DELAY_MS, lifetime - before);
    // Timers beyond ~24.8 days fire at once: wait in steps and look again.
    this.timer = this.clock.setTimeout(() => (wait > MAX_DELAY_MS ? this.schedule(token, due) : due()), Math.min(wait, MAX_DELAY_MS));
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
}
