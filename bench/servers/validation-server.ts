// The server side of bench/validation: echo gateways that differ only in validation.
// Prints {"port": N} once listening. Started by the benchmark, pinned to one core.
import 'reflect-metadata';
import { Module, UseInterceptors, UsePipes, ValidationPipe } from '@nestjs/common';
import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { serveNest } from './serve.js';
import { HeartbeatInterceptor } from '../../src/heartbeat/heartbeat.interceptor.js';
import { MessageValidation, RealtimeGateway, RealtimeModule, realtimeValidationExceptionFactory } from '../../src/index.js';
import { EchoDto } from '../../sample-app/src/echo.dto.js';

@RealtimeGateway('/validated', { public: true })
class ValidatedEcho {
  @SubscribeMessage('echo')
  echo(@MessageBody() body: EchoDto): { message: string } {
    return { message: `Echo: ${body.message}` };
  }
}

@RealtimeGateway('/intercepted', { public: true })
@UseInterceptors(HeartbeatInterceptor)
class InterceptedEcho {
  @SubscribeMessage('echo')
  echo(@MessageBody() body: EchoDto): { message: string } {
    return { message: `Echo: ${body.message}` };
  }
}

@RealtimeGateway('/unvalidated', { public: true })
class UnvalidatedEcho {
  @SubscribeMessage('echo')
  @MessageValidation(false)
  echo(@MessageBody() body: EchoDto): { message: string } {
    return { message: `Echo: ${body.message}` };
  }
}

@RealtimeGateway('/nest-validation-pipe', { public: true })
class NestPipeEcho {
  @SubscribeMessage('echo')
  @UsePipes(
    new ValidationPipe({
      transform: true,
      whitelist: true,
      forbidNonWhitelisted: true,
      exceptionFactory: realtimeValidationExceptionFactory,
    }),
  )
  echo(@MessageBody() body: EchoDto): { message: string } {
    return { message: `Echo: ${body.message}` };
  }
}

// Rate limits off: the benchmark floods on purpose.
@Module({
  imports: [RealtimeModule.forRoot({ limits: { messageRate: false, userMessageRate: false } })],
  providers: [InterceptedEcho, ValidatedEcho, UnvalidatedEcho, NestPipeEcho],
})
class BenchModule {}

await serveNest(BenchModule);
