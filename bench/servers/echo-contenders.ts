// The echo servers of bench/echo: one contender per process, chosen by CONTENDER, each
// answering {"event":"echo","id","data":{...}} (or its own protocol's equivalent).
// Prints {"port": N} once listening. Started by the benchmark, pinned to one core.
import 'reflect-metadata';
import { Module, UsePipes, ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import { MessageBody, SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { createServer } from 'node:http';
import { Server as SocketIoServer } from 'socket.io';
import { WebSocketServer } from 'ws';
import { RealtimeGateway, RealtimeModule } from '../../src/index.js';
import { EchoDto } from '../../sample-app/src/echo.dto.js';

export const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789';

function ready(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

async function listen(server: ReturnType<typeof createServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** Raw ws: the bytes back, nothing else. */
async function rawWs(): Promise<number> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
  return listen(http);
}

/** ws with hand-written JSON routing: the honest ceiling for a JSON protocol. */
async function wsJson(): Promise<number> {
  const handlers: Record<string, (data: unknown) => unknown> = { echo: (data) => data };
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  wss.on('connection', (socket) =>
    socket.on('message', (raw) => {
      let frame: { event?: unknown; id?: unknown; data?: unknown };
      try {
        frame = JSON.parse(raw.toString()) as typeof frame;
      } catch {
        socket.send('{"event":"error","data":{"code":"BAD_REQUEST"}}');
        return;
      }
      const handler = typeof frame.event === 'string' ? handlers[frame.event] : undefined;
      socket.send(handler ? JSON.stringify({ event: frame.event, id: frame.id, data: handler(frame.data) }) : '{"event":"error"}');
    }),
  );
  return listen(http);
}

@WebSocketGateway({ path: '/echo' })
class StockGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown): { event: string; data: unknown } {
    return { event: 'echo', data };
  }
}

@WebSocketGateway({ path: '/echo' })
class StockValidatedGateway {
  @SubscribeMessage('echo')
  @UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
  echo(@MessageBody() data: EchoDto): { event: string; data: unknown } {
    return { event: 'echo', data: { message: data.message } };
  }
}

async function stockNest(gateway: Function): Promise<number> {
  @Module({ providers: [gateway as new () => object] })
  class StockModule {}
  const app = await NestFactory.create(StockModule, { logger: false });
  app.useWebSocketAdapter(new WsAdapter(app));
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as { port: number }).port;
}

/** Socket.IO 4, websocket transport only, with acks. */
async function socketIo(): Promise<number> {
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  io.on('connection', (socket) => socket.on('echo', (data: unknown, ack: (reply: unknown) => void) => ack(data)));
  return listen(http);
}

/** This plugin: authenticated, validated (EchoDto), heartbeat on; rate limits off (a benchmark floods on purpose). */
@RealtimeGateway('/echo')
class PluginGateway {
  @SubscribeMessage('echo')
  echo(@MessageBody() body: EchoDto): { message: string } {
    return { message: body.message };
  }
}

async function plugin(): Promise<number> {
  // PLUGIN_VARIANT=bare: validation and metrics off; =no-metrics: metrics off. To tell their cost from the rest's.
  const bare = process.env.PLUGIN_VARIANT === 'bare';
  const noMetrics = process.env.PLUGIN_VARIANT === 'no-metrics';
  @Module({
    imports: [
      RealtimeModule.forRoot({
        auth: { secret: BENCH_SECRET, algorithms: ['HS256'] },
        limits: { messageRate: false, userMessageRate: false, maxConnectionsPerIp: 100_000, maxConnections: 100_000 },
        ...(bare ? { validation: false as const, metrics: false } : {}),
        ...(noMetrics ? { metrics: false } : {}),
      }),
    ],
    providers: [PluginGateway],
  })
  class PluginModule {}
  const app = await NestFactory.create(PluginModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  return (app.getHttpServer().address() as { port: number }).port;
}

const contenders: Record<string, () => Promise<number>> = {
  ws: rawWs,
  'ws-json': wsJson,
  'nest-ws': () => stockNest(StockGateway),
  'nest-ws-validation': () => stockNest(StockValidatedGateway),
  'socket.io': socketIo,
  plugin,
};

const start = contenders[process.env.CONTENDER ?? ''];
if (!start) {
  throw new Error(`CONTENDER must be one of ${Object.keys(contenders).join(', ')}`);
}
ready(await start());
process.on('SIGTERM', () => process.exit(0));
