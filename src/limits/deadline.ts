/** The longest delay a Node timer keeps, in ms (about 24.8 days): a longer one fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What `work` settles with, or `'timeout'` once `ms` passed first. Its timer is cleared
 * once it is decided, and unref'd unless `keepAlive` (work that never settles must not
 * keep a closing process alive; but a deadline the process must reach, during start-up
 * say, keeps it alive); a rejection of `work` after the deadline is dropped.
 */
export function untilDeadline<T>(work: Promise<T>, ms: number, keepAlive = false): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
    if (!keepAlive) {
      timer.unref();
    }
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
