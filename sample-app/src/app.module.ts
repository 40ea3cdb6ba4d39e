import { Module } from '@nestjs/common';
import { RealtimeModule } from '../../src/index.js';
import { EchoGateway } from './echo.gateway.js';
import { HealthController } from './health.controller.js';

/** The sample application: the `/echo` gateway and `GET /health`. */
@Module({
  imports: [RealtimeModule.forRoot({})],
  controllers: [HealthController],
  providers: [EchoGateway],
})
export class AppModule {}
