/** `call()`'s promise, with a synchronous throw (or a throw of what is not an `Error`) turned into a rejection with an `Error`. */
export function promiseOf<T>(call: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(call());
  } catch (error) {
    return Promise.reject(error instanceof Error ? error : new Error(String(error)));
  }
}
