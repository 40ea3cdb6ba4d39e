import { Controller, Get, Header } from '@nestjs/common';
import { RealtimeMetrics } from '../../src/index.js';

/** `GET /metrics`: the plugin's metrics in Prometheus text format. */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: RealtimeMetrics) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
