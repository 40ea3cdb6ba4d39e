import type { Observable, Unsubscribable } from 'rxjs';
import type { Connection } from './connection.js';

/** The observables still running for an open connection's requests. */
const running = new WeakMap<Connection, Set<Unsubscribable>>();

/**
 * Runs a handler's observable to its last value, as the reply. One still running when its
 * connection closes gets the gateway's `closeTimeoutMs` more to finish (a request's async
 * work and its interceptors' completion steps run to their end, as they would for a
 * promise), and is then unsubscribed (its teardown runs): a stream that never ends does
 * not outlive its client for long. `done` gets the last value (undefined if there was
 * none), `failed` its error.
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
  if (connection.endReason !== undefined) {
    // Its connection has closed already (an async handler on Nest's path settled late).
    stopLater(new Set([own]), connection.settings.closeTimeoutMs);
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

/** A connection closed: what it still runs is unsubscribed after its `closeTimeoutMs` (unless done by then). */
export function stopObservables(connection: Connection): void {
  const set = running.get(connection);
  if (set) {
    running.delete(connection);
    stopLater(set, connection.settings.closeTimeoutMs);
  }
}

function stopLater(subscriptions: Set<Unsubscribable>, graceMs: number): void {
  // Unsubscribing one that completed meanwhile does nothing.
  setTimeout(() => subscriptions.forEach((subscription) => subscription.unsubscribe()), graceMs).unref();
}
