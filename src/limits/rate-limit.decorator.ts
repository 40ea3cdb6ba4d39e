import { applyDecorators, type CanActivate, type ExecutionContext, Injectable, SetMetadata, UseGuards } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { connectionOf } from '../gateway/connection-registry.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { RealtimeError } from '../realtime.errors.js';
import { checkRate, type RateLimit, TokenBucket } from './token-bucket.js';

const RATE_LIMIT_METADATA = 'realtime:rate-limit';

/** Per connection and handler: the handler's bucket. */
const buckets = new WeakMap<object, Map<Function, TokenBucket>>();

/**
 * The calls already counted: a handler named with `@RateLimit` in a class named with it too
 * has the guard twice, and Nest passes both the same context. One token per call.
 */
const counted = new WeakSet<ExecutionContext>();

/**
 * Limits how often one connection may call a handler, on top of the module's overall
 * message rate. Over it, the request is answered with `RATE_LIMITED` (tied to its id) and
 * the handler does not run.
 *
 * On a gateway class it limits each of the class's handlers on its own (one bucket per
 * connection and handler); a handler's own `@RateLimit` takes precedence over the class's.
 *
 * @example
 * ```ts
 * @SubscribeMessage('send')
 * @RateLimit({ perSecond: 5, burst: 10 })
 * send(@MessageBody() body: SendDto) { ... }
 * ```
 */
export function RateLimit(rate: RateLimit): MethodDecorator & ClassDecorator {
  checkRate('@RateLimit()', rate);
  return applyDecorators(SetMetadata(RATE_LIMIT_METADATA, rate), UseGuards(RateLimitGuard));
}

/**
 * The guard behind {@link RateLimit}: one token bucket per connection and handler. It lets
 * through what it cannot count: a handler without a rate (the guard named on its own), or a
 * client that is not a realtime connection.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const handler = context.getHandler();
    const rate = this.reflector.getAllAndOverride<RateLimit | undefined>(RATE_LIMIT_METADATA, [handler, context.getClass()]);
    const client = context.switchToWs().getClient<object>();
    const connection = connectionOf(client);
    if (!rate || !connection || counted.has(context)) {
      return true;
    }
    counted.add(context);
    let perHandler = buckets.get(connection);
    if (!perHandler) {
      perHandler = new Map();
      buckets.set(connection, perHandler);
    }
    let bucket = perHandler.get(handler);
    const now = performance.now(); // monotonic: a clock set back must not stop the bucket refilling
    if (!bucket) {
      bucket = new TokenBucket(rate, now);
      perHandler.set(handler, bucket);
    }
    if (!bucket.take(now)) {
      throw new RealtimeError(ErrorCode.RATE_LIMITED, `too many "${String(context.switchToWs().getPattern())}" requests: slow down`);
    }
    return true;
  }
}
