// `npm run asyncapi`: writes the sample app's AsyncAPI document (what `GET /asyncapi.json`
// serves) to sample-app/asyncapi.json, and the TypeScript types of its gateways' contracts
// (for `RealtimeClient<ChatContract>`) to sample-app/contract.ts, without starting a
// server. The document's server is localhost on the configured port.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { asyncApiTypes, RealtimeContract } from '../../src/index.js';
import { AppModule } from './app.module.js';
import { loadConfig } from './config.js';
import { sampleContractInfo } from './contract.controller.js';

const file = (name: string): string => fileURLToPath(new URL(`../../../sample-app/${name}`, import.meta.url));
const config = loadConfig();
const app = await NestFactory.create(AppModule.register(config), { logger: false });
try {
  const document = await app.get(RealtimeContract).asyncApi(sampleContractInfo(`localhost:${config.port}`, config.tls !== undefined));
  writeFileSync(file('asyncapi.json'), `${JSON.stringify(document, null, 2)}\n`);
  writeFileSync(file('contract.ts'), asyncApiTypes(document));
  console.log(`wrote ${file('asyncapi.json')} and ${file('contract.ts')}`);
} finally {
  await app.close();
}
