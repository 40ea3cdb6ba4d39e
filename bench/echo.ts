// Scenario 1 of issue #9: echo throughput and latency (p50/p99/p99.9) at 1 and 16 messages
// in flight per connection, 100 connections, a ~64-byte message, for every contender in
// the same run: raw ws, ws with JSON routing (the ceiling for a JSON protocol), stock Nest
// WsAdapter, stock Nest + ValidationPipe, Socket.IO 4 (websocket only, acks) and this
// plugin with authentication, validation and heartbeat on. Each server runs alone, pinned
// to core 0 (all up at once, interleaved in rounds, medians reported); this raw-TCP load
// generator runs on core 1. Run: `npm run bench`.
import { JwtService } from '@nestjs/jwt';
import { closeAll, type LoadConnection, type LoopResult, maskedTextFrame, openConnections, timedLoop } from './support/ws-load.js';
import { pinSelf, startServer } from './support/server-process.js';

const CONNECTIONS = 100;
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MESSAGE = { message: 'hello from the benchmark, 64 bytes' };
const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789';

interface Contender {
  readonly name: string;
  readonly key: string;
  readonly path: string;
  readonly frame: string;
  /** Headers of connection `i`. */
  headers?(i: number): Record<string, string>;
  /** Environment of its server process (CONTENDER defaults to `key`). */
  readonly env?: Record<string, string>;
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

/** The plugin's server (CONTENDER=plugin), optionally a PLUGIN_VARIANT of it, one token per connection. */
function pluginContender(name: string, key: string, variant?: string): Contender {
  return {
    name,
    key,
    path: '/echo',
    frame: envelope,
    env: { CONTENDER: 'plugin', ...(variant ? { PLUGIN_VARIANT: variant } : {}) },
    headers: (i) => ({ authorization: `Bearer ${jwt.sign({ sub: `user${i}` }, { expiresIn: '1h' })}` }),
  };
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
  pluginContender('this plugin (auth+validation+heartbeat)', 'plugin'),
  // The same server again: an A/A check of the bench's own bias.
  pluginContender('this plugin (again, A/A check)', 'plugin-again'),
  pluginContender('this plugin, metrics off', 'plugin-no-metrics', 'no-metrics'),
  pluginContender('this plugin, validation and metrics off', 'plugin-bare', 'bare'),
];

type Running = { contender: Contender; server: Awaited<ReturnType<typeof startServer>> };

/** One closed-loop run against a server that is already up: fresh connections each time. */
async function run({ contender, server }: Running, inFlight: number): Promise<LoopResult & { cpu: number }> {
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
}

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

pinSelf(1);
const only = process.env.BENCH_CONTENDERS?.split(',');
const chosen = contenders.filter((contender) => !only || only.includes(contender.key));
// Every server is up at once (idle ones cost nothing), so that rounds can interleave them:
// runs of one round are seconds apart, and ratios within a round cancel the VM's drift.
const servers: Running[] = [];
for (const contender of chosen) {
  servers.push({ contender, server: await startServer(new URL('./servers/echo-contenders.js', import.meta.url).pathname, 0, { CONTENDER: contender.key, ...contender.env }) });
}
try {
  for (const inFlight of [1, 16]) {
    console.log(`echo, ${CONNECTIONS} connections x ${inFlight} in flight, ${ROUNDS} rounds of ${RUN_MS / 1000} s, server on core 0:`);
    const rounds = new Map<string, (LoopResult & { cpu: number })[]>(chosen.map((contender) => [contender.key, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const running of round % 2 === 0 ? servers : [...servers].reverse()) {
        rounds.get(running.contender.key)!.push(await run(running, inFlight));
      }
    }
    for (const { contender } of servers) {
      const results = rounds.get(contender.key)!;
      const cpu = Math.min(...results.map((result) => result.cpu));
      const flag = cpu < 0.85 ? '  <- a run below 85% server CPU: the generator may have been the bottleneck' : '';
      console.log(
        `  ${contender.name.padEnd(40)} ${Math.round(median(results.map((r) => r.rate))).toString().padStart(7)} msg/s  ` +
          `p50 ${median(results.map((r) => r.p50)).toFixed(2)}  p99 ${median(results.map((r) => r.p99)).toFixed(2)}  ` +
          `p99.9 ${median(results.map((r) => r.p999)).toFixed(2)} ms${flag}`,
      );
    }
    const plugin = rounds.get('plugin');
    if (plugin) {
      for (const [key, label] of [
        ['ws-json', 'ws + JSON routing'],
        ['nest-ws-validation', 'stock Nest + ValidationPipe'],
        ['nest-ws', 'stock Nest'],
        ['socket.io', 'Socket.IO'],
        ['plugin-again', 'itself (A/A)'],
        ['plugin-no-metrics', 'itself without metrics'],
        ['plugin-bare', 'itself without validation and metrics'],
      ] as const) {
        const other = rounds.get(key);
        if (other) {
          const ratios = plugin.map((result, round) => result.rate / other[round]!.rate);
          console.log(`  plugin / ${label}: ${median(ratios).toFixed(2)}x (median of per-round ratios)`);
        }
      }
    }
  }
} finally {
  await Promise.all(servers.map(({ server }) => server.stop()));
}
