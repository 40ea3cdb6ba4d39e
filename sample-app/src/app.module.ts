import { type DynamicModule, Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { RealtimeModule } from '../../src/index.js';
import { RedisBroker } from '../../src/redis.js';
import { ChatGateway } from './chat.gateway.js';
import { DemoAuthController } from './auth.controller.js';
import { ContractController } from './contract.controller.js';
import type { SampleConfig } from './config.js';
import { EchoGateway } from './echo.gateway.js';
import { HealthController } from './health.controller.js';
import { MetricsController } from './metrics.controller.js';

/** The sample application: the authenticated `/echo` and `/chat` gateways, a demo login and `GET /health`. */
@Module({})
export class AppModule {
  static register(config: SampleConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        JwtModule.register({ secret: config.jwtSecret, signOptions: { algorithm: 'HS256' } }),
        RealtimeModule.forRoot({
          auth: { secret: config.jwtSecret, algorithms: ['HS256'] },
          allowedOrigins: config.allowedOrigins,
          heartbeat: config.heartbeat,
          compression: config.compression,
          broker:
            config.redisUrl || config.redisCluster
              ? new RedisBroker({
                  url: config.redisUrl,
                  cluster: config.redisCluster ? { nodes: config.redisCluster } : undefined,
                  presenceTtlMs: config.presenceTtlMs,
                })
              : undefined,
        }),
      ],
      controllers: [HealthController, MetricsController, DemoAuthController, ContractController],
      providers: [EchoGateway, ChatGateway],
    };
  }
}
