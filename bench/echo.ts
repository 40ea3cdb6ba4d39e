// Scenario 1: echo throughput and latency (p50/p99/p99.9) at 1 and 16 messages
// in flight per connection, 100 connections, a ~64-byte message, for every contender in
// the same run: raw ws, ws with JSON routing (the ceiling for a JSON protocol), stock Nest
// WsAdapter, stock Nest + ValidationPipe, Socket.IO 4 (websocket only, acks) and this
// plugin with authentication, validation and heartbeat on; plus the same plugin server
// twice (an A/A check of the method's own bias). Every server is up at once, each pinned
// to core 0, and loaded one at a time: a warm-up run each, then rounds in a fresh random
// order, medians reported and ratios as medians of per-round ratios. This raw-TCP load
// generator runs on core 1 and flags runs it may have limited. Run: `npm run bench`.
import { JwtService } from '@nestjs/jwt';
import { median, pickContenders, shuffled } from './support/latency.js';
import { echoRun, type RunResult } from './support/echo-run.js';
import { type LoadConnection, maskedTextFrame } from './support/ws-load.js';
import { pinSelf, startServer } from './support/server-process.js';
import { socketIoPrepare } from './support/socket-io.js';

const CONNECTIONS = 100;
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Messages in flight per connection, one table each (BENCH_IN_FLIGHT=1 runs only the first). */
const IN_FLIGHTS = (process.env.BENCH_IN_FLIGHT ?? '1,16').split(',').map(Number);
if (IN_FLIGHTS.some((n) => !Number.isInteger(n) || n < 1)) {
  throw new Error(
    `BENCH_IN_FLIGHT must be positive integers separated by commas (1,16, say), not ${JSON.stringify(process.env.BENCH_IN_FLIGHT)}`,
  );
}
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
  // Not run by default (BENCH_CONTENDERS picks them): what metrics and validation cost.
  pluginContender('this plugin, metrics off', 'plugin-no-metrics', 'no-metrics'),
  pluginContender('this plugin, validation and metrics off', 'plugin-bare', 'bare'),
];
const DEFAULT_CONTENDERS = ['ws', 'ws-json', 'nest-ws', 'nest-ws-validation', 'socket.io', 'plugin', 'plugin-again'];

type Running = { contender: Contender; server: Awaited<ReturnType<typeof startServer>> };

/** One closed-loop run against a server that is already up: fresh connections each time. */
function run({ contender, server }: Running, inFlight: number, durationMs = RUN_MS): Promise<RunResult> {
  return echoRun(
    {
      url: `ws://127.0.0.1:${server.port}${contender.path}`,
      connections: CONNECTIONS,
      frame: maskedTextFrame(contender.frame),
      headers: contender.headers,
      prepare: contender.prepare,
      cpuSeconds: () => server.cpuSeconds(),
    },
    inFlight,
    durationMs,
  );
}

/** Why a contender's figures may understate it: its server was not the bottleneck in some run. */
function bottleneckFlag(results: readonly RunResult[]): string {
  const serverCpu = Math.min(...results.map((result) => result.cpu));
  const generatorCpu = Math.max(...results.map((result) => result.generatorCpu));
  if (serverCpu >= 0.85) {
    return '';
  }
  return generatorCpu >= 0.85
    ? `  <- server at ${Math.round(serverCpu * 100)}% CPU, generator at ${Math.round(generatorCpu * 100)}%: the generator was the bottleneck`
    : `  <- a run with the server at ${Math.round(serverCpu * 100)}% CPU`;
}

/** The plugin against another contender, as the median of per-round ratios, with the issue's target when it has one. */
function compare(plugin: readonly RunResult[], other: readonly RunResult[], label: string, target?: number): string {
  const ratio = median(plugin.map((result, round) => result.rate / other[round]!.rate));
  // Throughput per second of server CPU: what each would do on a full core.
  const capacity = median(plugin.map((result, round) => result.rate / result.cpu / (other[round]!.rate / other[round]!.cpu)));
  const verdict = target === undefined ? '' : `  (target >= ${target}x: ${ratio >= target ? 'met' : 'NOT met'})`;
  return `  plugin / ${label}: ${ratio.toFixed(2)}x throughput, ${capacity.toFixed(2)}x per server CPU-second${verdict}`;
}

