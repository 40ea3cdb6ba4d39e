import 'reflect-metadata';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import helmet from 'helmet';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppModule } from './app.module.js';
import { loadConfig } from './config.js';

/** Connections the kernel queues before they are accepted (Node's default is 511). */
const LISTEN_BACKLOG = 4096;

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  // TLS_CERT and TLS_KEY set: https and wss on the same port, nothing else changes.
  const httpsOptions = config.tls ? { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) } : undefined;
  // LOG_FORMAT=json: one JSON object per line (level, context, message), for log pipelines.
  const logger = config.jsonLogs ? new ConsoleLogger({ json: true }) : undefined;
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config), { httpsOptions, logger });
  // Security headers (and no X-Powered-By). The demo page loads only its own script,
  // stylesheet and modules, and opens WebSockets to its own origin ('self' covers ws: and
  // wss: there). Over plain http there is nothing to upgrade to, so neither HSTS nor
  // upgrade-insecure-requests is sent.
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          'style-src': ["'self'"],
          'connect-src': ["'self'"],
          'upgrade-insecure-requests': config.tls ? [] : null,
        },
      },
      strictTransportSecurity: config.tls !== undefined,
    }),
  );
  // The demo page at `/`, and the client SDK's browser bundle it imports (`npm run build` makes it).
  app.useStaticAssets(fileURLToPath(new URL('../../../sample-app/public/', import.meta.url)));
  const sdk = new URL('../../src/client/', import.meta.url);
  app.useStaticAssets(fileURLToPath(sdk), { prefix: '/sdk/client/' });
  // A deep accept queue for reconnect storms (Linux caps it at net.core.somaxconn); Nest
  // passes the third argument on to http.Server#listen but types only two.
  const listen = app.listen.bind(app) as unknown as (port: number, host: string, backlog: number) => Promise<unknown>;
  await listen(config.port, config.host, LISTEN_BACKLOG);
  const log = new Logger('SampleApp');
  if (!existsSync(new URL('bundle.js', sdk))) {
    log.warn('the demo page needs the client bundle, which `nest build` does not make: run `npm run build`');
  }
  // Nest's enableShutdownHooks() re-raises the signal after closing, so the process would
  // end "killed by SIGTERM"; closing here lets a drained shutdown exit with status 0.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      log.log(`${signal} received: closing connections and shutting down`);
      app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          log.error(`shutdown failed: ${String(error)}`);
          process.exit(1);
        },
      );
    });
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const [ws, http] = config.tls ? ['wss', 'https'] : ['ws', 'http'];
  log.log(
    `Realtime sample app ready: ${ws}://${host}:${port}/echo and ${ws}://${host}:${port}/chat  ` +
      `(demo page: ${http}://${host}:${port}/, health: ${http}://${host}:${port}/health, ` +
      `broker: ${config.redisUrl ? 'redis' : config.redisCluster ? 'redis cluster' : 'memory'})`,
  );
}

bootstrap().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
