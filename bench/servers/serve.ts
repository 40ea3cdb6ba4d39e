// How every benchmark server starts: a Nest app on a free port of 127.0.0.1, its port
// printed as {"port": N} for the benchmark, closed on SIGTERM.
import { NestFactory } from '@nestjs/core';

/** Starts `module`, prints its port, and closes it on SIGTERM. */
export async function serveNest(module: Parameters<typeof NestFactory.create>[0]): Promise<void> {
  const app = await NestFactory.create(module, { logger: false });
  await app.listen(0, '127.0.0.1');
  const address = app.getHttpServer().address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}
