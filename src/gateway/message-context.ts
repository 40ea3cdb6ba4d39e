import { type ArgumentsHost, Logger } from '@nestjs/common';
import { LogThrottle } from '../limits/log-throttle.js';
import { ErrorCode, isRealtimeErrorCode, type RealtimeErrorCode } from '../protocol/error-codes.js';
import { errorFrame, type MessageId, replyFrame } from '../protocol/envelope.js';
import type { Connection } from './connection.js';

/** An application's filter failing with what is not an error code is a bug worth a warning, not one per frame. */
const badCodes = new LogThrottle(new Logger('MessageContext'), { lines: 5, intervalMs: 10_000 });

/**
 * The request being handled: its event, its id, and the one reply it is owed.
 * Reachable in an exception filter through {@link MessageContext.fromHost}, so a
 * custom filter can answer the request with an error frame of its own.
 */
export class MessageContext {
  private settled = false;
  /** When the frame arrived, for the duration metric; not read when metrics are off. */
  private readonly startedAt = this.connection.metrics ? performance.now() : 0;

  /** @internal */
  constructor(
    /** @internal */
    readonly connection: Connection,
    /** The request's event name. */
    readonly event: string,
    /** The request's id, when it had one. */
    readonly id: MessageId | undefined,
    /** Whether the handler answers with raw text frames. */
    readonly raw = false,
  ) {
    connection.requestsInFlight++;
  }

  /** The context of the message behind an `ArgumentsHost`, if it came through this plugin. */
  static fromHost(host: ArgumentsHost): MessageContext | undefined {
    const candidate: unknown = host.getArgByIndex(2);
    return candidate instanceof MessageContext ? candidate : undefined;
  }

  /** Whether the request has been answered (or, without an id, finished). */
  get isSettled(): boolean {
    return this.settled;
  }

  /**
   * Answers with a success reply. `event` defaults to the request's; without an id
   * nothing is sent unless there is data. Only the first reply or failure counts.
   */
  reply(data: unknown, event: string = this.event, explicit = false): void {
    if (this.settled) {
      return;
    }
    const silent = this.raw
      ? data === undefined || data === null
      : this.id === undefined && !explicit && (data === undefined || data === null);
    if (silent) {
      this.settled = true;
      this.measure();
      return;
    }
    let sent: boolean;
    try {
      // Encoded before anything is written: a result that cannot be is answered INTERNAL instead.
      sent = this.raw
        ? this.connection.send(typeof data === 'string' ? data : (JSON.stringify(data) ?? String(data)))
        : this.connection.sendFrame(replyFrame(event, this.id, data));
    } catch {
      this.fail(ErrorCode.INTERNAL, 'the handler result could not be serialized');
      return;
    }
    this.settled = true;
    if (sent) {
      this.connection.metrics?.replied();
    }
    this.measure();
  }

  /**
   * Answers with an error frame: a protocol code, or the application's own
   * (`[A-Z][A-Z0-9_]{1,63}`; anything else is answered as `INTERNAL`, with a warning in
   * the log). Only the first reply or failure counts.
   */
  fail(code: RealtimeErrorCode, message: string, details?: readonly unknown[]): void {
    if (this.settled) {
      return;
    }
    if (!isRealtimeErrorCode(code)) {
      const shown = JSON.stringify(code)?.slice(0, 80) ?? String(code);
      badCodes.log(
        'warn',
        'bad code',
        () => `${JSON.stringify(this.event)} failed with ${shown}, not an error code ([A-Z][A-Z0-9_]{1,63}): answered INTERNAL`,
      );
      [code, message, details] = [ErrorCode.INTERNAL, 'internal error', undefined];
    }
    this.settled = true;
    let sent: boolean;
    try {
      sent = this.connection.sendFrame(errorFrame(this.id, code, message, details));
    } catch {
      sent = this.connection.sendFrame(errorFrame(this.id, code, message)); // details the encoding cannot carry
    }
    if (sent) {
      this.connection.metrics?.error(code);
    }
    this.measure();
  }

  /** The request is answered (or finished without an answer): measured, and the connection told. */
  private measure(): void {
    this.connection.metrics?.duration(this.event, (performance.now() - this.startedAt) / 1000);
    this.connection.requestSettled();
  }
}
