import { Inject, Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { type AsyncApiDocument, asyncApiDocument, type AsyncApiInfo } from './asyncapi-document.js';
import { ContractSchemas } from './contract-schemas.js';
import { describeGateway, type GatewayContract } from './gateway-contract.js';

/**
 * The application's realtime contract, as data: every `@RealtimeGateway` of the app, its
 * handlers (request DTOs, `@Replies`), its pushes (`@Emits`), the error frame and codes,
 * the authentication and the close codes. Serve it, write it to a file, generate clients
 * and types from it.
 *
 * @example
 * ```ts
 * const document = await app.get(RealtimeContract).asyncApi({ title: 'Chat', version: '2.1.0' });
 * ```
 */
@Injectable()
export class RealtimeContract {
  constructor(
    private readonly discovery: DiscoveryService,
    @Inject(REALTIME_MODULE_OPTIONS) private readonly options: RealtimeModuleOptions,
  ) {}

  /** The gateways of the application, sorted by path. */
  gateways(): GatewayContract[] {
    const seen = new Set<Function>();
    const gateways: GatewayContract[] = [];
    for (const wrapper of this.discovery.getProviders()) {
      const type = wrapper.metatype;
      if (typeof type !== 'function' || seen.has(type)) {
        continue;
      }
      seen.add(type);
      const gateway = describeGateway(type);
      if (gateway) {
        gateways.push(gateway);
      }
    }
    return gateways.sort((a, b) => a.path.localeCompare(b.path));
  }

  /**
   * The AsyncAPI 3.0 document of the application's realtime gateways. DTO schemas come
   * from class-validator rules (through class-validator-jsonschema, loaded now).
   * @throws an Error saying what to install when class-validator-jsonschema is missing.
   */
  async asyncApi(info: AsyncApiInfo = {}): Promise<AsyncApiDocument> {
    const schemas = await ContractSchemas.load();
    const { authenticator, auth } = this.options;
    const authentication = authenticator ? (authenticator.refresh ? 'custom-refresh' : 'custom') : auth ? 'jwt' : 'none';
    return asyncApiDocument(this.gateways(), schemas, authentication, info);
  }
}
