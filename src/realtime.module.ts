import { Inject, Module } from '@nestjs/common';
import { ApplicationConfig, DiscoveryModule, HttpAdapterHost, ModuleRef } from '@nestjs/core';
import { RealtimeContract } from './contract/realtime-contract.js';
import { RealtimeWsAdapter } from './gateway/realtime-ws.adapter.js';
import { RealtimeHub } from './rooms/realtime-hub.js';
import { RealtimeMetrics } from './metrics/realtime-metrics.js';
import { ConfigurableModuleClass, REALTIME_MODULE_OPTIONS } from './realtime.module-definition.js';
import type { RealtimeModuleOptions } from './realtime-options.interface.js';

/**
 * The plugin's module. Importing it (`RealtimeModule.forRoot(options)` or
 * `forRootAsync({ imports, inject, useFactory })`) installs {@link RealtimeWsAdapter}
 * as the application's WebSocket adapter, unless `main.ts` set one with
 * `app.useWebSocketAdapter()`, and provides {@link RealtimeHub} (rooms, user targeting,
 * broadcast, presence) and {@link RealtimeContract} (the gateways' AsyncAPI document). It
 * is global unless `isGlobal: false` is given.
 */
@Module({
  imports: [DiscoveryModule],
  providers: [RealtimeHub, RealtimeMetrics, RealtimeContract],
  exports: [RealtimeHub, RealtimeMetrics, RealtimeContract],
})
export class RealtimeModule extends ConfigurableModuleClass {
  constructor(
    @Inject(REALTIME_MODULE_OPTIONS) options: RealtimeModuleOptions,
    config: ApplicationConfig,
    adapterHost: HttpAdapterHost,
    hub: RealtimeHub,
    metrics: RealtimeMetrics,
    moduleRef: ModuleRef,
  ) {
    super();
    if (options.metrics === false) {
      metrics.registry.clear(); // nothing is counted: no family reads as a count of zero either
    }
    // Runs while the app is being created, before gateways are connected in app.init(),
    // and before main.ts could call app.useWebSocketAdapter() (which then replaces it).
    if (!config.getIoAdapter()) {
      config.setIoAdapter(new RealtimeWsAdapter(adapterHost, options, hub, options.metrics === false ? null : metrics, moduleRef));
    }
  }
}
