import { checkListener } from './client-events.js';
import { ClientErrorCode, RealtimeClientError } from './client-error.js';

/**
 * The client's connection state:
 * - `closed`: not connected and not trying (before `connect()`, after `disconnect()`, or
 *   after a close that ends it for good);
 * - `connecting`: an attempt is under way (token, WebSocket handshake, `onReconnect`);
 * - `open`: connected, the reconnect hook has run and the queue has been sent;
 * - `reconnecting`: waiting out the backoff delay before the next attempt.
 */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/**
 * Why the state changed:
 * - `connect`: `connect()` was called (the constructor calls it unless `autoConnect: false`);
 * - `opened`: the connection opened and is ready;
 * - `retry`: the backoff delay is over, a new attempt starts;
 * - `connection-lost`: the connection closed or could not be made, and the client will retry;
 * - `disconnect`: `disconnect()` was called;
 * - `server-closed`: the server closed for good (1000, 1008, 1009, 4003), or the token
 *   expired (4001) with no provider to get another;
 * - `gave-up`: `maxReconnectAttempts` failed attempts in a row, or a WebSocket that cannot
 *   be opened with the fixed token (its constructor refuses it) at all.
 */
export type StateReason = 'connect' | 'opened' | 'retry' | 'connection-lost' | 'disconnect' | 'server-closed' | 'gave-up';

/** What a state change listener receives. */
export interface StateChange {
  /** The new state. */
  readonly state: ConnectionState;
  /** The state before. */
  readonly previous: ConnectionState;
  /** Why it changed. */
  readonly reason: StateReason;
  /** The close that caused it, when one did. */
  readonly close?: { readonly code: number; readonly reason: string };
  /** When `reconnecting`: the delay before the next attempt, in ms. */
  readonly retryInMs?: number;
}

/** Every allowed change: from a state, the reasons that lead to each next state. */
const TRANSITIONS: { readonly [From in ConnectionState]: { readonly [To in ConnectionState]?: readonly StateReason[] } } = {
  closed: { connecting: ['connect'] },
  connecting: { open: ['opened'], reconnecting: ['connection-lost'], closed: ['disconnect', 'server-closed', 'gave-up'] },
  open: { reconnecting: ['connection-lost'], closed: ['disconnect', 'server-closed', 'gave-up'] },
  reconnecting: { connecting: ['retry'], closed: ['disconnect', 'gave-up'] },
};

/** Holds the state and tells listeners of each change; a change outside {@link TRANSITIONS} is a bug and throws. */
export class ClientStateMachine {
  private current: ConnectionState = 'closed';
  private readonly listeners = new Set<(change: StateChange) => void>();

  constructor(private readonly report: (call: () => void) => void) {}

  /** The current state. */
  get state(): ConnectionState {
    return this.current;
  }

  /** Listens to state changes; returns a function that stops listening. */
  listen(listener: (change: StateChange) => void): () => void {
    checkListener('onState', listener);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Moves to `state` for `reason`, and tells every listener. */
  move(state: ConnectionState, reason: StateReason, close?: { code: number; reason: string }, retryInMs?: number): void {
    const previous = this.current;
    if (!TRANSITIONS[previous][state]?.includes(reason)) {
      throw new Error(`RealtimeClient: no transition from ${previous} to ${state} for ${reason}`);
    }
    this.current = state;
    const change: StateChange = { state, previous, reason, ...(close ? { close } : {}), ...(retryInMs !== undefined ? { retryInMs } : {}) };
    for (const listener of [...this.listeners]) {
      this.report(() => listener(change));
    }
  }

  /**
   * Resolves once the state is `open`; rejects if it becomes `closed` first, or is `closed`
   * now and not `aboutToConnect`.
   */
  whenOpen(aboutToConnect: boolean): Promise<void> {
    if (this.current === 'open') {
      return Promise.resolve();
    }
    if (this.current === 'closed' && !aboutToConnect) {
      return Promise.reject(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client is closed: call connect()'));
    }
    return new Promise((resolve, reject) => {
      const stop = this.listen(({ state }) => {
        if (state === 'open') {
          stop();
          resolve();
        } else if (state === 'closed') {
          stop();
          reject(new RealtimeClientError(ClientErrorCode.CLOSED, 'the client closed before it opened'));
        }
      });
    });
  }
}
