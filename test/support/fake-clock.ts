import type { HeartbeatClock } from '../../src/heartbeat/heartbeat-clock.js';

/** A clock for heartbeat unit tests: time moves only when the test advances it. */
export class FakeClock implements HeartbeatClock {
  private time = 0;
  private nextHandle = 1;
  private readonly intervals = new Map<number, { callback: () => void; ms: number; due: number }>();

  now(): number {
    return this.time;
  }

  setInterval(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.intervals.set(handle, { callback, ms, due: this.time + ms });
    return handle;
  }

  clearInterval(handle: unknown): void {
    this.intervals.delete(handle as number);
  }

  /** Timers currently set. */
  get timers(): number {
    return this.intervals.size;
  }

  /** Moves time forward by `ms`, firing every interval that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: { callback: () => void; ms: number; due: number } | undefined;
      for (const interval of this.intervals.values()) {
        if (interval.due <= end && (!next || interval.due < next.due)) {
          next = interval;
        }
      }
      if (!next) {
        break;
      }
      this.time = next.due;
      next.due += next.ms;
      next.callback();
    }
    this.time = end;
  }
}
