import type { Observable, Unsubscribable } from 'rxjs';
import { addOne, itemsOf, type OneOrSet, removeOne } from '../broker/one-or-set.js';
import type { Connection } from './connection.js';

/** The observables still running for an open connection's requests (most have none, or one). */
const running = new WeakMap<Connection, OneOrSet<Unsubscribable>>();

/**
 * Runs a handler's observable to its last value, as the reply. One still running when its
 * connection closes gets the gateway's `closeTimeoutMs` more to finish (a request's async
 * work and its interceptors' completion steps run to their end, as they would for a
 * promise), and is then unsubscribed (its teardown runs): a stream that never ends does
 * not outlive its client for long. `done` gets the last value (undefined if there was
 * none), `failed` its error.
 */
export function runToLastValue(
  connection: Connection,
  source: Observable<unknown>,
  done: (value: unknown) => void,
  failed: (error: unknown) => void,
): void {
  let last: unknown;
  // Set once it runs on past subscribing: it may complete while subscribing, before `own` exists.
  const kept: { subscription?: Unsubscribable } = {};
  const forget = (): void => {
    if (kept.subscription) {
      removeOne(running, connection, kept.subscription);
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
    stopLater(own, connection.settings.closeTimeoutMs);
    return;
  }
  kept.subscription = own;
  addOne(running, connection, own);
}

/** A connection closed: what it still runs is unsubscribed after its `closeTimeoutMs` (unless done by then). */
export function stopObservables(connection: Connection): void {
  const held = running.get(connection);
  if (held !== undefined) {
    running.delete(connection);
    stopLater(held, connection.settings.closeTimeoutMs);
  }
}

function stopLater(held: OneOrSet<Unsubscribable>, graceMs: number): void {
  // Unsubscribing one that completed meanwhile does nothing.
  setTimeout(() => {
    for (const subscription of itemsOf(held)) {
      subscription.unsubscribe();
    }
  }, graceMs).unref();
}
