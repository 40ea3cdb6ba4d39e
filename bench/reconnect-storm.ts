// Reconnect storm: 10,000 clients of the client SDK, each in one of 100 rooms, lose their
// server to a restart and all come back at once: the time until every one is connected
// and back in its room, the latency of the handshakes of the storm (p50/p99), and every
// refusal or failed attempt by cause.
//
// The server is the sample app (bench/servers/sample-instance.ts: JWT auth, `/chat` with
// room history, heartbeat, every default limit) pinned to core 0. The clients
// (`RealtimeClient` on `ws`, default backoff: full jitter over [0, 0.5 s x 2^attempt)) run
// in this process on core 1, each with its own token, from 100 source addresses (100
// clients per address: within the per-address defaults of 500 connections and bursts of
// 200 handshakes). Once all have joined, the server gets SIGTERM (it drains with 1001, and
// the clients start reconnecting at once), and a new server process starts on the same
// port as soon as the old one has exited. A client is back when its room has been joined
// again (`onRejoin`; `recovered` is false, as the in-memory history went with the old
// process). Attempts that find no server (ECONNREFUSED, while it restarts) are part of a
// restart and are counted apart from refusals by the server.
// Run: `npm run bench:fleet` (or, after a build, `node dist/bench/reconnect-storm.js`).
import { JwtService } from '@nestjs/jwt';
import { createSecretKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { RealtimeClient, type WebSocketConstructor } from '../src/client/index.js';
import { BENCH_SECRET } from './servers/bench-secret.js';
import { LatencyRecorder } from './support/latency.js';
import { pinSelf, type ServerProcess, startServer } from './support/server-process.js';
import { sleep } from './support/ws-load.js';

const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 10_000);
const ROOMS = 100;
const ADDRESSES = 100;
/** Clients started per step while they first connect (not measured), and the step. */
const RAMP = { clients: 200, everyMs: 60 };
const TIMEOUT_MS = 120_000;
/** Node's listen backlog when none is given, and one for storms (Linux caps it at net.core.somaxconn). */
const NODE_DEFAULT_BACKLOG = 511;
const STORM_BACKLOG = 4096;

pinSelf(1);
const script = new URL('./servers/sample-instance.js', import.meta.url).pathname;
const jwt = new JwtService({ secret: createSecretKey(Buffer.from(BENCH_SECRET)) });

/** What happens to connection attempts during a storm, while the old server drains and exits and once the new one listens. */
interface Storm {
  phase: 'restart' | 'new server';
  readonly handshakes: LatencyRecorder;
  readonly failures: Record<Storm['phase'], Map<string, number>>;
  /** When each client was back in its room (ms since SIGTERM). */
  readonly backAt: number[];
  recovered: number;
  termAt: number;
}
let storm: Storm | undefined;

/** Why an attempt failed, in a few words: the HTTP status of a refusal, or the socket error's code. */
function failureKind(error: Error & { code?: string }): string {
  const status = /Unexpected server response: (\d+)/.exec(error.message)?.[1];
  return status ? `HTTP ${status}` : (error.code ?? error.message);
}

/** `ws` from one source address, timing each handshake of the storm (creation to open). */
function webSocketFrom(localAddress: string): WebSocketConstructor {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { localAddress });
      if (!storm) {
        return;
      }
      const { handshakes, failures: byPhase, phase } = storm;
      const createdAt = performance.now();
      this.once('open', () => handshakes.record(performance.now() - createdAt));
      const failures = byPhase[phase];
      this.once('error', (error: Error) => {
        const kind = failureKind(error);
        failures.set(kind, (failures.get(kind) ?? 0) + 1);
      });
    }
  };
}

/** The kernel's TCP counters that say whether connection attempts were dropped at the listening socket. */
function listenCounters(): Record<'ListenOverflows' | 'TCPSynRetrans', number> {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const names = lines.find((line) => line.startsWith('TcpExt:'))!.split(' ');
  const values = lines.filter((line) => line.startsWith('TcpExt:'))[1]!.split(' ');
  const value = (name: string): number => Number(values[names.indexOf(name)]);
  return { ListenOverflows: value('ListenOverflows'), TCPSynRetrans: value('TCPSynRetrans') };
}

