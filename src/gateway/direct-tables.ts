import type { INestApplicationContext } from '@nestjs/common';
import { ApplicationConfig, type ModuleRef } from '@nestjs/core';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { directHandlersOf } from './direct-dispatch.js';
import type { DirectHandler } from './handler-types.js';

/** Where providers are looked up: the application, a module's injector, or nothing. */
export type ProviderSource = Pick<INestApplicationContext, 'get'> | ModuleRef | object | undefined;

/**
 * The handlers of each gateway instance the adapter may call itself (see
 * `direct-dispatch.ts`), worked out at the instance's first connection: provider lookups
 * there would cost every handshake 2%.
 */
export class DirectTables {
  /** By gateway instance; null: the instance takes Nest's path (not a static singleton). */
  private readonly tables = new WeakMap<object, ReadonlyMap<string, DirectHandler> | null>();

  constructor(private readonly providers: ProviderSource) {}

  /**
   * The handlers of `gateway` the adapter may call itself; none when the application's
   * providers cannot be reached or the gateway is not a static singleton (request-scoped,
   * say), which only Nest's own path handles.
   */
  of(gateway: object): ReadonlyMap<string, DirectHandler> | undefined {
    let table = this.tables.get(gateway);
    if (table === undefined) {
      const config = findProvider(this.providers, ApplicationConfig);
      const singleton = config !== undefined && findProvider(this.providers, gateway.constructor as new () => object) === gateway;
      // The validation pipe gets the options Nest's injector would give it: the module's.
      const moduleOptions = findProvider<RealtimeModuleOptions>(this.providers, REALTIME_MODULE_OPTIONS);
      table = singleton ? directHandlersOf(gateway, config, moduleOptions) : null;
      this.tables.set(gateway, table);
    }
    return table ?? undefined;
  }
}

/** A provider of `source`, if it is an application or injector that has one. */
export function findProvider<T>(source: ProviderSource, type: (new (...args: never[]) => T) | symbol): T | undefined {
  if (!source || !('get' in source) || typeof source.get !== 'function') {
    return undefined;
  }
  try {
    return (source as Pick<INestApplicationContext, 'get'>).get(type, { strict: false });
  } catch {
    return undefined; // No RealtimeModule in this application: no rooms, no metrics.
  }
}
