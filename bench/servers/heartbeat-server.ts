// The server side of bench/heartbeat: one gateway with heartbeats, one without.
// Timing from HB_INTERVAL_MS / HB_TIMEOUT_MS. Prints {"port": N} once listening.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SubscribeMessage } from '@nestjs/websockets';
import { RealtimeGateway, RealtimeModule } from '../../src/index.js';

@RealtimeGateway('/heartbeat', { public: true })
class WithHeartbeat {
  @SubscribeMessage('work')
  work(): string {
    return 'done';
  }
}

@RealtimeGateway('/no-heartbeat', { public: true, heartbeat: false })
class WithoutHeartbeat {
  @SubscribeMessage('work')
  work(): string {
    return 'done';
  }
}

const heartbeat = { intervalMs: Number(process.env.HB_INTERVAL_MS ?? 25_000), timeoutMs: Number(process.env.HB_TIMEOUT_MS ?? 10_000) };

@Module({ imports: [RealtimeModule.forRoot({ heartbeat })], providers: [WithHeartbeat, WithoutHeartbeat] })
class BenchModule {}

const app = await NestFactory.create(BenchModule, { logger: false });
await app.listen(0, '127.0.0.1');
const address = app.getHttpServer().address() as { port: number };
process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
