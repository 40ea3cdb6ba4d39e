/**
 * Codes carried in `data.code` of an error frame (`{"event": "error", ...}`).
 * Protocol v1, see docs/protocol.md §2.
 */
export const ErrorCode = {
  /** The frame is not a JSON object, has no string `event`, a bad `id`, is too deep, or is binary. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** No handler for `event` on this gateway. */
  UNKNOWN_EVENT: 'UNKNOWN_EVENT',
  /** The message body failed DTO validation; `details` lists the failures. */
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  /** Authentication failed or the token expired. */
  UNAUTHORIZED: 'UNAUTHORIZED',
  /** A guard, a claims check or a room permission denied the message. */
  FORBIDDEN: 'FORBIDDEN',
  /** The handler reported that what the message refers to does not exist. */
  NOT_FOUND: 'NOT_FOUND',
  /** The handler reported a conflict with the current state. */
  CONFLICT: 'CONFLICT',
  /** The connection or its user sent too many messages. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** A dependency (the broker) could not take the message: nothing was delivered, the client may retry. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The handler failed unexpectedly; nothing internal is disclosed. */
  INTERNAL: 'INTERNAL',
} as const;

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/**
 * The code of an error frame: one of the protocol's ({@link ErrorCode}), which keep their
 * meaning, or an application's own: upper-case letters, digits and `_`, starting with a
 * letter, 2 to 64 characters (`[A-Z][A-Z0-9_]{1,63}`, for example `ROOM_FULL`). The client
 * SDK's own codes (`TIMEOUT`, `DISCONNECTED`, `CLOSED`, `QUEUE_FULL`) are reserved.
 */
export type RealtimeErrorCode = ErrorCode | (string & Record<never, never>);

const CODE_PATTERN = /^[A-Z][A-Z0-9_]{1,63}$/;
/** The client SDK's own codes: a server code of the same name could not be told from them. */
const RESERVED: ReadonlySet<string> = new Set(['TIMEOUT', 'DISCONNECTED', 'CLOSED', 'QUEUE_FULL']);

/** Whether `value` can be the code of an error frame: a protocol code or an application's own (see {@link RealtimeErrorCode}). */
export function isRealtimeErrorCode(value: unknown): value is RealtimeErrorCode {
  return typeof value === 'string' && CODE_PATTERN.test(value) && !RESERVED.has(value);
}

/** Whether `value` is one of the protocol's error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && KNOWN_CODES.has(value);
}
