import { Controller, Get } from '@nestjs/common';
import { type BrokerHealth, RealtimeHub } from '../../src/index.js';

/** Body of `GET /health`. */
export interface HealthReport {
  /** `ok`, or `degraded` while the broker is not (local delivery still works). */
  status: 'ok' | 'degraded';
  uptimeSeconds: number;
  broker: BrokerHealth;
}

/** `GET /health`: liveness, with the state of the broker. Always 200 while the process serves. */
@Controller('health')
export class HealthController {
  private readonly startedAt = Date.now();

  constructor(private readonly hub: RealtimeHub) {}

  @Get()
  health(): HealthReport {
    const broker = this.hub.health();
    return {
      status: broker.status === 'ok' ? 'ok' : 'degraded',
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      broker,
    };
  }
}
