import type { Observable, Unsubscribable } from 'rxjs';
import type { Connection } from './connection.js';

/** The observables still running for a connection's requests: stopped when it closes. */
const running = new WeakMap<Connection, Set<Unsubscribable>>();

/**
 * Runs a handler's observable to its last value, as the reply, for as long as the
 * connection is open: one that has not completed when the connection closes is
 * unsubscribed (its teardown runs), so a stream that never ends does not outlive its
 * client. `done` gets the last value (undefined if there was none), `failed` its error.
 */
export function lastValueWhileOpen(
  connection: Connection,
  source: Observable<unknown>,
  done: (value: unknown) => void,
  failed: (error: unknown) => void,
): void {
  let last: unknown;
  // Set once it runs on past subscribing: it may complete while subscribing, before `own` exists.
  const kept: { subscription?: Unsubscribable } = {};
  const forget = (): void => {
    const set = running.get(connection);
    if (kept.subscription && set?.delete(kept.subscription) && set.size === 0) {
      running.delete(connection);
    }
  };
  const own = source.subscribe({
    next: (value) => (last = value),
    error: (error: unknown) => {
      forget();
      failed(error);
    },
    complete: () => {
      forget();
      done(last);
    },
  });
  if (own.closed) {
    return; // completed (or failed) while subscribing
  }
  if (!connection.isOpen) {
    own.unsubscribe();
    return;
  }
  kept.subscription = own;
  let set = running.get(connection);
  if (!set) {
    set = new Set();
    running.set(connection, set);
  }
  set.add(own);
}

/** Unsubscribes the observables still running for a connection that closed. */
export function stopObservables(connection: Connection): void {
  const set = running.get(connection);
  if (set) {
    running.delete(connection);
    set.forEach((subscription) => subscription.unsubscribe());
  }
}
