/** Where the client reads the time and sets its timers: the system's by default, a fake one in tests. */
export interface ClientClock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Calls `callback` after `ms`; returns a handle for {@link clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer; a no-op for `undefined` or a timer that already fired. */
  clearTimeout(handle: unknown): void;
}

/** @internal The longest delay a timer keeps: browsers and Node fire a longer one at once. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/** The system clock and timers. */
export const systemClock: ClientClock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** `clock`, with the handle of each timer it sets given to `keep` too (for its owner to clear). */
export function keepingTimers(clock: ClientClock, keep: (handle: unknown) => void): ClientClock {
  return {
    now: () => clock.now(),
    setTimeout: (callback, ms) => {
      const handle = clock.setTimeout(callback, ms);
      keep(handle);
      return handle;
    },
    clearTimeout: (handle) => clock.clearTimeout(handle),
  };
}

/**
 * What `work` resolves with, or a rejection with `late()` once `ms` passed on `clock`
 * without it settling. A throw of `work` is a rejection too; the timer is cleared either way.
 */
export async function withinDeadline<T>(clock: ClientClock, work: () => T | Promise<T>, ms: number, late: () => Error): Promise<T> {
  let started: Promise<T>;
  try {
    started = Promise.resolve(work());
  } catch (error) {
    started = Promise.reject(error);
  }
  let timer: unknown;
  const timeout = new Promise<never>((_, reject) => {
    timer = clock.setTimeout(() => reject(late()), ms);
  });
  try {
    return await Promise.race([started, timeout]);
  } finally {
    clock.clearTimeout(timer);
  }
}
