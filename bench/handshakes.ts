// Scenario 2: authenticated handshakes per second, and their p50/p99 latency
// (TCP connect -> `101 Switching Protocols`), for raw ws (no auth), stock Nest WsAdapter,
// Socket.IO 4 (websocket transport; complete when its `0{...}` open packet has arrived, the
// first moment a Socket.IO client could use the connection) and this plugin with JWT auth
// (HS256, one distinct token per handshake in `Authorization: Bearer`, signed with
// @nestjs/jwt before any timed window). The load generator (support/handshake-load.ts, on
// core 1) keeps a fixed number of handshakes outstanding and destroys each socket as soon
// as it completes. Every server runs in its own process pinned to core 0, all up at once,
// in a shuffled order each round; medians of rounds, and the ratio is the median of
// per-round ratios. Server CPU is its process's time; core 0's busy time also holds the
// kernel's network work, which no process is charged for. A run makes 60,000 to 100,000
// handshakes, each from a fresh ephemeral port (it prints how many): more to one server
// than the 28,000 ports there are, which works because Linux reuses TIME_WAIT ports on
// loopback (net.ipv4.tcp_tw_reuse, 2 by default); failures would be reported.
// PLUGIN_VARIANT=public (a diagnostic, never a verdict): the plugin's gateway is public and
// its handshakes carry no token, to tell authentication's cost from the rest's.
// PLUGIN_VARIANT=timed-auth: the same JWT authentication, timed inside the plugin's server
// (support/timed-authenticator.ts), which prints the times when it stops.
// Run: `npm run bench` (or, after a build, `node dist/bench/handshakes.js`).
import { JwtService } from '@nestjs/jwt';
import { createSecretKey } from 'node:crypto';
import { type HandshakeResult, type HandshakeTarget, handshakeLoop, timeWaitSockets, twReuse } from './support/handshake-load.js';
import { median, pickContenders, shuffled } from './support/latency.js';
import { pinSelf, type ServerProcess, startServer } from './support/server-process.js';
import { BENCH_SECRET } from './servers/bench-secret.js';

const OUTSTANDING = 32;
const WINDOW_MS = Number(process.env.BENCH_RUN_MS ?? 600);
const WARM_UP_MS = 200;
/** The first, unrecorded pass over every server: its JIT warms up. */
const FIRST_PASS_MS = 600;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SERVER_CORE = 0;
const GENERATOR_CORE = 1;
const TARGET_RATIO = 0.85;
/** The diagnostic variants (see the header): a public gateway with tokenless handshakes, or authentication timed in the server. */
const PUBLIC = process.env.PLUGIN_VARIANT === 'public';
const TIMED = process.env.PLUGIN_VARIANT === 'timed-auth';

interface Contender {
  readonly name: string;
  readonly key: string;
  readonly path: string;
  readonly authenticated?: boolean;
  readonly untilFirstFrame?: boolean;
}

const contenders: readonly Contender[] = [
  { name: 'raw ws (no auth)', key: 'ws', path: '/' },
  { name: 'stock Nest WsAdapter (no auth)', key: 'nest-ws', path: '/echo' },
  {
    name: 'Socket.IO 4 (websocket, to open packet)',
    key: 'socket.io',
    path: '/socket.io/?EIO=4&transport=websocket',
    untilFirstFrame: true,
  },
  PUBLIC
    ? { name: 'this plugin (public gateway, no token)', key: 'plugin', path: '/echo' }
    : {
        name: `this plugin (JWT in Authorization${TIMED ? ', timed' : ''})`,
        key: 'plugin',
        path: '/echo',
        authenticated: true,
      },
];

/**
 * Distinct HS256 tokens, signed ahead of the runs that use them. The secret is given as a
 * KeyObject: the same key bytes, but @nestjs/jwt (jsonwebtoken) then signs in about 25 µs
 * instead of about 1 ms, which would take longer than the whole benchmark.
 */
class TokenPool {
  private readonly jwt = new JwtService({ secret: createSecretKey(Buffer.from(BENCH_SECRET)) });
  private readonly tokens: string[] = [];
  private used = 0;
  signingMs = 0;

  /** Signs until at least `count` unused tokens are ready (outside any timed window). */
  ensure(count: number): void {
    const startedAt = performance.now();
    while (this.tokens.length - this.used < count) {
      this.tokens.push(this.jwt.sign({ sub: `user${this.tokens.length}` }, { expiresIn: '1h' }));
    }
    this.signingMs += performance.now() - startedAt;
  }

  get signed(): number {
    return this.tokens.length;
  }

  /** Index of the next unused token. */
  take(): number {
    if (this.used >= this.tokens.length) {
      throw new Error('token pool exhausted: raise its margin');
    }
    return this.used++;
  }

  header(i: number): string {
    return `Authorization: Bearer ${this.tokens[i]}\r\n`;
  }
}

interface Running {
  readonly contender: Contender;
  readonly server: ServerProcess;
  readonly target: HandshakeTarget;
  readonly results: HandshakeResult[];
  /** Handshakes started against it, warm-ups included. */
  started: number;
  failed: number;
  firstError?: string;
}

const pool = new TokenPool();
let counter = 0;

