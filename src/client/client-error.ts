import { ErrorCode, type RealtimeErrorCode } from '../protocol/error-codes.js';
import type { ErrorPayload, ValidationErrorDetail } from '../protocol/envelope.js';

/** Failures the client itself reports, besides the server's error codes. */
export const ClientErrorCode = {
  /** No reply within the request's timeout. */
  TIMEOUT: 'TIMEOUT',
  /** The connection dropped after the request was sent and before its reply. */
  DISCONNECTED: 'DISCONNECTED',
  /** The client was closed (by `close()`, or for good by the server). */
  CLOSED: 'CLOSED',
  /** The outbound queue is full while the client is not connected. */
  QUEUE_FULL: 'QUEUE_FULL',
} as const;

/** One of the {@link ClientErrorCode} values. */
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/**
 * A failed request or send: `code` is the server's error code (`VALIDATION_FAILED`, …,
 * or the application's own, such as `ROOM_FULL`) or one of the client's own
 * ({@link ClientErrorCode}), `details` the server's details.
 */
export class RealtimeClientError extends Error {
  /** What went wrong. */
  readonly code: RealtimeErrorCode | ClientErrorCode;
  /** The server's structured details, e.g. the properties that failed validation. */
  readonly details?: readonly (ValidationErrorDetail | unknown)[];

  constructor(code: RealtimeErrorCode | ClientErrorCode, message: string, details?: readonly (ValidationErrorDetail | unknown)[]) {
    super(message);
    this.name = 'RealtimeClientError';
    this.code = code;
    this.details = details;
  }
}

/** @internal Any failure as a client error (`DISCONNECTED` unless it is one already). */
export function toClientError(error: unknown): RealtimeClientError {
  return error instanceof RealtimeClientError ? error : new RealtimeClientError(ClientErrorCode.DISCONNECTED, describe(error));
}

/** @internal The message of any thrown value. */
export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * @internal The error an `error` frame's `data` stands for. One the server did not make as
 * the protocol says (no `code`: an application's own `error` event, say) is `INTERNAL`,
 * saying so, rather than an error without a code or a crash of the message listener.
 */
export function errorOfFrame(data: unknown): RealtimeClientError {
  const payload = (typeof data === 'object' && data !== null ? data : {}) as Partial<Record<keyof ErrorPayload, unknown>>;
  if (typeof payload.code !== 'string' || payload.code === '') {
    return new RealtimeClientError(
      ErrorCode.INTERNAL,
      `the server sent an error frame without a code: ${String(JSON.stringify(data))?.slice(0, 200)}`,
    );
  }
  const message = typeof payload.message === 'string' ? payload.message : payload.code;
  return new RealtimeClientError(payload.code as RealtimeErrorCode, message, Array.isArray(payload.details) ? payload.details : undefined);
}
