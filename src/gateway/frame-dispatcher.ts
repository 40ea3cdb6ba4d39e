import { Logger } from '@nestjs/common';
import { isObservable } from 'rxjs';
import type { TokenLifetime } from '../auth/token-lifetime.js';
import { ErrorCode } from '../protocol/error-codes.js';
import {
  AUTH_EVENT,
  binaryRequestIdOf,
  parseBinaryFrame,
  parseFrame,
  PING_EVENT,
  PONG_EVENT,
  PROTOCOL_V1_MSGPACK,
  replyFrame,
  requestIdOf,
} from '../protocol/envelope.js';
import { RAW_TEXT_MESSAGE } from '../realtime.constants.js';
import type { Connection } from './connection.js';
import { LogThrottle, type LogThrottleSettings } from '../limits/log-throttle.js';
import type { FramePolicy } from './frame-policy.js';
import type { BoundHandler } from './handler-types.js';
import { MessageContext } from './message-context.js';
import { runToLastValue } from './observable-replies.js';
import { failWithException } from './realtime-exception.filter.js';

/** Metrics label of raw-text frames. */
const RAW_METRIC_LABEL = '(raw)';
/** Metrics label of the client's replies to server requests. */
const REPLY_METRIC_LABEL = '(reply)';

/**
 * One inbound frame, from the socket to its one reply: the frame policy (rate, invalid
 * frames), parsing, the reserved events (`ping`, `auth`), the handler (called directly
 * when it may be, else through Nest's pipeline), and settling its result, whether a
 * value, a promise or an observable.
 */
export class FrameDispatcher {
  /**
   * Where handler failures are logged, at a bounded rate (a client able to make a handler
   * throw cannot flood the log): a direct handler's under the exception filter's name, as
   * the filter would log it; one that escaped Nest's filters under the adapter's.
   */
  private readonly directFailures: Pick<Logger, 'error'>;
  private readonly failures: Pick<Logger, 'error'>;

  constructor(
    private readonly policy: FramePolicy,
    private readonly tokens: TokenLifetime,
    log: LogThrottle,
    throttle: LogThrottleSettings,
  ) {
    const filterLog = new LogThrottle(new Logger('RealtimeExceptionFilter'), throttle);
    this.directFailures = { error: (message: string) => filterLog.log('error', 'handler failed', () => message) };
    this.failures = { error: (message: string) => log.log('error', 'handler failed', () => message) };
  }

  /** Handles one frame of `connection` (the socket's `'message'`). */
  onFrame(connection: Connection, data: Buffer, isBinary: boolean): void {
    if (!connection.isOpen) {
      // Closing (by the server or the client): discarded at the socket, not dispatched,
      // counted, answered or logged. The close handshake or its timeout ends the socket.
      return;
    }
    connection.markAlive();
    if (!this.policy.withinRate(connection)) {
      connection.metrics?.messageIn(undefined);
      // Only the id is read: exactly one reply per id holds under a flood too, and the
      // invalid-frame budget bounds how many frames are read that far.
      const id = requestIdIn(data, isBinary);
      this.policy.refuse(connection, id, ErrorCode.RATE_LIMITED, 'too many messages: slow down', 'rate limit exceeded');
      return;
    }
    if (isBinary !== connection.binary) {
      connection.metrics?.messageIn(undefined);
      const message = isBinary
        ? `binary frames are only accepted with the ${PROTOCOL_V1_MSGPACK} subprotocol`
        : `this connection speaks MessagePack (${PROTOCOL_V1_MSGPACK}): frames must be binary`;
      this.policy.refuse(connection, requestIdIn(data, isBinary), ErrorCode.BAD_REQUEST, message);
      return;
    }
    const { maxDepth } = connection.settings;
    const parsed = isBinary ? parseBinaryFrame(data, maxDepth) : parseFrame(data.toString(), maxDepth);
    if (parsed.kind === 'invalid') {
      connection.metrics?.messageIn(undefined);
      this.policy.refuse(connection, parsed.id, ErrorCode.BAD_REQUEST, parsed.message);
      return;
    }
    if (parsed.kind === 'raw') {
      connection.metrics?.messageIn(RAW_METRIC_LABEL);
      if (connection.rawHandler) {
        this.dispatch(new MessageContext(connection, RAW_TEXT_MESSAGE, undefined, true), connection.rawHandler, parsed.text);
      } else {
        this.policy.refuse(connection, undefined, ErrorCode.BAD_REQUEST, 'frame must be a JSON object');
      }
      return;
    }
    const { event, id, sid, data: payload } = parsed.frame;
    if (sid !== undefined) {
      this.onReply(connection, sid, event, payload);
      return;
    }
    const handler = connection.handlerFor(event);
    connection.metrics?.messageIn(handler || event === PING_EVENT || event === AUTH_EVENT ? event : undefined);
    if (event === PING_EVENT) {
      connection.sendFrame(replyFrame(PONG_EVENT, id, { t: Date.now() }));
      return;
    }
    if (event === AUTH_EVENT) {
      this.tokens.refresh(connection, id, payload);
      return;
    }
    if (!handler) {
      this.policy.refuse(connection, id, ErrorCode.UNKNOWN_EVENT, `no handler for event "${event}"`);
      return;
    }
    this.dispatch(new MessageContext(connection, event, id), handler, payload);
  }

