import type { PushFrame } from '../transport/push-frame.js';

/** What the join of one connection is owed while it catches up (see `RoomStreams.recover`). */
export interface Recovery {
  /** The room's offset when the join read history: what is at or below it comes with the replay, or not at all. */
  until: number | undefined;
  /** The epoch the join's reply named: pushes of another (the one this instance is leaving) are not this connection's. */
  epoch: string | undefined;
  /** The room stream's epoch then: when the join named a newer one, pushes of this one are not owed (see {@link owed}). */
  from: string | undefined;
  /** Sent: the replay went out, after the join's reply. */
  flushed: boolean;
  /** Newer pushes that came before the replay went out: `[offset, push, epoch]`. */
  readonly held: [number, PushFrame, string | undefined][];
  /** What a second join of the same connection waits for: this join has its answer, or is dropped (made when asked for). */
  answered?: { readonly promise: Promise<void>; readonly resolve: () => void };
}

/** A joining connection's recovery, before its join has read the room's position: everything waits. */
export function newRecovery(): Recovery {
  return { until: undefined, epoch: undefined, from: undefined, flushed: false, held: [] };
}

/** Lets a second join of the same connection go on (see `RoomStreams.answered`). */
export function markAnswered(recovery: Recovery | undefined): void {
  recovery?.answered?.resolve();
}

/** A promise that settles when the join of `recovery` has its answer, made on the first call. */
export function whenAnswered(recovery: Recovery): Promise<void> {
  if (!recovery.answered) {
    let resolve!: () => void;
    const promise = new Promise<void>((done) => (resolve = done));
    recovery.answered = { promise, resolve };
  }
  return recovery.answered.promise;
}

/** Whether a push of `epoch` belongs to the joined connection (any, when its join could name none). */
export function sameEpoch(recovery: Recovery, epoch: string | undefined): boolean {
  return recovery.epoch === undefined || recovery.epoch === epoch;
}

/**
 * Whether a push of `epoch` at `offset` is owed to a connection whose replay is out: in its
 * join's epoch, those after the replay; none of the epoch the stream was leaving (`from`,
 * when the join named a newer one); every one of any other epoch, which comes after the
 * join's (history lost again: the join's epoch is gone, and waiting for it would starve
 * the connection).
 */
export function owed(recovery: Recovery, epoch: string | undefined, offset: number): boolean {
  return sameEpoch(recovery, epoch) ? offset > recovery.until! : epoch !== recovery.from;
}

/**
 * The room's stream, at `epoch` and `offset`, has delivered all the joined connection's
 * replay covers, in the epoch its join named, or has gone past that epoch.
 */
export function caughtUp(recovery: Recovery, epoch: string | undefined, offset: number): boolean {
  return sameEpoch(recovery, epoch) ? offset >= recovery.until! : epoch !== recovery.from;
}
