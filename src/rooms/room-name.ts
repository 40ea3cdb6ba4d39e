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

/** Epochs are short strings; anything longer did not come from this plugin. */
const MAX_EPOCH_LENGTH = 64;

/** A join's room and `since` (where the client left off), checked: a bad one is the client's error (`BAD_REQUEST`). */
export function checkJoin(room: unknown, since: unknown): asserts room is string {
  checkRoom(room);
  if (since === undefined) {
    return;
  }
  const { offset, epoch } = (since ?? {}) as { offset?: unknown; epoch?: unknown };
  if (
    !Number.isSafeInteger(offset) ||
    (offset as number) < 0 ||
    typeof epoch !== 'string' ||
    epoch.length === 0 ||
    epoch.length > MAX_EPOCH_LENGTH
  ) {
    throw new RealtimeError(
      ErrorCode.BAD_REQUEST,
      `since is {offset, epoch}: an integer of at least 0 and a string of 1 to ${MAX_EPOCH_LENGTH} characters`,
    );
  }
}
