import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { Observable } from 'rxjs';
import { connectionOf } from '../gateway/connection-registry.js';

/**
 * Counts a handled message as proof of life for the heartbeat of the connection that sent
 * it. The adapter already marks every inbound frame, pong and ping before any handler
 * runs, so a `@RealtimeGateway` needs no interceptor; this one is for handlers reached
 * some other way (e.g. a message replayed into a gateway method by the application).
 */
@Injectable()
export class HeartbeatInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() === 'ws') {
      connectionOf(context.switchToWs().getClient<object>())?.markAlive();
    }
    return next.handle();
  }
}
