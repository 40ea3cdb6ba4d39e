import { ERROR_EVENT, MAX_EVENT_LENGTH } from '../protocol/envelope.js';
import { isRealtimeErrorCode } from '../protocol/error-codes.js';
import type { IncomingFrame } from './client-options.js';
import { describe } from './client-error.js';

/**
 * Answers one event of the server's requests: its result (or its promise's) is the reply's
 * `data`; a throw or a rejection is sent back as an error, with the error's `code` when it
 * is an error code (`[A-Z][A-Z0-9_]{1,63}`, as a `RealtimeClientError`'s), else `INTERNAL`.
 */
export type ServerRequestHandler<T = unknown> = (data: T, frame: IncomingFrame<T>) => unknown;

/**
 * The client's handlers of server requests (protocol 1.2: `{event, sid, data}`), one per
 * event. Every request gets exactly one reply, on the connection it came on: a request for
 * an event without a handler is answered `UNKNOWN_EVENT`. A reply whose connection closed
 * meanwhile is not sent (the server has failed the request with `DISCONNECTED`).
 */
export class RequestHandlers {
  private readonly handlers = new Map<string, ServerRequestHandler>();

  /** Sets the handler of `event`, replacing any; returns a function that removes it. */
  set(event: string, handler: ServerRequestHandler): () => void {
    if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_LENGTH || event === ERROR_EVENT) {
      throw new TypeError(
        `RealtimeClient.handle(): the event must be a string of 1 to ${MAX_EVENT_LENGTH} characters other than "error", got ${JSON.stringify(event)}`,
      );
    }
    if (typeof handler !== 'function') {
      throw new TypeError(`RealtimeClient.handle(): the handler of "${event}" must be a function`);
    }
    this.handlers.set(event, handler);
    return () => {
      if (this.handlers.get(event) === handler) {
        this.handlers.delete(event);
      }
    };
  }

  /**
   * Answers a server request (a frame with a `sid`). `send` sends the reply if the
   * connection the request came on is still open.
   */
  answer(frame: IncomingFrame, send: (frame: object) => unknown): void {
    const { event, sid } = frame;
    const fail = (code: string, message: string): void => {
      send({ event: ERROR_EVENT, sid, data: { code, message } });
    };
    const handler = this.handlers.get(event);
    if (!handler) {
      fail('UNKNOWN_EVENT', `no handler for server request "${event}"`);
      return;
    }
    const failWith = (error: unknown): void => {
      const code = (error as { code?: unknown } | null)?.code;
      fail(typeof code === 'string' && isRealtimeErrorCode(code) ? code : 'INTERNAL', describe(error));
    };
    try {
      Promise.resolve(handler(frame.data, frame)).then((data) => {
        try {
          send({ event, sid, data: data ?? null });
        } catch (error) {
          failWith(error); // a result the encoding cannot carry (a cycle, a BigInt)
        }
      }, failWith);
    } catch (error) {
      failWith(error);
    }
  }
}
