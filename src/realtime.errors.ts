import { ErrorCode } from './protocol/error-codes.js';
import type { ValidationErrorDetail } from './protocol/envelope.js';

/**
 * An error a handler throws to answer the client with an error frame of a given
 * code. Its message is sent to the client as is, so it must be safe to show.
 *
 * @example throw new RealtimeError(ErrorCode.FORBIDDEN, 'not a member of this room');
 */
export class RealtimeError extends Error {
  /** The protocol error code sent in `data.code`. */
  readonly code: ErrorCode;
  /** Optional structured details sent in `data.details`. */
  readonly details?: readonly (ValidationErrorDetail | unknown)[];

  constructor(code: ErrorCode, message: string, details?: readonly (ValidationErrorDetail | unknown)[]) {
    super(message);
    this.name = 'RealtimeError';
    this.code = code;
    this.details = details;
  }
}
