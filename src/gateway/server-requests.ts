import { ERROR_EVENT, MAX_EVENT_LENGTH } from '../protocol/envelope.js';
import { isRealtimeErrorCode } from '../protocol/error-codes.js';
import { ClientReplyError } from '../realtime.errors.js';
import { MAX_TIMER_MS } from '../limits/deadline.js';

/** Options of `RealtimeHub.request()`. */
export interface ServerRequestOptions {
  /** How long the client has to answer, in ms; then the request fails with `TIMEOUT`. Default 10 000. */
  timeoutMs?: number;
}

/** Default time a client has to answer a server request. */
export const DEFAULT_SERVER_REQUEST_TIMEOUT_MS = 10_000;
/** Longest error message kept from a client's failure reply. */
const MAX_CLIENT_MESSAGE_LENGTH = 1000;

interface Pending {
  readonly event: string;
  readonly resolve: (data: unknown) => void;
  readonly reject: (error: ClientReplyError) => void;
  readonly timer: NodeJS.Timeout;
}

/** What became of a client's reply (see {@link ServerRequests.answer}). */
export type ReplyOutcome = 'answered' | 'late' | 'unknown';

/**
 * The server's requests to one client that wait for its reply (protocol 1.2): each has a
 * `sid`, counted from 1 on its connection, in a space of its own (client ids are not
 * involved), and ends exactly once: with the client's reply, at its timeout, or when the
 * connection closes.
 */
export class ServerRequests {
  /** The last `sid` given out. */
  private last = 0;
  private readonly pending = new Map<number, Pending>();

  /**
   * Sends the request through `send` (false: the connection is closing) and waits for its
   * reply. Rejects at once with `DISCONNECTED` when it could not be sent.
   */
  ask(send: (frame: object) => boolean, event: string, data: unknown, options: ServerRequestOptions): Promise<unknown> {
    const timeoutMs = checkRequest(event, options);
    const sid = ++this.last;
    return new Promise((resolve, reject) => {
      if (!send({ event, sid, data: data ?? null })) {
        reject(new ClientReplyError('DISCONNECTED', `the connection closed before "${event}" could be sent`, event));
        return;
      }
      const timer = setTimeout(() => {
        this.pending.delete(sid);
        reject(new ClientReplyError('TIMEOUT', `the client did not answer "${event}" within ${timeoutMs} ms`, event));
      }, timeoutMs);
      timer.unref();
      this.pending.set(sid, { event, resolve, reject, timer });
    });
  }

  /**
   * A reply from the client: `replyEvent` is `error` for a failure, whose `data` is
   * `{code, message}`. `late` when the request already ended (it timed out); `unknown`
   * when no request with that `sid` was ever sent.
   */
  answer(sid: number, replyEvent: string, data: unknown): ReplyOutcome {
    const request = this.pending.get(sid);
    if (!request) {
      return sid <= this.last ? 'late' : 'unknown';
    }
    this.pending.delete(sid);
    clearTimeout(request.timer);
    if (replyEvent !== ERROR_EVENT) {
      request.resolve(data);
      return 'answered';
    }
    const failure = data as { code?: unknown; message?: unknown } | null;
    const code = failure?.code;
    const message = typeof failure?.message === 'string' ? failure.message.slice(0, MAX_CLIENT_MESSAGE_LENGTH) : '';
    request.reject(
      typeof code === 'string' && isRealtimeErrorCode(code)
        ? new ClientReplyError(code, message || `the client failed to answer "${request.event}"`, request.event)
        : new ClientReplyError('BAD_REQUEST', `the client answered "${request.event}" with a malformed error`, request.event),
    );
    return 'answered';
  }

  /** The connection closed: every request still waiting fails with `DISCONNECTED`. */
  closed(): void {
    for (const [sid, request] of this.pending) {
      this.pending.delete(sid);
      clearTimeout(request.timer);
      request.reject(
        new ClientReplyError('DISCONNECTED', `the connection closed before the client answered "${request.event}"`, request.event),
      );
    }
  }
}

/** Checks a request's event and timeout; returns the timeout. */
function checkRequest(event: string, options: ServerRequestOptions): number {
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_LENGTH || event === ERROR_EVENT) {
    throw new TypeError(
      `RealtimeHub.request(): the event must be a string of 1 to ${MAX_EVENT_LENGTH} characters other than "error", got ${JSON.stringify(event)}`,
    );
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_SERVER_REQUEST_TIMEOUT_MS;
  if (!(timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    throw new TypeError(`RealtimeHub.request(): timeoutMs must be over 0 and at most ${MAX_TIMER_MS}, got ${String(timeoutMs)}`);
  }
  return timeoutMs;
}