/** The plugin's server CPU per message against another's, as the median of per-round ratios, with a ceiling. */
function cpuPerMessage(plugin: readonly RunResult[], other: readonly RunResult[], label: string, ceiling: number): string {
  const ratio = median(plugin.map((result, round) => result.cpu / result.rate / (other[round]!.cpu / other[round]!.rate)));
  return `  plugin / ${label}: ${ratio.toFixed(2)}x server CPU per message  (target <= ${ceiling}x: ${ratio <= ceiling ? 'met' : 'NOT met'})`;
}

pinSelf(1);
const chosen = pickContenders(contenders, DEFAULT_CONTENDERS);
// Every server is up at once (idle ones cost nothing), so that rounds can interleave them:
// runs of one round are seconds apart, and ratios within a round cancel the VM's drift.
const servers: Running[] = [];
for (const contender of chosen) {
  servers.push({
    contender,
    server: await startServer(new URL('./servers/echo-contenders.js', import.meta.url).pathname, 0, {
      CONTENDER: contender.key,
      ...contender.env,
    }),
  });
}
try {
  // A warm-up run of each server, so that the first round does not measure cold JITs.
  for (const running of servers) {
    await run(running, 16, 1000);
  }
  for (const inFlight of IN_FLIGHTS) {
    console.log(`echo, ${CONNECTIONS} connections x ${inFlight} in flight, ${ROUNDS} rounds of ${RUN_MS / 1000} s, server on core 0:`);
    const rounds = new Map<string, RunResult[]>(chosen.map((contender) => [contender.key, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const running of shuffled(servers)) {
        rounds.get(running.contender.key)!.push(await run(running, inFlight));
      }
    }
    for (const { contender } of servers) {
      const results = rounds.get(contender.key)!;
      const rate = median(results.map((r) => r.rate));
      const cpuPerMessage = median(results.map((r) => (r.cpu / r.rate) * 1e6));
      console.log(
        `  ${contender.name.padEnd(40)} ${Math.round(rate).toString().padStart(7)} msg/s  ` +
          `p50 ${median(results.map((r) => r.p50)).toFixed(2)}  p99 ${median(results.map((r) => r.p99)).toFixed(2)}  ` +
          `p99.9 ${median(results.map((r) => r.p999)).toFixed(2)} ms  ${cpuPerMessage.toFixed(1).padStart(5)} µs CPU/msg` +
          bottleneckFlag(results),
      );
    }
    const plugin = rounds.get('plugin');
    if (plugin) {
      for (const [key, label, target] of [
        ['ws-json', 'ws + JSON routing', inFlight === 16 ? 0.8 : 0.95],
        ['nest-ws-validation', 'stock Nest + ValidationPipe', inFlight === 16 ? 3 : undefined],
        ['nest-ws', 'stock Nest', undefined],
        ['socket.io', 'Socket.IO', undefined],
        ['ws', 'raw ws', undefined],
        ['plugin-again', 'itself (A/A check: 1.00x is no bias)', undefined],
        ['plugin-no-metrics', 'itself without metrics', undefined],
        ['plugin-bare', 'itself without validation and metrics', undefined],
      ] as const) {
        const other = rounds.get(key);
        if (other) {
          console.log(compare(plugin, other, label, target));
        }
      }
      const json = rounds.get('ws-json');
      if (json && inFlight === 1) {
        console.log(cpuPerMessage(plugin, json, 'ws + JSON routing', 1.05));
      }
    }
  }
} finally {
  await Promise.all(servers.map(({ server }) => server.stop()));
}
