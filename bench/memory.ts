// Scenario 3: memory per idle authenticated connection at 10,000 connections,
// RSS and V8 heap after a full GC, for raw ws, stock Nest WsAdapter, Socket.IO 4 (websocket
// transport, each client connected to the main namespace) and this plugin (JWT auth, one
// distinct token per connection, heartbeat on). One server at a time, in its own process
// pinned to core 0, started with --expose-gc, a small young generation (see boot()) and an
// IPC channel, over which it reports its memory after two full GCs, once its RSS has
// settled (support/server-process.ts): once 2,000 connections are open and idle (the
// baseline), and once 10,000 more are. Per connection = difference / 10,000: what one more
// connection costs, without the server's one-time costs. RSS read right after the GCs
// still counted memory V8's helper threads were about to give back, by an amount that
// changed from run to run (up to about 1 KB per connection for the plugin): its RSS per
// connection then differed by up to 20% between runs, its heap by 1%.
// The load generator (core 1) opens the connections over raw TCP (support/ws-load.ts), 64
// handshakes at a time, and closes them (while the next server boots) before the next
// baseline. Raw ws and the plugin, the pair the target compares, run three times (again in
// reverse order, then in order) and are compared by their medians; the RSS above the V8
// heap is shown per run. The others run once (time budget).
// Run: `npm run bench` (or, after a build, `node dist/bench/memory.js`).
import { JwtService } from '@nestjs/jwt';
import { createSecretKey } from 'node:crypto';
import { closeAll, type LoadConnection, openConnection, sleep } from './support/ws-load.js';
import { memoryOf, pinSelf, type ServerMemory, type ServerProcess, startServer } from './support/server-process.js';
import { BENCH_SECRET } from './servers/bench-secret.js';
import { socketIoPrepare } from './support/socket-io.js';
import { pickContenders } from './support/latency.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10_000);
const OUTSTANDING = 64;
const IDLE_MS = 200;
/** Connections open at the baseline (see the header). */
const BASE_CONNECTIONS = 2_000;
/** Run three times: the pair the target compares; the others once, to stay within the time budget. */
const REPEATED: ReadonlySet<string> = new Set(['ws', 'plugin']);
const REPEATS = 3;
/** The most the plugin may hold per idle connection, as a multiple of raw ws's. */
const TARGET_RATIO = { rss: 1.1, heapUsed: 1.5 } as const;
const NOISE = 0.1;
const SEMI_SPACE_MB = 1;

interface Contender {
  readonly name: string;
  readonly key: string;
  readonly path: string;
  /** Headers of connection `i`. */
  headers?(i: number): Record<string, string>;
  /** Protocol set-up after the 101; resolves when the connection is in its idle state. */
  prepare?(connection: LoadConnection): Promise<void>;
}

/** Bytes per connection of one run. */
interface PerConnection {
  readonly rss: number;
  /** The V8 heap's committed pages (used, and free between objects). */
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

// Signed before anything is measured; a KeyObject secret makes @nestjs/jwt sign in ~25 µs, not ~1 ms.
const jwt = new JwtService({ secret: createSecretKey(Buffer.from(BENCH_SECRET)) });
const tokens = Array.from({ length: BASE_CONNECTIONS + CONNECTIONS }, (_, i) => jwt.sign({ sub: `user${i}` }, { expiresIn: '1h' }));

const contenders: readonly Contender[] = [
  { name: 'raw ws (no auth)', key: 'ws', path: '/' },
  { name: 'stock Nest WsAdapter (no auth)', key: 'nest-ws', path: '/echo' },
  {
    name: 'Socket.IO 4 (websocket, namespace joined)',
    key: 'socket.io',
    path: '/socket.io/?EIO=4&transport=websocket',
    prepare: socketIoPrepare,
  },
  {
    name: 'this plugin (JWT auth, heartbeat on)',
    key: 'plugin',
    path: '/echo',
    headers: (i) => ({ authorization: `Bearer ${tokens[i]}` }),
  },
];

/**
 * Opens `count` connections (numbered from `first`, for their tokens), `OUTSTANDING`
 * handshakes at a time, each in its idle state once resolved.
 */
async function openAll(contender: Contender, port: number, count: number, first = 0): Promise<LoadConnection[]> {
  const url = `ws://127.0.0.1:${port}${contender.path}`;
  const connections: LoadConnection[] = [];
  let next = first;
  const openOne = async (i: number): Promise<LoadConnection> => {
    let prepared: Promise<void> | undefined;
    const connection = await openConnection(url, contender.headers?.(i), (opened) => {
      prepared = contender.prepare?.(opened);
    });
    await prepared;
    return connection;
  };
  const lane = async (): Promise<void> => {
    while (next < first + count) {
      connections.push(await openOne(next++));
    }
  };
  await Promise.all(Array.from({ length: OUTSTANDING }, lane));
  return connections;
}

/** Destroys every connection and waits until their sockets are closed (file descriptors freed). */
async function closeAndWait(connections: readonly LoadConnection[]): Promise<void> {
  const closed = connections.map(
    ({ socket }) => new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve()))),
  );
  closeAll(connections);
  await Promise.all(closed);
}

/**
 * A fresh server of `contender`, with --expose-gc and the IPC channel its memory is read
 * over. Its young generation is held at 1 MB semi-spaces: V8 otherwise grows it to 2 x 16 MB
 * while connections are opened, up to 3 KB "per connection" at 10,000 that no connection
 * holds, and how much of it a server has grown already at its baseline depends on how much
 * code it loaded (a Nest server starts with it grown, a raw ws server does not).
 */
