import type { StreamPosition } from '../broker/broker.interface.js';
import type { Connection } from '../gateway/connection.js';
import type { Recovery } from './room-recovery.js';

/** One room's ordered stream on this instance (see `RoomStreams`). */
export interface RoomStream {
  epoch: string | undefined;
  /** The offset of the last message delivered here. */
  offset: number;
  /** A history read filling a gap is under way: newer messages wait in `held`. */
  filling: boolean;
  /** A fill that failed is tried again by this timer; newer messages wait in `held` meanwhile. */
  retry: NodeJS.Timeout | undefined;
  /** Fills that failed in a row. */
  failures: number;
  readonly held: [string, StreamPosition][];
  readonly recovering: Map<Connection, Recovery>;
}

/** A room's stream before its first message: no epoch known yet, nothing delivered. */
export function newStream(): RoomStream {
  return { epoch: undefined, offset: 0, filling: false, retry: undefined, failures: 0, held: [], recovering: new Map() };
}
