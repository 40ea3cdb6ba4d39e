import 'reflect-metadata';
import type { INestApplication, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';

/** A Nest application listening on a free port of 127.0.0.1. */
export interface RunningApp {
  app: INestApplication;
  /** The port it listens on. */
  port: number;
  /** `ws://127.0.0.1:<port><path>` */
  wsUrl(path: string): string;
  /** `http://127.0.0.1:<port>` */
  httpUrl: string;
  close(): Promise<void>;
}

/** Builds the module with `@nestjs/testing`, listens on port 0 and returns its URLs. */
export async function startApp(
  metadata: ModuleMetadata,
  configure?: (app: INestApplication) => void,
  port = 0,
  httpsOptions?: { cert: Buffer; key: Buffer },
): Promise<RunningApp> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const app = moduleRef.createNestApplication({ logger: process.env.TEST_LOGS ? undefined : false, httpsOptions });
  configure?.(app);
  await app.listen(port, '127.0.0.1');
  const address = app.getHttpServer().address() as AddressInfo;
  return {
    app,
    port: address.port,
    wsUrl: (path) => `${httpsOptions ? 'wss' : 'ws'}://127.0.0.1:${address.port}${path}`,
    httpUrl: `${httpsOptions ? 'https' : 'http'}://127.0.0.1:${address.port}`,
    close: () => app.close(),
  };
}
