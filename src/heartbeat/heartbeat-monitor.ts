import { type HeartbeatClock, systemClock } from './heartbeat-clock.js';

/**
 * {@link HeartbeatEntry.pingedAt} of a peer never pinged (or not for about a week): a
 * small integer, like every time an entry holds.
 */
const NEVER = -(2 ** 30);
/**
 * Once this many ms have passed since the monitor's epoch, the epoch moves to now and the
 * entries' times with it, so that they stay small integers (V8 stores those in the object
 * itself; past 2^31 ms, about 25 days, every entry's time would be a number object).
 */
const REBASE_AFTER_MS = 2 ** 29;

/**
 * A peer as the heartbeat sees it: something to ping and something to cut, which keeps
 * its own liveness (a connection is one, so it needs no separate entry object). The
 * transport sets `active` on any inbound traffic (a frame, a pong, a ping): a single
 * property store, the whole per-message cost.
 */
export abstract class HeartbeatEntry {
  /** Something arrived since the last sweep. */
  active = true;
  /**
   * @internal When a sweep last saw activity, in whole ms after the monitor's epoch (rounded
   * up: a silence is never overstated): an integer is stored in the object itself, a
   * fraction in a number object of its own.
   */
  seenAt = 0;
  /** @internal When the last ping went out, in the same unit (rounded up), or {@link NEVER}. */
  pingedAt = NEVER;

  /** Sends a protocol-level ping. */
  abstract heartbeatPing(): void;
  /** Ends the connection without a close handshake: the peer is presumed gone. */
  abstract heartbeatTimeout(): void;
}

/** Heartbeat timing: ping after `intervalMs` of silence, cut after `intervalMs + timeoutMs`. */
export interface HeartbeatTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/**
 * Pings silent peers and terminates the ones that stay silent, with one repeating timer
 * for all of them (a sweep), never one per connection.
 *
 * Every sweep, a peer that was active since the previous one is marked seen "now"; a peer
 * silent for `intervalMs` or more is pinged (once per `intervalMs`); a peer silent for
 * `intervalMs + timeoutMs` or more is terminated. Because activity is noticed at the
 * sweep after it happened, a peer is never cut early and at most one sweep period late.
 * The sweep period is a quarter of the shorter of the two durations.
 */
export class HeartbeatMonitor {
  /** Sweep period in ms. */
  readonly sweepMs: number;
  private readonly entries = new Set<HeartbeatEntry>();
  private timer: unknown;
  private reapedCount = 0;
  private epoch: number;

  constructor(
    readonly timing: HeartbeatTiming,
    private readonly clock: HeartbeatClock = systemClock,
  ) {
    this.sweepMs = Math.max(1, Math.floor(Math.min(timing.intervalMs, timing.timeoutMs) / 4));
    this.epoch = clock.now();
  }

  /** Ms since the epoch, moved forward (with every entry's times) once they grow large. */
  private elapsed(): number {
    const elapsed = this.clock.now() - this.epoch;
    if (elapsed < REBASE_AFTER_MS) {
      return elapsed;
    }
    const shift = Math.floor(elapsed);
    this.epoch += shift;
    for (const entry of this.entries) {
      entry.seenAt -= shift;
      entry.pingedAt = Math.max(entry.pingedAt - shift, NEVER);
    }
    return elapsed - shift;
  }

  /** Peers being watched. */
  get size(): number {
    return this.entries.size;
  }

  /** Peers terminated for silence since the monitor was made. */
  get reaped(): number {
    return this.reapedCount;
  }

  /** Whether the sweep timer runs: it does exactly while there are peers. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Starts watching a peer, as seen now. */
  add(entry: HeartbeatEntry): void {
    entry.active = true;
    entry.seenAt = Math.ceil(this.elapsed());
    entry.pingedAt = NEVER;
    this.entries.add(entry);
    if (this.timer === undefined) {
      this.timer = this.clock.setInterval(() => this.sweep(), this.sweepMs);
    }
  }

  /** Stops watching a peer (it closed); the timer stops with the last one. */
  remove(entry: HeartbeatEntry): void {
    this.entries.delete(entry);
    if (this.entries.size === 0) {
      this.stop();
    }
  }

  /** Stops the timer and forgets every peer. */
  stop(): void {
    if (this.timer !== undefined) {
      this.clock.clearInterval(this.timer);
      this.timer = undefined;
    }
    this.entries.clear();
  }

  /** One pass over every peer; the timer calls it every `sweepMs`. */
  sweep(): void {
    // Silences are measured to `now` rounded down and from times stored rounded up: never
    // longer than they were, so no peer is pinged or cut early.
    const elapsed = this.elapsed();
    const now = Math.floor(elapsed);
    const stamp = Math.ceil(elapsed);
    const { intervalMs, timeoutMs } = this.timing;
    for (const entry of this.entries) {
      if (entry.active) {
        entry.active = false;
        entry.seenAt = stamp;
        continue;
      }
      const silence = now - entry.seenAt;
      if (silence >= intervalMs + timeoutMs) {
        // Removed at once: the peer's close event may come later, or not at all.
        this.entries.delete(entry);
        this.reapedCount++;
        entry.heartbeatTimeout();
      } else if (silence >= intervalMs && (entry.pingedAt === NEVER || now - entry.pingedAt >= intervalMs)) {
        entry.pingedAt = stamp;
        entry.heartbeatPing();
      }
    }
    if (this.entries.size === 0) {
      this.stop();
    }
  }
}
