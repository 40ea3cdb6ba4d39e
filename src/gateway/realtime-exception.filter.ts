import { type ArgumentsHost, Catch, HttpException, Logger, type WsExceptionFilter } from '@nestjs/common';
import { BaseWsExceptionFilter, WsException } from '@nestjs/websockets';
import { ErrorCode, isRealtimeErrorCode, type RealtimeErrorCode } from '../protocol/error-codes.js';
import { RealtimeError } from '../realtime.errors.js';
import { MessageContext } from './message-context.js';

/** Nest's guards throw `WsException` with this message when they deny access. */
const GUARD_DENIED_MESSAGE = 'Forbidden resource';
const INTERNAL_MESSAGE = 'internal error';

/** @internal The error frame an exception becomes: code, client-safe message, optional details. */
export interface MappedError {
  /** The error code: the protocol's, or the application's own. */
  code: RealtimeErrorCode;
  /** Message safe to show to the client. */
  message: string;
  /** Structured details. */
  details?: readonly unknown[];
  /** Whether the server should log it as a fault of its own. */
  unexpected: boolean;
}

const HTTP_STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  400: ErrorCode.BAD_REQUEST,
  401: ErrorCode.UNAUTHORIZED,
  403: ErrorCode.FORBIDDEN,
  404: ErrorCode.NOT_FOUND,
  409: ErrorCode.CONFLICT,
  422: ErrorCode.VALIDATION_FAILED,
  429: ErrorCode.RATE_LIMITED,
};

/**
 * @internal Maps anything a handler throws to an error frame: `RealtimeError` keeps its code,
 * `WsException` is a client fault (`BAD_REQUEST`, or `FORBIDDEN` from a guard, or the
 * `code` of its object form when it is an error code, the application's own included),
 * `HttpException` maps by status, and anything else is
 * `INTERNAL` with no internal detail disclosed.
 */
export function mapException(exception: unknown): MappedError {
  if (exception instanceof RealtimeError) {
    return { code: exception.code, message: exception.message, details: exception.details, unexpected: false };
  }
  if (exception instanceof WsException) {
    const error = exception.getError();
    if (typeof error === 'string') {
      const code = error === GUARD_DENIED_MESSAGE ? ErrorCode.FORBIDDEN : ErrorCode.BAD_REQUEST;
      return { code, message: error, unexpected: false };
    }
    if (error instanceof Error) {
      // An error passed on (`new WsException(err)`) is mapped as itself: a database's or the
      // network's (ECONNREFUSED 10.0.0.5:5432) is INTERNAL, its text kept from the client.
      return mapException(error);
    }
    const body = (error ?? {}) as { code?: unknown; message?: unknown; details?: unknown };
    return {
      code: isRealtimeErrorCode(body.code) ? (body.code as RealtimeErrorCode) : ErrorCode.BAD_REQUEST,
      message: typeof body.message === 'string' ? body.message : exception.message,
      details: Array.isArray(body.details) ? body.details : undefined,
      unexpected: false,
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status >= 500) {
      return { code: ErrorCode.INTERNAL, message: INTERNAL_MESSAGE, unexpected: true };
    }
    const response = exception.getResponse();
    const body = typeof response === 'object' && response !== null ? (response as { message?: unknown }) : {};
    // Nest's ValidationPipe puts its failures in `message` as flat strings, which are not
    // protocol details; `realtimeValidationExceptionFactory` gives that pipe real details.
    if (status === 400 && Array.isArray(body.message)) {
      return {
        code: ErrorCode.VALIDATION_FAILED,
        message: `validation failed: ${body.message.map(String).join('; ')}`,
        unexpected: false,
      };
    }
    return {
      code: HTTP_STATUS_CODES[status] ?? ErrorCode.BAD_REQUEST,
      message: typeof body.message === 'string' ? body.message : exception.message,
      unexpected: false,
    };
  }
  return { code: ErrorCode.INTERNAL, message: INTERNAL_MESSAGE, unexpected: true };
}

/**
 * The exception filter every {@link RealtimeGateway} gets: it answers the failed request
 * with an error frame tied to its id. A filter of the application's own, on a gateway or
 * handler, takes precedence; it can reply through {@link MessageContext.fromHost}.
 */
@Catch()
export class RealtimeExceptionFilter implements WsExceptionFilter {
  private readonly logger = new Logger('RealtimeExceptionFilter');
  private readonly fallback = new BaseWsExceptionFilter();

  catch(exception: unknown, host: ArgumentsHost): void {
    const context = MessageContext.fromHost(host);
    if (!context) {
      // Not a message of this plugin's adapter (another adapter is in use): keep Nest's behaviour.
      this.fallback.catch(exception, host);
      return;
    }
    failWithException(context, exception, this.logger);
  }
}

/** @internal Answers the request with the error frame `exception` maps to; logs what is the server's fault. */
export function failWithException(context: MessageContext, exception: unknown, logger: Pick<Logger, 'error'>): void {
  const mapped = mapException(exception);
  if (mapped.unexpected) {
    logger.error(`handler of "${context.event}" failed: ${describeError(exception)}`);
  }
  context.fail(mapped.code, mapped.message, mapped.details);
}

/** @internal The stack of an Error, or the value as text, for a log line. */
export function describeError(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
