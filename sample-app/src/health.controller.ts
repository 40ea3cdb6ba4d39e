import { Controller, Get } from '@nestjs/common';

/** `GET /health`: liveness, with the state of the broker. */
@Controller('health')
export class HealthController {
  private readonly startedAt = Date.now();

  @Get()
  health(): { status: 'ok'; uptimeSeconds: number; broker: { type: string; status: string } } {
    return {
      status: 'ok',
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      broker: { type: 'memory', status: 'ok' },
    };
  }
}
