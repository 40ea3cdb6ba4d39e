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