function boot(contender: Contender): Promise<ServerProcess> {
  const script = new URL('./servers/echo-contenders.js', import.meta.url).pathname;
  return startServer(
    script,
    0,
    { CONTENDER: contender.key },
    { nodeFlags: ['--expose-gc', `--max-semi-space-size=${SEMI_SPACE_MB}`], ipc: true },
  );
}

/** The previous run's connections, closing. */
let closing: Promise<void> = Promise.resolve();

/** One run on a fresh server: its baseline with `BASE_CONNECTIONS` idle, `CONNECTIONS` more idle connections, its memory then. */
async function measure(contender: Contender, server: ServerProcess): Promise<PerConnection> {
  let connections: LoadConnection[] = [];
  try {
    await closing;
    connections = await openAll(contender, server.port, BASE_CONNECTIONS);
    await sleep(IDLE_MS);
    const before: ServerMemory = await memoryOf(server);
    connections.push(...(await openAll(contender, server.port, CONNECTIONS, BASE_CONNECTIONS)));
    await sleep(IDLE_MS);
    const after: ServerMemory = await memoryOf(server);
    const alive = connections.filter((connection) => !connection.socket.destroyed).length;
    if (alive !== connections.length) {
      throw new Error(`${contender.key}: ${connections.length - alive} connections were closed before the measurement`);
    }
    return {
      rss: (after.rss - before.rss) / CONNECTIONS,
      heapTotal: (after.heapTotal - before.heapTotal) / CONNECTIONS,
      heapUsed: (after.heapUsed - before.heapUsed) / CONNECTIONS,
      external: (after.external - before.external) / CONNECTIONS,
    };
  } finally {
    // The server first: its exit closes all of its sockets at once, not one 'close' at a time.
    // The generator's side closes while the next server boots; it is awaited before that one's baseline.
    await server.stop();
    closing = closeAndWait(connections);
  }
}

const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

/** The middle run's figure (the mean of the two middle ones for an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
}
const bytes = (value: number): string => Math.round(value).toLocaleString('en-US');

/** (max - min) / mean of the runs' figures. */
const spread = (values: readonly number[]): number => (Math.max(...values) - Math.min(...values)) / Math.abs(mean(values));

/** The runs' median and figures, marked when they differ by more than NOISE. */
function cell(values: readonly number[]): string {
  return `${bytes(median(values)).padStart(7)} (${values.map(bytes).join(', ')})${spread(values) > NOISE ? ' noisy' : ''}`;
}

function report(runs: ReadonlyMap<string, PerConnection[]>): void {
  console.log(`  ${'contender'.padEnd(42)} ${'RSS B/conn (runs)'.padEnd(28)} ${'heapUsed B/conn (runs)'.padEnd(28)} external B/conn`);
  for (const contender of contenders.filter((c) => runs.has(c.key))) {
    const results = runs.get(contender.key)!;
    console.log(
      `  ${contender.name.padEnd(42)} ${cell(results.map((r) => r.rss)).padEnd(28)} ${cell(results.map((r) => r.heapUsed)).padEnd(28)} ` +
        `${bytes(mean(results.map((r) => r.external)))}`,
    );
  }
  const all = [...runs.values()].filter((results) => results.length > 1);
  const widest = (metric: keyof PerConnection): string =>
    `${Math.round(Math.max(...all.map((r) => spread(r.map((x) => x[metric])))) * 100)}%`;
  if (all.length > 0) {
    console.log(
      `  noise: runs of one contender differ by up to ${widest('rss')} in RSS, ${widest('heapUsed')} in heapUsed ((max - min) / mean)`,
    );
    for (const contender of contenders.filter((c) => (runs.get(c.key)?.length ?? 0) > 1)) {
      const native = runs.get(contender.key)!.map((r) => bytes(r.rss - r.heapTotal));
      console.log(`  RSS above the V8 heap (RSS - heapTotal), ${contender.name}: ${native.join(', ')} B/conn`);
    }
  }
  const plugin = runs.get('plugin');
  const ws = runs.get('ws');
  if (plugin && ws) {
    for (const metric of ['rss', 'heapUsed'] as const) {
      const ratio = median(plugin.map((r) => r[metric])) / median(ws.map((r) => r[metric]));
      console.log(
        `  plugin / raw ws, ${metric === 'rss' ? 'RSS' : 'heapUsed'}: ${ratio.toFixed(2)}x  (target <= ${TARGET_RATIO[metric]}x: ${ratio <= TARGET_RATIO[metric] ? 'met' : 'NOT met'}; medians of runs)`,
      );
    }
  }
}

pinSelf(1);
const chosen = pickContenders(contenders);
console.log(
  `memory per idle connection, ${CONNECTIONS} connections over a baseline of ${BASE_CONNECTIONS}, after GC, one server at a time on core 0 ` +
    `(raw ws and the plugin run ${REPEATS} times, the others once; figures are medians of runs):`,
);
const runs = new Map<string, PerConnection[]>(chosen.map((contender) => [contender.key, []]));
const repeated = chosen.filter((contender) => REPEATED.has(contender.key));
// In order, then in reverse, then in order again: a drift of the host over the run does not favour one.
const plan = [...chosen, ...Array.from({ length: REPEATS - 1 }, (_, i) => (i % 2 === 0 ? [...repeated].reverse() : repeated)).flat()];
for (const contender of plan) {
  // Strictly one server at a time: a second one booting on core 0 slowed the connections'
  // opening and made RSS noisier (about ±15% instead of ±1%).
  runs.get(contender.key)!.push(await measure(contender, await boot(contender)));
}
await closing;
report(runs);
