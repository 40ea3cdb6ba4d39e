// 19,000 idle authenticated connections in one server process: the time to accept them,
// RSS and heap per connection, the server's CPU while they idle with heartbeats at the
// default intervals, and the time a SIGTERM takes to drain them all.
//
// The server is the sample app (bench/servers/sample-instance.ts: JWT auth, heartbeat
// every 25 s with a 10 s timeout, room history, metrics, every default limit), in its own
// process pinned to core 0, with V8's default heap sizes (the garbage collection that
// heartbeats cause is part of their cost, as in production). The load
// generator (this process, core 1) opens raw TCP connections to `/echo`, each with its
// own token in `Authorization`, 64 handshakes at a time. A process may hold 20,000 open
// files here and every loopback address pair has about 28,000 ephemeral ports, so the
// clients come from 100 source addresses (127.0.0.2 to 127.0.0.101): 190 per address, under
// the per-address defaults (500 connections, bursts of 200 handshakes). Clients answer
// pings with pongs and close frames with close frames, as browsers do.
//
// Steps: the server's idle CPU and memory before any connection; the accept phase; an idle
// window (BENCH_IDLE_MS, default 60 s: more than two heartbeat intervals); memory after two
// full GCs; then SIGTERM, timed until the process has exited and until the last client
// socket has closed. Then the baseline: the same connections idle on a raw `ws` server
// with the heartbeat of `ws`'s README at the same 25 s interval, over the same window. CPU
// windows start 30 s after the work before them: once allocation stops, V8's memory reducer
// runs up to three full GCs about 8 s apart to shrink the heap (100–200 ms of CPU each at
// 19,000 connections), a one-off after the connections opened, not the cost of keeping
// them. The full and young-generation GCs inside each window are printed. The memory is
// read after the idle window, since its forced GCs start the memory reducer again. Targets:
// heartbeat CPU (all of the server's CPU while the connections idle) <= 2% of a core,
// drain <= 5 s.
// Run: `npm run bench:fleet` (or, after a build, `node dist/bench/connections.js`).
import { JwtService } from '@nestjs/jwt';
import { createSecretKey } from 'node:crypto';
import { BENCH_SECRET } from './servers/bench-secret.js';
import { gcOf, memoryOf, pinSelf, type ServerGc, startServer, type ServerProcess } from './support/server-process.js';
import { closeAll, maskedCloseFrame, openConnection, type LoadConnection, sleep } from './support/ws-load.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 19_000);
const ADDRESSES = 100;
const OUTSTANDING = 64;
const IDLE_MS = Number(process.env.BENCH_IDLE_MS ?? 60_000);
const BASELINE_MS = 10_000;
const SETTLE_MS = 30_000;
const HEARTBEAT_CPU_TARGET = 0.02;
const DRAIN_TARGET_MS = 5000;

pinSelf(1);
const jwt = new JwtService({ secret: createSecretKey(Buffer.from(BENCH_SECRET)) });
const tokens = Array.from({ length: CONNECTIONS }, (_, i) => jwt.sign({ sub: `user${i}` }, { expiresIn: '1h' }));

const server = await startServer(
  new URL('./servers/sample-instance.js', import.meta.url).pathname,
  0,
  { JWT_SECRET: BENCH_SECRET },
  { nodeFlags: ['--expose-gc'], ipc: true },
);
const closeCodes = new Map<number, number>();

/** Answers a close frame as a browser does: the same code back, then the end of the stream. */
function answerClose(connection: LoadConnection, code: number): void {
  closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1);
  connection.socket.end(maskedCloseFrame(code));
}

/** `target`'s CPU as a fraction of a core over the next `ms`. */
async function cpuOver(ms: number, target: ServerProcess = server): Promise<number> {
  const before = target.cpuSeconds();
  const startedAt = performance.now();
  await sleep(ms);
  return (target.cpuSeconds() - before) / ((performance.now() - startedAt) / 1000);
}

/** Microseconds of CPU per answered ping, from a fraction of a core and pings per second. */
function perPing(cpu: number, rate: number): number {
  return (cpu / rate) * 1e6;
}

