// The server side of bench/heartbeat: one gateway with heartbeats, one without.
// Timing from HB_INTERVAL_MS / HB_TIMEOUT_MS. Prints {"port": N} once listening.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { SubscribeMessage } from '@nestjs/websockets';
import { serveNest } from './serve.js';
import { RealtimeGateway, RealtimeModule } from '../../src/index.js';
import { LOOPBACK_HANDSHAKE_RATE } from '../support/loopback.js';

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

// 10,000 connections from one address: the per-address limit (500 by default) raised.
@Module({
  imports: [
    RealtimeModule.forRoot({
      heartbeat,
      limits: { maxConnectionsPerIp: 100_000, maxConnections: 100_000, handshakeRate: LOOPBACK_HANDSHAKE_RATE },
    }),
  ],
  providers: [WithHeartbeat, WithoutHeartbeat],
})
class BenchModule {}

await serveNest(BenchModule);
