import { ErrorCode } from '../protocol/error-codes.js';
import { RealtimeError } from '../realtime.errors.js';

/** Longest room name, in characters. */
export const MAX_ROOM_LENGTH = 256;

/** Room names come from clients more often than not: a bad one is their error (`BAD_REQUEST`), told plainly. */
export function checkRoom(room: unknown): asserts room is string {
  if (typeof room !== 'string' || room.length === 0 || room.length > MAX_ROOM_LENGTH) {
    throw new RealtimeError(ErrorCode.BAD_REQUEST, `a room name is a string of 1 to ${MAX_ROOM_LENGTH} characters`);
  }
}