/** One run: `warmUpMs` of handshakes, then a timed window of `windowMs`. Tokens are signed before it. */
async function run(running: Running, warmUpMs: number, windowMs: number, record: boolean): Promise<void> {
  const { contender, server, target } = running;
  if (contender.authenticated) {
    // Enough for the fastest rate seen so far (or a generous guess), with a margin.
    const best = Math.max(8000, ...running.results.map((result) => result.rate));
    pool.ensure(Math.ceil(best * ((warmUpMs + windowMs) / 1000 + 0.5) * 1.5));
  }
  const next = contender.authenticated ? () => pool.take() : () => counter++;
  const result = await handshakeLoop(target, () => server.cpuSeconds(), next, OUTSTANDING, windowMs, warmUpMs);
  running.started += result.started;
  running.failed += result.failed;
  running.firstError ??= result.firstError;
  if (record) {
    running.results.push(result);
  }
}

const percent = (share: number): string => `${Math.round(share * 100)}%`.padStart(4);

/**
 * Why a run's server got under 85% of a core: the generator, or (read from core 0's time)
 * the kernel's network work, which no process is charged for, or other processes.
 */
function lowCpuFlag(result: HandshakeResult): string {
  const core = result.cores[SERVER_CORE];
  const base = '  <- a run below 85% server CPU: the generator may have been the bottleneck';
  if (!core) {
    return base;
  }
  const others = core.busy - core.softirq - result.serverCpu;
  if (others > 0.1) {
    return `${base}; other processes took ${percent(others).trim()} of core ${SERVER_CORE}: rerun on a quiet machine`;
  }
  if (core.busy >= 0.95) {
    return `${base}; core ${SERVER_CORE} was ${percent(core.busy).trim()} busy, though, ${percent(core.softirq).trim()} of it kernel network work (softirq)`;
  }
  return base;
}

function report(runnings: readonly Running[]): void {
  console.log(
    `  ${''.padEnd(42)} ${'handshakes/s'.padStart(12)}  ${'p50 ms'.padStart(7)}  ${'p99 ms'.padStart(7)}  server CPU  core ${SERVER_CORE} / ${GENERATOR_CORE} busy`,
  );
  for (const { contender, results, failed, firstError } of runnings) {
    const lowest = results.reduce((low, result) => (result.serverCpu < low.serverCpu ? result : low));
    const flag = lowest.serverCpu < 0.85 ? lowCpuFlag(lowest) : '';
    const failures = failed > 0 ? `  (${failed} failed: ${firstError})` : '';
    const core = (index: number): string => percent(median(results.map((r) => r.cores[index]?.busy ?? NaN)));
    console.log(
      `  ${contender.name.padEnd(42)} ${Math.round(median(results.map((r) => r.rate)))
        .toString()
        .padStart(12)}  ` +
        `${median(results.map((r) => r.p50))
          .toFixed(2)
          .padStart(7)}  ${median(results.map((r) => r.p99))
          .toFixed(2)
          .padStart(7)}  ` +
        `${percent(median(results.map((r) => r.serverCpu)))} (min ${percent(lowest.serverCpu).trim()})  ${core(SERVER_CORE)} / ${core(GENERATOR_CORE).trim()}` +
        `${flag}${failures}`,
    );
  }
  const plugin = runnings.find((running) => running.contender.key === 'plugin')?.results;
  const ws = runnings.find((running) => running.contender.key === 'ws')?.results;
  if (plugin && ws) {
    const ratio = median(plugin.map((result, round) => result.rate / ws[round]!.rate));
    console.log(
      PUBLIC
        ? `  plugin (public gateway, no token) / raw ws: ${ratio.toFixed(2)}x  (a diagnostic: the target is for JWT handshakes; median of per-round ratios)`
        : `  plugin (JWT) / raw ws: ${ratio.toFixed(2)}x  (target >= ${TARGET_RATIO}x: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}; median of per-round ratios)`,
    );
  }
}

pinSelf(GENERATOR_CORE);
const chosen = pickContenders(contenders);
const script = new URL('./servers/echo-contenders.js', import.meta.url).pathname;
const servers = await Promise.all(chosen.map((contender) => startServer(script, SERVER_CORE, { CONTENDER: contender.key })));
const runnings: Running[] = chosen.map((contender, i) => {
  const server = servers[i]!;
  return {
    contender,
    server,
    target: {
      port: server.port,
      path: contender.path,
      untilFirstFrame: contender.untilFirstFrame,
      headers: contender.authenticated ? (index: number) => pool.header(index) : undefined,
    },
    results: [],
    started: 0,
    failed: 0,
  };
});
const timeWaitBefore = timeWaitSockets();
try {
  console.log(
    `handshakes, ${OUTSTANDING} outstanding, ${ROUNDS} rounds of ${WINDOW_MS / 1000} s (after ${WARM_UP_MS} ms of warm-up), ` +
      `server on core ${SERVER_CORE}, generator on core ${GENERATOR_CORE}:`,
  );
  for (const running of runnings) {
    await run(running, FIRST_PASS_MS, 100, false);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const running of shuffled(runnings)) {
      await run(running, WARM_UP_MS, WINDOW_MS, true);
    }
  }
  report(runnings);
  const total = runnings.reduce((sum, running) => sum + running.started, 0);
  console.log(
    `  handshakes made: ${total} (${runnings.map((r) => `${r.contender.key} ${r.started}`).join(', ')}), each from a new ` +
      `ephemeral port; TIME_WAIT sockets ${timeWaitBefore} before, ${timeWaitSockets()} after (tcp_tw_reuse=${twReuse()}); ` +
      `${pool.signed} tokens signed beforehand in ${(pool.signingMs / 1000).toFixed(1)} s`,
  );
} finally {
  await Promise.all(servers.map((server) => server.stop()));
}
