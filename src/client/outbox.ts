import { ERROR_EVENT } from '../protocol/envelope.js';
import type { ClientClock } from './clock.js';
import type { PreparedFrame } from './client-codec.js';
import { ClientErrorCode, errorOfFrame, RealtimeClientError } from './client-error.js';
import { checkDelay } from './option-checks.js';

/** A frame waiting for the connection (encoded as that connection's subprotocol says), and the request it belongs to. */
interface Queued {
  readonly frame: PreparedFrame;
  readonly id?: number;
}

interface PendingRequest {
  resolve(value: unknown): void;
  reject(error: RealtimeClientError): void;
  timer: unknown;
  /** Written to a socket: lost if that socket drops. */
  sent: boolean;
}

/**
 * What the client has to send and what it waits for: the bounded queue of frames kept
 * while not connected, and the requests awaiting their one reply, each with its timeout.
 */
export class Outbox {
  private queue: Queued[] = [];
  private readonly pending = new Map<number, PendingRequest>();
  private nextId = 0;

  constructor(
    private readonly clock: ClientClock,
    private readonly maxQueue: number,
  ) {}

  /**
   * Sends a request through `write` (true: written now; false: queued, see {@link enqueue})
   * and resolves with its reply's data, or rejects: the server's error, `TIMEOUT`, or
   * whatever `write` throws.
   */
  request<T>(
    event: string,
    data: unknown,
    timeoutMs: number,
    prepare: (frame: object) => PreparedFrame,
    write: (frame: PreparedFrame, id: number) => boolean,
  ): Promise<T> {
    checkDelay('request timeoutMs', timeoutMs);
    const id = ++this.nextId;
    const frame = prepare({ event, id, data }); // data the encoding cannot carry throws here, at the call
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(id);
        this.queue = this.queue.filter((queued) => queued.id !== id); // never sent late
        reject(new RealtimeClientError(ClientErrorCode.TIMEOUT, `no reply to "${event}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const request: PendingRequest = { resolve: resolve as (value: unknown) => void, reject, timer, sent: false };
      this.pending.set(id, request);
      try {
        request.sent = write(frame, id);
      } catch (error) {
        this.clock.clearTimeout(timer);
        this.pending.delete(id);
        reject(error as RealtimeClientError);
      }
    });
  }

  /** Keeps a frame for the next connection; throws `QUEUE_FULL` rather than drop it. */
  enqueue(frame: PreparedFrame, id?: number): void {
    if (this.queue.length >= this.maxQueue) {
      throw new RealtimeClientError(ClientErrorCode.QUEUE_FULL, `${this.queue.length} messages are already waiting for the connection`);
    }
    this.queue.push(id === undefined ? { frame } : { frame, id });
  }

  /**
   * Sends every queued frame through `send`, in order, and empties the queue. A frame that
   * `send` cannot encode fails its request, or, without one, goes to `failed`.
   */
  flush(send: (frame: PreparedFrame) => void, failed: (error: unknown) => void): void {
    const queue = this.queue;
    this.queue = [];
    for (const queued of queue) {
      const id = queued.id;
      const request = id === undefined ? undefined : this.pending.get(id);
      try {
        send(queued.frame);
      } catch (error) {
        if (request) {
          this.pending.delete(id!);
          this.clock.clearTimeout(request.timer);
          request.reject(error as RealtimeClientError);
        } else {
          failed(error);
        }
        continue;
      }
      if (request) {
        request.sent = true;
      }
    }
  }

  /**
   * Settles the request a reply frame answers; false when the frame is no reply (no `id`).
   * A reply whose request timed out is dropped: nobody waits for it any more.
   */
  settle(frame: { event: string; id?: unknown; data?: unknown }): boolean {
    if (frame.id === undefined) {
      return false;
    }
    const request = typeof frame.id === 'number' ? this.pending.get(frame.id) : undefined;
    if (request) {
      this.pending.delete(frame.id as number);
      this.clock.clearTimeout(request.timer);
      if (frame.event === ERROR_EVENT) {
        request.reject(errorOfFrame(frame.data));
      } else {
        request.resolve(frame.data);
      }
    }
    return true;
  }

  /** Fails the requests already written (their connection dropped), and with `includeQueued` the queued ones too. */
  fail(error: RealtimeClientError, includeQueued: boolean): void {
    for (const [id, request] of this.pending) {
      if (request.sent || includeQueued) {
        this.pending.delete(id);
        this.clock.clearTimeout(request.timer);
        request.reject(error);
      }
    }
    if (includeQueued) {
      this.queue = [];
    }
  }
}
