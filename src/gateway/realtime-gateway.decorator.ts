import { applyDecorators, UseFilters } from '@nestjs/common';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { RAW_TEXT_MESSAGE, REALTIME_GATEWAY_OPTIONS } from '../realtime.constants.js';
import type { RealtimeGatewayOptions } from '../realtime-options.interface.js';
import { applyValidationPipes } from '../validation/message-validation.decorator.js';
import { RealtimeExceptionFilter } from './realtime-exception.filter.js';

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
    UseFilters(exceptionFilter),
    (target: Function) => applyValidationPipes(target, options.validation),
  );
}

/**
 * Marks the gateway's handler of raw text frames: frames whose first non-blank
 * character is not `{`. It receives the text as `@MessageBody()`; a string it returns
 * is sent back as a raw text frame. Without one, such frames get `BAD_REQUEST`.
 */
export function SubscribeRawText(): MethodDecorator {
  return SubscribeMessage(RAW_TEXT_MESSAGE);
}
