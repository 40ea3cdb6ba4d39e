import type { StreamPosition } from '../broker/broker.interface.js';

/** Options of {@link RealtimeHub.emitToRoom}. */
export interface EmitToRoomOptions {
  /** A client (the `ws` socket) that should not receive it, typically the sender. */
  except?: object;
}

/** Options of {@link RealtimeHub.join}. */
export interface JoinOptions {
  /**
   * Where the client left off (the last `offset` it got of the room, and the room's
   * `epoch`): the messages after it are delivered right after the join's reply, in order,
   * before any newer message, when history still has all of them.
   */
  since?: StreamPosition;
}

/**
 * Where a room stands for a client that joined it: its latest `offset` and its history's
 * `epoch` (what the client passes as `since` when it comes back). With `since`,
 * `recovered` says whether the missed messages come: when false, the client should reload
 * the room's state from the application.
 */
export interface RoomPosition {
  /** The offset of the room's latest message (0 when none yet). */
  readonly offset: number;
  /** The room history's epoch. */
  readonly epoch: string;
  /** Only when the join had `since`: whether every message after it follows. */
  readonly recovered?: boolean;
}
