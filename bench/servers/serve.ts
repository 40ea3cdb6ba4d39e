// How every benchmark server starts: a Nest app on 127.0.0.1 (a free port unless told
// otherwise), its port printed as {"port": N} for the benchmark, closed on SIGTERM.
import { NestFactory } from '@nestjs/core';

/** Starts `module` on `port` (0: a free one), prints its port, and closes it on SIGTERM. */
export async function serveNest(module: Parameters<typeof NestFactory.create>[0], port = 0): Promise<void> {
  const app = await NestFactory.create(module, { logger: false });
  // Nest passes the arguments on to http.Server#listen(port, host, backlog), but types only two.
  const listen = app.listen.bind(app) as unknown as (port: number, host: string, backlog: number) => Promise<unknown>;
  await listen(port, '127.0.0.1', Number(process.env.LISTEN_BACKLOG ?? 511));
  const address = app.getHttpServer().address() as { port: number };
  process.stdout.write(`${JSON.stringify({ port: address.port })}\n`);
  process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
}
