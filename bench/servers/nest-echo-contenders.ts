// The Nest-based contenders of echo-contenders.ts: stock Nest WsAdapter (optionally with
// ValidationPipe) and this plugin. In a module of their own so that only the servers that
// use Nest load it.
import 'reflect-metadata';
import { Module, UsePipes, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { IsNotEmpty } from 'class-validator';
import { type JwtAlgorithm, RealtimeGateway, RealtimeModule } from '../../src/index.js';
import { EchoDto } from '../../sample-app/src/echo.dto.js';
import { BENCH_SECRET } from './bench-secret.js';
import { LOOPBACK_HANDSHAKE_RATE } from '../support/loopback.js';
import { timedJwtAuthenticator } from '../support/timed-authenticator.js';

@WebSocketGateway({ path: '/echo' })
class StockGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'echo', data };
  }
}

@WebSocketGateway({ path: '/echo' })
class StockValidatedGateway {
  @SubscribeMessage('echo')
  @UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
  echo(@MessageBody() data: EchoDto): { event: string; data: unknown } {
    return { event: 'echo', data: { message: data.message } };
  }
}

/** Stock Nest with its WsAdapter, the gateway with ValidationPipe or without; resolves with the port. */
export async function stockNest(validated: boolean): Promise<number> {
  const gateway = validated ? StockValidatedGateway : StockGateway;
  @Module({ providers: [gateway] })
  class StockModule {}
  const app = await NestFactory.create(StockModule, { logger: false });
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as { port: number }).port;
}

/** Bytes of bench/encodings: a Buffer in MessagePack, a base64 string in JSON. */
class BlobDto {
  @IsNotEmpty()
  bytes!: Buffer | string;
}

/**
 * PLUGIN_VARIANT, to tell a feature's cost from the rest's: `bare` (validation and metrics
 * off), `no-metrics` (metrics off), `public` (a public gateway: bench/handshakes.ts sends no
 * token then) or `timed-auth` (the same JWT authentication, timed in the server: see
 * support/timed-authenticator.ts); unset for the plugin as the benchmarks measure it. Any
 * other value is refused.
 */
const VARIANTS = ['bare', 'no-metrics', 'public', 'timed-auth'] as const;
const variant = process.env.PLUGIN_VARIANT || undefined;
if (variant !== undefined && !(VARIANTS as readonly string[]).includes(variant)) {
  throw new Error(`PLUGIN_VARIANT must be one of ${VARIANTS.join(', ')} (or unset), got ${JSON.stringify(variant)}`);
}

/** This plugin: authenticated, validated (EchoDto), heartbeat on; rate limits off (a benchmark floods on purpose). */
@RealtimeGateway('/echo', { public: variant === 'public' })
class PluginGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() body: EchoDto): { message: string } {
    return { message: body.message };
  }

  @SubscribeMessage('blob')
  blob(@MessageBody() body: BlobDto): { bytes: Buffer | string } {
    return { bytes: body.bytes };
  }
}

export async function plugin(): Promise<number> {
  const algorithms: JwtAlgorithm[] = ['HS256'];
  const bare = variant === 'bare';
  const noMetrics = variant === 'no-metrics';
  @Module({
    imports: [
      RealtimeModule.forRoot({
        ...(variant === 'timed-auth'
          ? { authenticator: await timedJwtAuthenticator(BENCH_SECRET, { algorithms }) }
          : { auth: { secret: BENCH_SECRET, algorithms } }),
        limits: {
          messageRate: false,
          userMessageRate: false,
          maxConnectionsPerIp: 100_000,
          maxConnections: 100_000,
          handshakeRate: LOOPBACK_HANDSHAKE_RATE,
        },
        ...(bare ? { validation: false as const, metrics: false } : {}),
        ...(noMetrics ? { metrics: false } : {}),
      }),
    ],
    providers: [PluginGateway],
  })
  class PluginModule {}
  const app = await NestFactory.create(PluginModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as { port: number }).port;
}
