/** Time and one repeating timer: all a {@link HeartbeatMonitor} needs, injectable so tests can drive it. */
export interface HeartbeatClock {
  /** Milliseconds, monotonic enough for measuring silences. */
  now(): number;
  /** Calls `callback` every `ms` until cleared; the timer must not keep the process alive. */
  setInterval(callback: () => void, ms: number): unknown;
  /** Stops a timer made by `setInterval`. */
  clearInterval(handle: unknown): void;
}

/** The real clock: `performance.now()` and an unref'd `setInterval`. */
export const systemClock: HeartbeatClock = {
  now: () => performance.now(),
  setInterval: (callback, ms) => setInterval(callback, ms).unref(),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};
