import type { PushFrame } from '../transport/push-frame.js';

/** What the join of one connection is owed while it catches up (see `RoomStreams.recover`). */
export interface Recovery {
  /** The room's offset when the join read history: what is at or below it comes with the replay, or not at all. */
  until: number | undefined;
  /** The epoch the join's reply named: pushes of another (the one this instance is leaving) are not this connection's. */
  epoch: string | undefined;
  /** Sent: the replay went out, after the join's reply. */
  flushed: boolean;
  /** Newer pushes that came before the replay went out: `[offset, push, epoch]`. */
  readonly held: [number, PushFrame, string | undefined][];
  /** What a second join of the same connection waits for: this join has its answer, or is dropped (made when asked for). */
  answered?: { readonly promise: Promise<void>; readonly resolve: () => void };
}

/** A joining connection's recovery, before its join has read the room's position: everything waits. */
export function newRecovery(): Recovery {
  return { until: undefined, epoch: undefined, flushed: false, held: [] };
}

/** Lets a second join of the same connection go on (see `RoomStreams.answered`). */
export function answered(recovery: Recovery | undefined): void {
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