/** Opens `CONNECTIONS` connections to `url`, `OUTSTANDING` handshakes at a time, each with its own token. */
async function openAll(url: string): Promise<LoadConnection[]> {
  const connections: LoadConnection[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < CONNECTIONS) {
      const i = next++;
      const connection = await openConnection(url, { authorization: `Bearer ${tokens[i]}` }, undefined, `127.0.0.${2 + (i % ADDRESSES)}`);
      connection.onClose = (code) => answerClose(connection, code);
      connections.push(connection);
    }
  };
  await Promise.all(Array.from({ length: OUTSTANDING }, lane));
  return connections;
}

/** What an idle window measured. */
interface IdleWindow {
  /** The server's CPU, as a fraction of a core. */
  readonly cpu: number;
  /** Pings per second the clients answered. */
  readonly pings: number;
  /** The server's garbage collections in the window. */
  readonly gc: ServerGc;
}

/** `target`'s CPU over an idle window that starts SETTLE_MS from now, the pings answered, and its GCs. */
async function idleWindow(connections: readonly LoadConnection[], target: ServerProcess): Promise<IdleWindow> {
  await sleep(SETTLE_MS);
  const pingsBefore = connections.reduce((sum, c) => sum + c.pings, 0);
  const gcBefore = await gcOf(target);
  const cpu = await cpuOver(IDLE_MS, target);
  const gcAfter = await gcOf(target);
  const pings = connections.reduce((sum, c) => sum + c.pings, 0) - pingsBefore;
  const gc: ServerGc = {
    major: gcAfter.major - gcBefore.major,
    majorMs: gcAfter.majorMs - gcBefore.majorMs,
    minor: gcAfter.minor - gcBefore.minor,
    minorMs: gcAfter.minorMs - gcBefore.minorMs,
  };
  return { cpu, pings: pings / (IDLE_MS / 1000), gc };
}

/** The GCs of a window, as printed. */
function describeGc({ major, majorMs, minor, minorMs }: ServerGc): string {
  return `GC pauses in the window: ${major} full (${majorMs.toFixed(0)} ms), ${minor} young (${minorMs.toFixed(0)} ms)`;
}

/**
 * The baseline: the same connections idling on a raw `ws` server that runs the heartbeat
 * of `ws`'s README at the same interval (`ws-heartbeat` in bench/servers/echo-contenders.ts).
 */
async function rawWsIdle(): Promise<IdleWindow> {
  const raw = await startServer(
    new URL('./servers/echo-contenders.js', import.meta.url).pathname,
    0,
    { CONTENDER: 'ws-heartbeat', HB_INTERVAL_MS: '25000' },
    { ipc: true },
  );
  try {
    const connections = await openAll(`ws://127.0.0.1:${raw.port}/echo`);
    const idle = await idleWindow(connections, raw);
    closeAll(connections);
    return idle;
  } finally {
    await raw.stop();
  }
}

