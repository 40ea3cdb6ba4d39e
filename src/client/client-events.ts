import type { RealtimeClientError } from './client-error.js';
import type { IncomingFrame } from './client-options.js';

type Listener = (data: unknown, frame: IncomingFrame) => void;

/**
 * The client's listeners: per server event, and for errors that belong to no request.
 * A listener that throws never breaks the client: its exception goes to `report`.
 */
export class ClientEvents {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly errorListeners = new Set<(error: RealtimeClientError) => void>();

  constructor(private readonly report: ((error: unknown) => void) | undefined) {}

  /** Listens to one server event; returns a function that stops listening. */
  on(event: string, listener: Listener): () => void {
    checkListener('on', listener);
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => set.delete(listener);
  }

  /** Listens to errors that belong to no request; returns a function that stops listening. */
  onError(listener: (error: RealtimeClientError) => void): () => void {
    checkListener('onError', listener);
    this.errorListeners.add(listener);
    return () => this.errorListeners.delete(listener);
  }

  /** Tells the listeners of `frame.event`. */
  dispatch(frame: IncomingFrame): void {
    for (const listener of [...(this.listeners.get(frame.event) ?? [])]) {
      this.guard(() => listener(frame.data, frame));
    }
  }

  /** Tells the error listeners. */
  error(error: RealtimeClientError): void {
    for (const listener of [...this.errorListeners]) {
      this.guard(() => listener(error));
    }
  }

  /** Runs a listener; its exception is reported (by default rethrown asynchronously, as an `EventTarget` does). */
  guard(call: () => void): void {
    try {
      call();
    } catch (error) {
      const report =
        this.report ??
        ((thrown: unknown) =>
          setTimeout(() => {
            throw thrown;
          }));
      report(error);
    }
  }
}

/**
 * @internal Throws at the call when `listener` is no function: called at the first event
 * instead, it would throw there, out of the client's reach.
 */
export function checkListener(method: string, listener: unknown): void {
  if (typeof listener !== 'function') {
    throw new TypeError(`RealtimeClient.${method}() needs a function, got ${typeof listener}`);
  }
}
