// The echo servers of bench/echo: one contender per process, chosen by CONTENDER, each
// answering {"event":"echo","id","data":{...}} (or its own protocol's equivalent).
// Prints {"port": N} once listening. Started by the benchmark, pinned to one core.
// Also the servers of bench/handshakes and bench/memory, and (ws-heartbeat) the raw `ws`
// baseline of bench/heartbeat and bench/connections. Started with an IPC channel
// (bench/memory), a server answers memory queries after a full GC. The Nest-based
// contenders (nest-echo-contenders.ts) and Socket.IO are loaded only when chosen, so that
// a raw ws server starts in a fraction of a second rather than after Nest has loaded.
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { answerBenchQueries } from '../support/server-process.js';
import { BENCH_SECRET } from './bench-secret.js';

export { BENCH_SECRET };

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

/**
 * Raw ws with the heartbeat of `ws`'s README: every `HB_INTERVAL_MS` (25 s unless set),
 * terminate a client that did not answer the last ping, ping the rest; a pong or a message
 * marks a client alive.
 */
async function wsHeartbeat(): Promise<number> {
  const intervalMs = Number(process.env.HB_INTERVAL_MS ?? 25_000);
  const alive = new WeakSet<WebSocket>();
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  function markAlive(this: WebSocket): void {
    alive.add(this);
  }
  wss.on('connection', (socket) => {
    alive.add(socket);
    socket.on('pong', markAlive);
    socket.on('message', markAlive);
  });
  setInterval(() => {
    for (const socket of wss.clients) {
      if (alive.delete(socket)) {
        socket.ping();
      } else {
        socket.terminate();
      }
    }
  }, intervalMs);
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

/** Socket.IO 4, websocket transport only, with acks. */
async function socketIo(): Promise<number> {
  const { Server: SocketIoServer } = await import('socket.io');
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  io.on('connection', (socket) => socket.on('echo', (data: unknown, ack: (reply: unknown) => void) => ack(data)));
  return listen(http);
}

const contenders: Record<string, () => Promise<number>> = {
  ws: rawWs,
  'ws-json': wsJson,
  'ws-heartbeat': wsHeartbeat,
  'nest-ws': async () => (await import('./nest-echo-contenders.js')).stockNest(false),
  'nest-ws-validation': async () => (await import('./nest-echo-contenders.js')).stockNest(true),
  'socket.io': socketIo,
  plugin: async () => (await import('./nest-echo-contenders.js')).plugin(),
};

const start = contenders[process.env.CONTENDER ?? ''];
if (!start) {
  throw new Error(`CONTENDER must be one of ${Object.keys(contenders).join(', ')}`);
}
answerBenchQueries();
ready(await start());
process.on('SIGTERM', () => process.exit(0));
