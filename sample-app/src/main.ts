import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { loadConfig } from './config.js';

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const app = await NestFactory.create(AppModule.register(config));
  await app.listen(config.port, config.host);
  const logger = new Logger('SampleApp');
  // Nest's enableShutdownHooks() re-raises the signal after closing, so the process would
  // end "killed by SIGTERM"; closing here lets a drained shutdown exit with status 0.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.log(`${signal} received: closing connections and shutting down`);
      app.close().then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error(`shutdown failed: ${String(error)}`);
          process.exit(1);
        },
      );
    });
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  logger.log(
    `Realtime sample app ready: ws://${host}:${port}/echo and ws://${host}:${port}/chat  ` +
      `(health: http://${host}:${port}/health, broker: ${config.redisUrl ? 'redis' : 'memory'})`,
  );
}

bootstrap().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
