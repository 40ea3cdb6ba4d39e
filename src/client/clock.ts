/** Where the client reads the time and sets its timers: the system's by default, a fake one in tests. */
export interface ClientClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` after `ms`; returns a handle for {@link clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer; a no-op for `undefined` or a timer that already fired. */
  clearTimeout(handle: unknown): void;
}

/** The system clock and timers. */
export const systemClock: ClientClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
