import { ErrorCode, isRealtimeErrorCode, type RealtimeErrorCode } from './protocol/error-codes.js';
import type { ValidationErrorDetail } from './protocol/envelope.js';

/**
 * An error a handler throws to answer the client with an error frame of a given
 * code: one of the protocol's, or the application's own (`[A-Z][A-Z0-9_]{1,63}`). Its
 * message is sent to the client as is, so it must be safe to show.
 *
 * @example throw new RealtimeError(ErrorCode.FORBIDDEN, 'not a member of this room');
 * @example throw new RealtimeError('ROOM_FULL', 'the room has 50 members already');
 */
export class RealtimeError extends Error {
  /** The error code sent in `data.code`. */
  readonly code: RealtimeErrorCode;
  /** Optional structured details sent in `data.details`. */
  readonly details?: readonly (ValidationErrorDetail | unknown)[];

  /** @throws TypeError when `code` is not an error code (`[A-Z][A-Z0-9_]{1,63}`). */
  constructor(code: RealtimeErrorCode, message: string, details?: readonly (ValidationErrorDetail | unknown)[]) {
    if (!isRealtimeErrorCode(code)) {
      throw new TypeError(
        `an error code is [A-Z][A-Z0-9_]{1,63} (such as ${ErrorCode.CONFLICT} or ROOM_FULL), got ${JSON.stringify(code)}`,
      );
    }
    super(message);
    this.name = 'RealtimeError';
    this.code = code;
    this.details = details;
  }
}

/**
 * Why a server request to a client (`RealtimeHub.request()`) failed: `TIMEOUT` (no reply in
 * time), `DISCONNECTED` (the connection closed first, or was closing), `BAD_REQUEST` (the
 * client's failure reply was malformed), or the code the client answered with.
 *
 * It is not a {@link RealtimeError}: `TIMEOUT` and `DISCONNECTED` are the client SDK's own
 * codes, so a handler that lets it escape answers its own request with `INTERNAL`. Catch
 * it and throw a `RealtimeError` of your choice to tell that client more.
 */
export class ClientReplyError extends Error {
  /** What went wrong: `TIMEOUT`, `DISCONNECTED`, or an error code (the client's own, or `BAD_REQUEST`). */
  readonly code: 'TIMEOUT' | 'DISCONNECTED' | RealtimeErrorCode;
  /** The event the server asked. */
  readonly event: string;

  constructor(code: 'TIMEOUT' | 'DISCONNECTED' | RealtimeErrorCode, message: string, event: string) {
    super(message);
    this.name = 'ClientReplyError';
    this.code = code;
    this.event = event;
  }
}
