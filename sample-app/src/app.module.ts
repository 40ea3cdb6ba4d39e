import { type DynamicModule, Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { RealtimeModule } from '../../src/index.js';
import { DemoAuthController } from './auth.controller.js';
import type { SampleConfig } from './config.js';
import { EchoGateway } from './echo.gateway.js';
import { HealthController } from './health.controller.js';

/** The sample application: the authenticated `/echo` gateway, a demo login and `GET /health`. */
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
        }),
      ],
      controllers: [HealthController, DemoAuthController],
      providers: [EchoGateway],
    };
  }
}
