// `npm run asyncapi [file]`: writes the sample app's AsyncAPI document (what
// `GET /asyncapi.json` serves) to a file, sample-app/asyncapi.json by default, without
// starting a server. Its server is localhost on the configured port.
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RealtimeContract } from '../../src/index.js';
import { AppModule } from './app.module.js';
import { loadConfig } from './config.js';
import { sampleContractInfo } from './contract.controller.js';

const file = process.argv[2] ?? fileURLToPath(new URL('../../../sample-app/asyncapi.json', import.meta.url));
const config = loadConfig();
const app = await NestFactory.create(AppModule.register(config), { logger: false });
try {
  const document = await app.get(RealtimeContract).asyncApi(sampleContractInfo(`localhost:${config.port}`, config.tls !== undefined));
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  console.log(`wrote ${file}`);
} finally {
  await app.close();
}
