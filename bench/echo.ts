// Scenario 1 of issue #9: echo throughput and latency (p50/p99/p99.9) at 1 and 16 messages
// in flight per connection, 100 connections, a ~64-byte message, for every contender in
// the same run: raw ws, ws with JSON routing (the ceiling for a JSON protocol), stock Nest
// WsAdapter, stock Nest + ValidationPipe, Socket.IO 4 (websocket only, acks) and this
// plugin with authentication, validation and heartbeat on. Each server runs alone, pinned
// to core 0; this raw-TCP load generator runs on core 1. Run: `npm run bench`.
import { JwtService } from '@nestjs/jwt';
import { closeAll, type LoadConnection, type LoopResult, maskedTextFrame, openConnections, timedLoop } from './support/ws-load.js';
import { pinSelf, startServer } from './support/server-process.js';

const CONNECTIONS = 100;
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 3000);
const MESSAGE = { message: 'hello from the benchmark, 64 bytes' };
const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789';

interface Contender {
  readonly name: string;
  readonly key: string;
  readonly path: string;
  readonly frame: string;
  /** Headers of connection `i`. */
  headers?(i: number): Record<string, string>;
  /** Protocol set-up, installed before the first frame is read; resolves when it is done. */
  prepare?(connection: LoadConnection): Promise<void>;
}

const envelope = JSON.stringify({ event: 'echo', id: 1, data: MESSAGE });
const jwt = new JwtService({ secret: BENCH_SECRET });

/** Socket.IO's own handshake over the open WebSocket: engine.io open, then a namespace connect. */
function socketIoPrepare(connection: LoadConnection): Promise<void> {
  return new Promise((resolve) => {
    connection.intercept = (payload, self) => {
      const text = payload.toString();
      if (text.startsWith('0{')) {
        self.socket.write(maskedTextFrame('40'));
        return true;
      }
      if (text.startsWith('40')) {
        resolve();
        return true;
      }
      if (text === '2') {
        self.socket.write(maskedTextFrame('3'));
        return true;
      }
      return false;
    };
  });
}

const contenders: Contender[] = [
  { name: 'raw ws (plain echo)', key: 'ws', path: '/', frame: envelope },
  { name: 'ws + JSON routing', key: 'ws-json', path: '/', frame: envelope },
  { name: 'stock Nest WsAdapter', key: 'nest-ws', path: '/echo', frame: envelope },
  { name: 'stock Nest + ValidationPipe', key: 'nest-ws-validation', path: '/echo', frame: envelope },
  {
    name: 'Socket.IO 4 (websocket, acks)',
    key: 'socket.io',
    path: '/socket.io/?EIO=4&transport=websocket',
    frame: `421${JSON.stringify(['echo', MESSAGE])}`,
    prepare: socketIoPrepare,
  },
  {
    name: 'this plugin (auth+validation+heartbeat)',
    key: 'plugin',
    path: '/echo',
    frame: envelope,
    headers: (i) => ({ authorization: `Bearer ${jwt.sign({ sub: `user${i}` }, { expiresIn: '1h' })}` }),
  },
];

async function run(contender: Contender, inFlight: number): Promise<LoopResult & { cpu: number }> {
  const server = await startServer(new URL('./servers/echo-contenders.js', import.meta.url).pathname, 0, { CONTENDER: contender.key });
  try {
    const url = `ws://127.0.0.1:${server.port}${contender.path}`;
    const connections: LoadConnection[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      let prepared: Promise<void> | undefined;
      const [connection] = await openConnections(url, 1, contender.headers?.(i), (opened) => {
        prepared = contender.prepare?.(opened);
      });
      await prepared;
      connections.push(connection!);
    }
    const cpuBefore = server.cpuSeconds();
    const startedAt = performance.now();
    const result = await timedLoop(connections, maskedTextFrame(contender.frame), inFlight, RUN_MS);
    const cpu = (server.cpuSeconds() - cpuBefore) / ((performance.now() - startedAt) / 1000);
    closeAll(connections);
    return { ...result, cpu };
  } finally {
    await server.stop();
  }
}

pinSelf(1);
const only = process.env.BENCH_CONTENDERS?.split(',');
const chosen = contenders.filter((contender) => !only || only.includes(contender.key));
for (const inFlight of [1, 16]) {
  console.log(`echo, ${CONNECTIONS} connections x ${inFlight} in flight, ${RUN_MS / 1000} s each, server on core 0:`);
  const results = new Map<string, LoopResult & { cpu: number }>();
  for (const contender of chosen) {
    const result = await run(contender, inFlight);
    results.set(contender.key, result);
    const flag = result.cpu < 0.85 ? '  <- server below 85% CPU: the generator may be the bottleneck' : '';
    console.log(
      `  ${contender.name.padEnd(40)} ${Math.round(result.rate).toString().padStart(7)} msg/s  ` +
        `p50 ${result.p50.toFixed(2)}  p99 ${result.p99.toFixed(2)}  p99.9 ${result.p999.toFixed(2)} ms  ` +
        `CPU ${(result.cpu * 100).toFixed(0)}%${flag}`,
    );
  }
  const plugin = results.get('plugin');
  if (plugin) {
    for (const [key, label] of [['ws-json', 'ws + JSON routing'], ['nest-ws-validation', 'stock Nest + ValidationPipe'], ['nest-ws', 'stock Nest'], ['socket.io', 'Socket.IO']] as const) {
      const other = results.get(key);
      if (other) {
        console.log(`  plugin / ${label}: ${(plugin.rate / other.rate).toFixed(2)}x`);
      }
    }
  }
}