  /**
   * The client's reply to a server request. One to a request that already ended (it timed
   * out) is discarded, as the protocol says; one to a request never sent is refused.
   */
  private onReply(connection: Connection, sid: number, event: string, data: unknown): void {
    connection.metrics?.messageIn(REPLY_METRIC_LABEL);
    const outcome = connection.asked?.answer(sid, event, data) ?? 'unknown';
    if (outcome === 'unknown') {
      this.policy.refuse(connection, undefined, ErrorCode.BAD_REQUEST, `no request with "sid" ${sid} was sent to this client`);
    }
  }

  private dispatch(context: MessageContext, handler: BoundHandler, payload: unknown): void {
    const direct = context.raw ? undefined : context.connection.direct?.get(context.event);
    // Errors of a direct handler are answered (and logged) as the gateway's filter would;
    // on Nest's path, an error that gets here escaped the filters (one rethrew, say).
    const logger = direct ? this.directFailures : this.failures;
    let result: unknown;
    try {
      result = direct ? direct(context.connection.socket, payload) : handler(payload, context);
    } catch (error) {
      failWithException(context, error, logger);
      return;
    }
    this.settle(context, result, logger);
  }

  /** Sends the handler's result once it is known: a value, a promise or an observable. */
  private settle(context: MessageContext, result: unknown, logger: Pick<Logger, 'error'>): void {
    if (context.isSettled) {
      return;
    }
    if (isObservable(result)) {
      runToLastValue(
        context.connection,
        result,
        (value) => this.settle(context, value, logger),
        (error: unknown) => failWithException(context, error, logger),
      );
      return;
    }
    if (isThenable(result)) {
      result.then(
        (value) => this.settle(context, value, logger),
        (error: unknown) => failWithException(context, error, logger),
      );
      return;
    }
    if (isWsResponse(result)) {
      context.reply(result.data, result.event, true);
      return;
    }
    context.reply(result);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}

/** A Nest `WsResponse`: exactly `{event, data}` with a string event. */
function isWsResponse(value: unknown): value is { event: string; data: unknown } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return false;
  }
  const keys = Object.keys(value);
  return typeof (value as { event?: unknown }).event === 'string' && keys.length === 2 && keys.includes('event') && keys.includes('data');
}

/** The request id of a frame refused unparsed, read in the frame's own encoding (whatever its connection's), so that the request it names gets its answer. */
function requestIdIn(data: Buffer, isBinary: boolean): string | number | undefined {
  return isBinary ? binaryRequestIdOf(data) : requestIdOf(data.toString());
}