try {
  const url = `ws://127.0.0.1:${server.port}/echo`;
  await sleep(SETTLE_MS);
  const idleBefore = await cpuOver(BASELINE_MS);
  const baseline = await memoryOf(server);

  const cpuBefore = server.cpuSeconds();
  const startedAt = performance.now();
  const connections = await openAll(url);
  const acceptMs = performance.now() - startedAt;
  const acceptCpu = server.cpuSeconds() - cpuBefore;

  const { cpu: idle, pings, gc } = await idleWindow(connections, server);
  const loaded = await memoryOf(server);
  const alive = connections.filter((c) => !c.socket.destroyed).length;

  const closed = Promise.all(
    connections.map(({ socket }) => new Promise<number>((resolve) => socket.once('close', () => resolve(performance.now())))),
  );
  const exited = new Promise<number>((resolve) => server.child.once('exit', () => resolve(performance.now())));
  // The server's CPU during the drain: read every 50 ms until its process is gone.
  const cpuAtTerm = server.cpuSeconds();
  let drainCpu = 0;
  const sampler = setInterval(() => {
    try {
      drainCpu = server.cpuSeconds() - cpuAtTerm;
    } catch {
      clearInterval(sampler);
    }
  }, 50);
  const termAt = performance.now();
  server.child.kill('SIGTERM');
  const exitMs = (await exited) - termAt;
  clearInterval(sampler);
  const lastCloseMs = Math.max(...(await closed)) - termAt;

  const perConnection = (field: 'rss' | 'heapUsed'): string =>
    Math.round((loaded[field] - baseline[field]) / CONNECTIONS).toLocaleString('en-US');
  console.log(
    `${CONNECTIONS} idle authenticated connections to one server (the sample app, default heartbeat 25 s / 10 s), ` +
      `from ${ADDRESSES} source addresses; server on core 0:`,
  );
  console.log(
    `  accept: ${(acceptMs / 1000).toFixed(1)} s (${Math.round(CONNECTIONS / (acceptMs / 1000))} handshakes/s, ` +
      `${OUTSTANDING} outstanding), ${Math.round((acceptCpu / CONNECTIONS) * 1e6)} µs of server CPU each`,
  );
  console.log(
    `  memory per connection after GC, after the idle window: RSS ${perConnection('rss')} B, heapUsed ${perConnection('heapUsed')} B ` +
      `(RSS ${Math.round(loaded.rss / 2 ** 20)} MB in all)`,
  );
  console.log(
    `  idle CPU: ${(idleBefore * 100).toFixed(2)}% of a core with no connection, ${(idle * 100).toFixed(2)}% with ${CONNECTIONS} ` +
      `over ${IDLE_MS / 1000} s (${Math.round(pings)} pings/s answered, ${pings > 0 ? `${perPing(idle, pings).toFixed(1)} µs per ping` : 'no ping in this window'}, ` +
      `${alive} connections still open; ${describeGc(gc)})`,
  );
  console.log(
    // The whole idle CPU counts: the no-connection window can catch a one-off burst of V8
    // shrinking its heap, so subtracting it would flatter the result.
    `  heartbeat and idle connections: ${(idle * 100).toFixed(2)}% of a core  ` +
      `(target <= ${HEARTBEAT_CPU_TARGET * 100}%: ${idle <= HEARTBEAT_CPU_TARGET ? 'met' : 'NOT met'})`,
  );
  const codes = [...closeCodes].map(([code, count]) => `${count} x ${code}`).join(', ') || 'none';
  console.log(
    `  SIGTERM: the process exited after ${(exitMs / 1000).toFixed(2)} s, the last client socket closed after ` +
      `${(lastCloseMs / 1000).toFixed(2)} s (at least ${drainCpu.toFixed(2)} s of server CPU, sampled every 50 ms); ` +
      `close frames received: ${codes}  ` +
      `(target <= ${DRAIN_TARGET_MS / 1000} s: ${Math.max(exitMs, lastCloseMs) <= DRAIN_TARGET_MS ? 'met' : 'NOT met'})`,
  );
  if (alive !== CONNECTIONS) {
    throw new Error(`${CONNECTIONS - alive} connections were cut while idle`);
  }
  // Per answered ping: raw ws pings every connection at once every 25 s, so its window holds two or three sweeps.
  const raw = await rawWsIdle();
  console.log(
    `  baseline: the same connections idle on raw ws with the heartbeat of its README every 25 s: ` +
      `${(raw.cpu * 100).toFixed(2)}% of a core (${Math.round(raw.pings)} pings/s answered, ` +
      (raw.pings > 0
        ? `${perPing(raw.cpu, raw.pings).toFixed(1)} µs per ping; ${describeGc(raw.gc)}); per ping this plugin ` +
          `${(perPing(idle, pings) / perPing(raw.cpu, raw.pings)).toFixed(2)}x raw ws`
        : `no ping in this window: BENCH_IDLE_MS under 25 s can miss its sweeps)`),
  );
} finally {
  if (server.child.exitCode === null && server.child.signalCode === null) {
    await server.stop();
  }
}
