/**
 * WebSocket close codes the server uses, and what a client should do on each.
 * Protocol v1, see docs/protocol.md §5.
 */
export const CloseCode = {
  /** Normal closure: stop. */
  NORMAL: 1000,
  /** Server going away (shutdown, drain): reconnect with backoff. */
  GOING_AWAY: 1001,
  /** Policy violation (invalid-frame flood, rate abuse): stop and report. */
  POLICY_VIOLATION: 1008,
  /** Message over `maxPayload`: stop and report. */
  MESSAGE_TOO_BIG: 1009,
  /** Internal error: reconnect with backoff. */
  INTERNAL_ERROR: 1011,
  /** Service restart: reconnect with backoff. */
  SERVICE_RESTART: 1012,
  /** Try again later (overload): reconnect with a longer backoff. */
  TRY_AGAIN_LATER: 1013,
  /** Token expired: refresh the token, then reconnect. */
  TOKEN_EXPIRED: 4001,
  /** Forbidden (kicked, token revoked): stop. */
  FORBIDDEN: 4003,
  /** Slow consumer (outbound buffer over its limit): reconnect with backoff. */
  SLOW_CONSUMER: 4008,
} as const;

/** One of the {@link CloseCode} values. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];
