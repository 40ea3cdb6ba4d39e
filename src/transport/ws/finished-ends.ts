import type { Writable } from 'node:stream';

/**
 * Closing a `ws` connection calls `end()` up to three times on streams that have already
 * finished: its frame parser (it ends itself at the close frame) when the client's FIN
 * arrives and again when the socket closes, and the TCP socket (already ended by `ws`
 * after the close handshake) at the client's FIN. Node ignores those calls, but first
 * builds an `ERR_STREAM_ALREADY_FINISHED` with a full stack trace and a formatted message,
 * then drops it: about a third of the server's CPU when many connections close at once
 * (a drain on shutdown, say). Each such stream gets an `end` that returns at once when
 * called with no arguments on a finished stream, and otherwise is the stream's own.
 */
export function skipEndsOnceFinished(stream: Writable | undefined): void {
  if (stream) {
    stream.end = endUnlessFinished;
  }
}

function endUnlessFinished(this: Writable, ...args: unknown[]): Writable {
  if (args.length === 0 && this.writableFinished) {
    return this;
  }
  const end = (Object.getPrototypeOf(this) as Writable).end as (this: Writable, ...args: unknown[]) => Writable;
  return end.apply(this, args);
}

/** The frame parser (a `Writable`) of a `ws` WebSocket; `ws` keeps it as `_receiver`. */
export function frameParserOf(socket: object): Writable | undefined {
  const receiver = (socket as { _receiver?: unknown })._receiver;
  return receiver !== null && typeof receiver === 'object' && typeof (receiver as Writable).end === 'function'
    ? (receiver as Writable)
    : undefined;
}
