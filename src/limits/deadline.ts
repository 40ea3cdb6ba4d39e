/**
 * What `work` settles with, or `'timeout'` once `ms` passed first. Its timer is unref'd
 * (work that never settles must not keep a closing process alive) and cleared once it is
 * decided; a rejection of `work` after the deadline is dropped.
 */
export function untilDeadline<T>(work: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms).unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