function boot(port = 0, backlog = NODE_DEFAULT_BACKLOG): Promise<ServerProcess> {
  return startServer(script, 0, { JWT_SECRET: BENCH_SECRET, LISTEN_BACKLOG: String(backlog), ...(port ? { PORT: String(port) } : {}) });
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

let server = await boot();
const port = server.port;
const clients: RealtimeClient[] = [];
try {
  const url = `ws://127.0.0.1:${port}/chat`;
  const classes = Array.from({ length: ADDRESSES }, (_, i) => webSocketFrom(`127.0.0.${2 + i}`));
  const joined: Promise<unknown>[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const token = jwt.sign({ sub: `user${i}` }, { expiresIn: '1h' });
    const client = new RealtimeClient(url, { WebSocket: classes[i % ADDRESSES]!, token });
    client.onRejoin((rejoin) => {
      if (storm) {
        storm.backAt.push(performance.now() - storm.termAt);
        storm.recovered += rejoin.recovered ? 1 : 0;
      }
    });
    clients.push(client);
    joined.push(client.join(`room${i % ROOMS}`));
    if (i % RAMP.clients === RAMP.clients - 1) {
      // The next step waits for this one's joins too: on a slow machine a fixed pace queues
      // more handshakes than the server takes, and late joins time out (10 s).
      await Promise.all([sleep(RAMP.everyMs), ...joined.slice(-RAMP.clients)]);
    }
  }
  await Promise.all(joined);
  console.log(
    `reconnect storm: ${CLIENTS} SDK clients in ${ROOMS} rooms, from ${ADDRESSES} source addresses; server on core 0, clients on core 1:`,
  );
  for (const backlog of [NODE_DEFAULT_BACKLOG, STORM_BACKLOG]) {
    await restart(backlog);
    await sleep(2000);
  }
} finally {
  for (const client of clients) {
    client.disconnect();
  }
  await server.stop();
}

/** SIGTERM to the server, a new one on the same port with `backlog`, and the storm until every client is back. */
async function restart(backlog: number): Promise<void> {
  const current: Storm = {
    phase: 'restart',
    handshakes: new LatencyRecorder(),
    failures: { restart: new Map(), 'new server': new Map() },
    backAt: [],
    recovered: 0,
    termAt: 0,
  };
  storm = current;
  const clientCpu = process.cpuUsage();
  const countersBefore = listenCounters();
  const exited = new Promise<void>((resolve) => server.child.once('exit', () => resolve()));
  current.termAt = performance.now();
  server.child.kill('SIGTERM');
  await exited;
  const downAt = performance.now() - current.termAt;
  server = await boot(port, backlog);
  current.phase = 'new server';
  const readyAt = performance.now() - current.termAt;
  const serverCpuAtReady = server.cpuSeconds();
  const deadline = performance.now() + TIMEOUT_MS;
  while (current.backAt.length < CLIENTS && performance.now() < deadline) {
    await sleep(50);
  }
  const allBackAt = performance.now() - current.termAt;
  const clientSeconds = process.cpuUsage(clientCpu);
  const counters = listenCounters();
  const newServerCpu = server.cpuSeconds() - serverCpuAtReady;
  storm = undefined;

  const sorted = [...current.backAt].sort((a, b) => a - b);
  const handshakes = current.handshakes.percentiles();
  const describe = (failures: Map<string, number>): string => [...failures].map(([kind, count]) => `${count} ${kind}`).join(', ') || 'none';
  console.log(`  restart, the new server listening with a backlog of ${backlog}:`);
  console.log(`    SIGTERM to exit (drain): ${(downAt / 1000).toFixed(2)} s; new server listening after ${(readyAt / 1000).toFixed(2)} s`);
  console.log(
    `    back in their rooms: ${current.backAt.length} of ${CLIENTS}; all after ${(allBackAt / 1000).toFixed(2)} s ` +
      `(${((allBackAt - readyAt) / 1000).toFixed(2)} s after the new server listened); ` +
      `half after ${(percentile(sorted, 50) / 1000).toFixed(2)} s, 99% after ${(percentile(sorted, 99) / 1000).toFixed(2)} s; ` +
      `recovered: ${current.recovered} (history was in the old process)`,
  );
  console.log(
    `    storm handshakes: ${handshakes.count} completed, p50 ${handshakes.p50.toFixed(1)} ms, ` +
      `p99 ${handshakes.p99.toFixed(1)} ms, max ${handshakes.max.toFixed(1)} ms`,
  );
  console.log(
    `    failed attempts: while the server restarted ${describe(current.failures.restart)}; ` +
      `once the new server listened ${describe(current.failures['new server'])}`,
  );
  console.log(
    `    kernel (whole machine): ${counters.ListenOverflows - countersBefore.ListenOverflows} connection attempts dropped ` +
      `with the accept queue full, ${counters.TCPSynRetrans - countersBefore.TCPSynRetrans} SYNs sent again`,
  );
  const clientCpuSeconds = (clientSeconds.user + clientSeconds.system) / 1e6;
  console.log(
    `    CPU: the new server ${newServerCpu.toFixed(2)} s from listening until all were back ` +
      `(${Math.round((newServerCpu / CLIENTS) * 1e6)} µs per client: handshake, join, presence); ` +
      `the clients ${Math.round((clientCpuSeconds / (allBackAt / 1000)) * 100)}% of their core`,
  );
  if (current.backAt.length < CLIENTS) {
    throw new Error(`${CLIENTS - current.backAt.length} clients were not back after ${TIMEOUT_MS / 1000} s`);
  }
}
