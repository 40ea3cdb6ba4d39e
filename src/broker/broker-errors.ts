/**
 * The broker could not take a message: it is unreachable or stalled and its bounded queue
 * is full, it answered with an error, or it is closing. Nothing of the message was sent to
 * other instances; the publisher may retry. Its `code` is the protocol's `UNAVAILABLE`.
 */
export class BrokerUnavailableError extends Error {
  /** The protocol error code a client gets for it. */
  readonly code = 'UNAVAILABLE';

  constructor(message: string) {
    super(message);
    this.name = 'BrokerUnavailableError';
  }
}

/**
 * A broker command got no answer within its deadline: the broker is stalled (stopped,
 * overloaded, or the network dropped without closing the connection). Brokers made with
 * {@link BrokerResilience} raise it from their own deadline, so it is recognised by type.
 */
export class BrokerTimeoutError extends Error {
  constructor(
    /** The command that timed out (`publish`, `presence`, `health check`…). */
    readonly command: string,
    /** The deadline it missed, in ms. */
    readonly timeoutMs: number,
  ) {
    super(`${command} timed out after ${timeoutMs} ms`);
    this.name = 'BrokerTimeoutError';
  }
}

/** @internal An error's message, or the thrown value as text, for a log line or a health detail. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
