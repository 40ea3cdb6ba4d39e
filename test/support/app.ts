import 'reflect-metadata';
import type { INestApplication, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { AddressInfo } from 'node:net';

/** A Nest application listening on a free port of 127.0.0.1. */
export interface RunningApp {
  app: INestApplication;
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
): Promise<RunningApp> {
  const moduleRef = await Test.createTestingModule(metadata).compile();
  const app = moduleRef.createNestApplication({ logger: process.env.TEST_LOGS ? undefined : false });
  configure?.(app);
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as AddressInfo;
  return {
    app,
    wsUrl: (path) => `ws://127.0.0.1:${port}${path}`,
    httpUrl: `http://127.0.0.1:${port}`,
    close: () => app.close(),
  };
}
