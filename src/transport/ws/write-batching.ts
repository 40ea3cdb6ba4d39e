import type { Writable } from 'node:stream';
import WebSocket from 'ws';

/**
 * Reply batching ("corking", as uWebSockets calls it). A client that pipelines requests
 * sends several frames in one TCP segment; `ws` parses them in one go, and each reply
 * would otherwise be its own `writev` system call. The first frame written to a socket in
 * a turn of the event loop corks it, and every socket corked during the turn is uncorked
 * in one `setImmediate`: after that turn's I/O callbacks and the promise chains they
 * started, so replies of synchronous and promise-based handlers leave together. Replies
 * that take longer (a database call, say) leave in a write of their own.
 *
 * Broadcasts cork their recipients the same way, so a member of a busy room gets the
 * pushes of all the broadcasts of one turn in one write, not one system call each.
 */
const corked = new Set<Writable>();
let flushScheduled = false;

/** Corks `stream` until the end of this turn of the event loop (once per turn). */
export function corkForThisTurn(stream: Writable): void {
  if (corked.has(stream)) {
    return;
  }
  stream.cork();
  corked.add(stream);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

/**
 * Uncorks `stream` now if this turn corked it; true when it did. For a connection about
 * to be judged a slow consumer: bytes held back by the cork are not the client's fault.
 */
export function uncorkNow(stream: Writable): boolean {
  if (!corked.delete(stream)) {
    return false;
  }
  stream.uncork();
  return true;
}

function flush(): void {
  flushScheduled = false;
  for (const stream of corked) {
    corked.delete(stream);
    // Harmless on a destroyed stream; `end()` itself uncorks first.
    stream.uncork();
  }
}

/** The TCP (or TLS) socket under a `ws` WebSocket; `ws` keeps it as `_socket`. */
export function underlyingSocket(socket: object): Writable | undefined {
  const raw = (socket as { _socket?: unknown })._socket;
  return raw !== null && typeof raw === 'object' && typeof (raw as Writable).cork === 'function' ? (raw as Writable) : undefined;
}

/**
 * Drops a `ws` connection at once, with a TCP reset where the socket is plain TCP: a
 * plain close would leave what the kernel still holds for a client that does not read
 * (megabytes) to be retried for minutes after the socket is gone.
 */
export function resetConnection(socket: WebSocket): void {
  if (socket.readyState === WebSocket.CLOSED) {
    return;
  }
  const raw = underlyingSocket(socket) as (Writable & { resetAndDestroy?: () => void }) | undefined;
  try {
    raw?.resetAndDestroy?.();
  } catch {
    // Not a TCP handle (a TLS socket, say): the plain close below does it.
  }
  socket.terminate();
}
