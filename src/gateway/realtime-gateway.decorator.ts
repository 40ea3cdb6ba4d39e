import { applyDecorators, Logger } from '@nestjs/common';
import { EXCEPTION_FILTERS_METADATA } from '@nestjs/common/constants.js';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { RAW_TEXT_MESSAGE, REALTIME_GATEWAY_OPTIONS } from '../realtime.constants.js';
import type { RealtimeGatewayOptions } from '../realtime-options.interface.js';
import { applyValidationPipes } from '../validation/message-validation.decorator.js';
import { CloseCode } from '../protocol/close-codes.js';
import { LogThrottle } from '../limits/log-throttle.js';
import { connectionOf } from './connection-registry.js';
import { noteConnectingGateway } from './connecting-gateways.js';
import { describeError, RealtimeExceptionFilter } from './realtime-exception.filter.js';

const exceptionFilter = new RealtimeExceptionFilter();

/**
 * Declares a WebSocket gateway served at `path` of the application's HTTP server.
 * Handlers are Nest's `@SubscribeMessage()` methods; their errors become protocol
 * error frames tied to the request id, and a `@MessageBody()` typed with a class-validator
 * DTO is validated (`VALIDATION_FAILED` with details on failure). Options override the
 * module's for this gateway.
 *
 * @example
 * ```ts
 * @RealtimeGateway('/echo')
 * export class EchoGateway {
 *   @SubscribeMessage('echo')
 *   echo(@MessageBody() body: EchoDto) { return { message: `Echo: ${body.message}` }; }
 * }
 * ```
 */
export function RealtimeGateway(path: string, options: RealtimeGatewayOptions = {}): ClassDecorator {
  if (typeof path !== 'string' || !path.startsWith('/')) {
    throw new TypeError(`@RealtimeGateway() needs a path starting with "/", got ${String(path)}`);
  }
  return applyDecorators(
    WebSocketGateway({ path, [REALTIME_GATEWAY_OPTIONS]: options }),
    (target: Function) => putFilterFirst(target),
    (target: Function) => applyValidationPipes(target, options.validation),
    (target: Function) => trackDisconnectWork(target),
    (target: Function) => noteConnections(target),
  );
}

const NOTING = Symbol('realtime:noting-connections');

/**
 * Gives the gateway a `handleConnection` (wrapping its own, if any) that notes which
 * instance is about to bind its handlers to the client, so that the adapter can call
 * them directly (see `direct-dispatch.ts`). Its own failing, at once or later (a rejected
 * promise), is logged and closes that connection with 1011; Nest would rethrow it
 * outside any handler, and the process would exit.
 */
function noteConnections(target: Function): void {
  const prototype = target.prototype as { handleConnection?: (client: object, ...rest: unknown[]) => unknown };
  const original = prototype.handleConnection;
  if ((original as { [NOTING]?: boolean } | undefined)?.[NOTING]) {
    return;
  }
  const failed = (client: object, error: unknown): void => {
    logHookFailure('handleConnection', target, error);
    connectionOf(client)?.close(CloseCode.INTERNAL_ERROR, 'internal error', 'server');
  };
  const noting = function (this: object, client: object, ...rest: unknown[]): unknown {
    noteConnectingGateway(client, this);
    let result: unknown;
    try {
      result = original?.call(this, client, ...rest);
    } catch (error) {
      failed(client, error);
      return undefined;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      return Promise.resolve(result).catch((error: unknown) => failed(client, error));
    }
    return result;
  };
  Object.defineProperty(noting, NOTING, { value: true });
  prototype.handleConnection = noting;
}

/**
 * Puts the plugin's exception filter first among the class's filters: Nest asks the last
 * ones first, so a filter of the application's own on the class (`@UseFilters()`, above or
 * below this decorator) or on a handler takes precedence, and the plugin's answers the rest.
 */
function putFilterFirst(target: Function): void {
  const own = ((Reflect.getMetadata(EXCEPTION_FILTERS_METADATA, target) as unknown[] | undefined) ?? []).filter(
    (filter) => filter !== exceptionFilter,
  );
  Reflect.defineMetadata(EXCEPTION_FILTERS_METADATA, [exceptionFilter, ...own], target);
}

const TRACKED = Symbol('realtime:tracked-disconnect');
/** A hook a client can make fail (on every connection, say) cannot flood the log: a few lines, then counts. */
const hookFailures = new LogThrottle(new Logger('RealtimeGateway'), { lines: 5, intervalMs: 10_000 });

/** Logs a failure of a gateway's hook, at {@link hookFailures}' rate per hook and gateway. */
function logHookFailure(hook: string, target: Function, error: unknown): void {
  hookFailures.log('error', `${hook} of ${target.name}`, () => `${hook} of ${target.name} failed: ${describeError(error)}`);
}

/**
 * Nest drops what `handleDisconnect` returns. Wrapped, an async one's promise is kept on
 * its connection, so that a shutdown waits for it, and its failure (a rejection, or a
 * throw, which Nest would rethrow outside any handler) is logged instead of ending the
 * process. NestJS 11 calls it with the client alone: the wrapper
 * passes the connection's `DisconnectReason` there, as NestJS 12 does.
 */
function trackDisconnectWork(target: Function): void {
  const prototype = target.prototype as { handleDisconnect?: (client: object, ...rest: unknown[]) => unknown };
  const original = prototype.handleDisconnect;
  if (typeof original !== 'function' || (original as { [TRACKED]?: boolean })[TRACKED]) {
    return;
  }
  const failed = (error: unknown): void => logHookFailure('handleDisconnect', target, error);
  const tracked = function (this: unknown, client: object, reason?: unknown, ...rest: unknown[]): unknown {
    let result: unknown;
    try {
      result = original.call(this, client, reason ?? connectionOf(client)?.endReason, ...rest);
    } catch (error) {
      failed(error);
      return undefined;
    }
    if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      // The adapter's own registry: one application's shutdown never waits on another's.
      const work = connectionOf(client)?.disconnectWork;
      const settled = Promise.resolve(result)
        .catch(failed)
        .finally(() => work?.delete(settled));
      work?.add(settled);
    }
    return result;
  };
  Object.defineProperty(tracked, TRACKED, { value: true });
  prototype.handleDisconnect = tracked;
}

/**
 * Marks the gateway's handler of raw text frames: frames whose first non-blank
 * character is not `{`. It receives the text as `@MessageBody()`; a string it returns
 * is sent back as a raw text frame. Without one, such frames get `BAD_REQUEST`.
 */
export function SubscribeRawText(): MethodDecorator {
  return SubscribeMessage(RAW_TEXT_MESSAGE);
}
