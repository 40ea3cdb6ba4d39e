import type { ClientClock } from '../../src/client/clock.js';
import type { HeartbeatClock } from '../../src/heartbeat/heartbeat-clock.js';

/** A clock for unit tests (the heartbeat's, the client's): time moves only when the test advances it. */
export class FakeClock implements HeartbeatClock, ClientClock {
  private time = 0;
  private nextHandle = 1;
  /** Repeating timers have `ms`; one-shot timers (`setTimeout`) have none and go once fired. */
  private readonly intervals = new Map<number, { callback: () => void; ms?: number; due: number }>();

  constructor(start = 0) {
    this.time = start;
  }

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

  setTimeout(callback: () => void, ms: number): unknown {
    const handle = this.nextHandle++;
    this.intervals.set(handle, { callback, due: this.time + Math.max(0, ms) });
    return handle;
  }

  clearTimeout(handle: unknown): void {
    this.intervals.delete(handle as number);
  }

  /** Timers currently set. */
  get timers(): number {
    return this.intervals.size;
  }

  /** How long until each timer set fires, soonest first. */
  get dueIn(): number[] {
    return [...this.intervals.values()].map((timer) => timer.due - this.time).sort((a, b) => a - b);
  }

  /** How long until the next timer fires; undefined when none is set. */
  get nextDueIn(): number | undefined {
    let next: number | undefined;
    for (const timer of this.intervals.values()) {
      next = next === undefined ? timer.due : Math.min(next, timer.due);
    }
    return next === undefined ? undefined : next - this.time;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: [number, { callback: () => void; ms?: number; due: number }] | undefined;
      for (const entry of this.intervals) {
        if (entry[1].due <= end && (!next || entry[1].due < next[1].due)) {
          next = entry;
        }
      }
      if (!next) {
        break;
      }
      const [handle, timer] = next;
      this.time = timer.due;
      if (timer.ms === undefined) {
        this.intervals.delete(handle);
      } else {
        timer.due += timer.ms;
      }
      timer.callback();
    }
    this.time = end;
  }
}
