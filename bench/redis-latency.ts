// Scenario 5, cross-instance delivery through Redis: two instances of an app on one throw-away
// redis-server; a client on instance A publishes to a room at a fixed rate; a member on A
// (local delivery) and a member on B (through Redis) time each message from its send. What
// the Redis hop adds is B's latency, with room history off, against a baseline run of one
// instance on the in-memory broker at the same rate (A's members get a message once the
// broker took it: with Redis, about when B's get it); a last run with history on (the
// default) shows what local and remote members see when every room message takes its
// offset from Redis. Both app instances run on core 0; Redis
// and this light load generator are left to the scheduler. Run: `npm run bench`.
import WebSocket from 'ws';
import { RedisServer } from '../test/support/redis-server.js';
import { LatencyRecorder, type Percentiles } from './support/latency.js';
import { startServer } from './support/server-process.js';
import { sleep } from './support/ws-load.js';

const RATE = 5000;
const DURATION_MS = 10_000;
const WARM_UP_MS = 1000;
const TICK_MS = 2;

async function client(port: number): Promise<WebSocket> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}/rooms`);
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  return socket;
}

async function join(socket: WebSocket, room: string): Promise<void> {
  socket.send(JSON.stringify({ event: 'join', id: 1, data: room }));
  await new Promise((resolve) => socket.once('message', resolve));
}

/** Arrival times (ms, performance.now()) of each `message` frame, by the sequence number it carries. */
function arrivals(socket: WebSocket): Map<number, number> {
  const times = new Map<number, number>();
  socket.on('message', (data: Buffer) => {
    times.set((JSON.parse(data.toString()) as { data: number }).data, performance.now());
  });
  return times;
}

const script = new URL('./servers/rooms-server.js', import.meta.url).pathname;

/**
 * One run at RATE messages/s, the publisher and a member on instance A. `baseline`: A
 * alone, on the in-memory broker, history off (no Redis: what a member waits anyway).
 * `off` and `on`: A and B on a fresh redis-server with room history off or on, and a
 * member on B too. Returns the latency of the member the run is about: A's in the
 * baseline, B's (through Redis) otherwise.
 */
async function run(mode: 'baseline' | 'off' | 'on'): Promise<Percentiles> {
  const redis = mode === 'baseline' ? undefined : await RedisServer.start();
  const env = redis ? { REDIS_URL: redis.url, HISTORY: mode } : { HISTORY: 'off' };
  const servers = await Promise.all((redis ? [0, 1] : [0]).map(() => startServer(script, 0, env)));
  const [a, b] = servers;
  try {
    const publisher = await client(a!.port);
    const local = await client(a!.port);
    const remote = b ? await client(b.port) : undefined;
    await join(local, 'bench');
    if (remote) {
      await join(remote, 'bench');
    }
    const localArrivals = arrivals(local);
    const remoteArrivals = remote ? arrivals(remote) : undefined;
    // Paced by the clock, not by timer ticks: each tick sends what is due, so the rate holds
    // even when a tick comes late. Each message carries its sequence number.
    const sentAt: number[] = [];
    const startedAt = performance.now();
    const ticker = setInterval(() => {
      const due = Math.floor(((performance.now() - startedAt) * RATE) / 1000);
      while (sentAt.length < due) {
        publisher.send(`{"event":"send","data":{"room":"bench","t":${sentAt.length}}}`);
        sentAt.push(performance.now());
      }
    }, TICK_MS);
    await sleep(WARM_UP_MS + DURATION_MS);
    clearInterval(ticker);
    await sleep(500);
    // Measured: the messages sent after the warm-up.
    const measured = sentAt.map((at, seq) => [at, seq] as const).filter(([at]) => at - startedAt >= WARM_UP_MS);
    const localLatency = new LatencyRecorder();
    const remoteLatency = new LatencyRecorder();
    const later = new LatencyRecorder();
    let lost = 0;
    for (const [at, seq] of measured) {
      const here = localArrivals.get(seq);
      const there = remoteArrivals ? remoteArrivals.get(seq) : here;
      if (here === undefined || there === undefined) {
        lost++;
        continue;
      }
      localLatency.record(here - at);
      remoteLatency.record(there - at);
      later.record(Math.max(0, there - here));
    }
    const seconds = (sentAt.at(-1)! - measured[0]![0]) / 1000;
    const what = redis
      ? `cross-instance delivery through Redis, room history ${mode}`
      : 'one instance, in-memory broker, room history off (baseline)';
    console.log(
      `${what}, ${measured.length} messages at ${Math.round(measured.length / seconds)} messages/s for ${DURATION_MS / 1000} s (servers on core 0):`,
    );
    console.log(line('member on the same instance (local delivery)', localLatency.percentiles()));
    if (remote) {
      console.log(line('member on the other instance (through Redis)', remoteLatency.percentiles()));
      console.log(line('remote later than local, per message', later.percentiles()));
    }
    console.log(
      lost === 0 ? '  every message reached every member' : `  <- ${lost} of ${measured.length} messages did not reach every member`,
    );
    for (const socket of [publisher, local, remote]) {
      socket?.close();
    }
    return remote ? remoteLatency.percentiles() : localLatency.percentiles();
  } finally {
    await Promise.all(servers.map((server) => server!.stop()));
    await redis?.stop();
  }
}

function line(name: string, { p50, p99, p999 }: Percentiles): string {
  return `  ${name.padEnd(44)} p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  p99.9 ${p999.toFixed(2)} ms`;
}

// What the hop adds: the remote member's latency (send to arrival, through Redis) against a
// member's on one instance without Redis, at the same rate, percentile by percentile.
const baseline = await run('baseline');
const throughRedis = await run('off');
const added = { p50: throughRedis.p50 - baseline.p50, p99: throughRedis.p99 - baseline.p99 };
console.log(
  `  added by the Redis hop (history off, against the baseline): p50 ${added.p50.toFixed(2)} ms  p99 ${added.p99.toFixed(2)} ms` +
    `  (target < 1 ms p50 and < 5 ms p99: ${added.p50 < 1 && added.p99 < 5 ? 'met' : 'NOT met'})`,
);
await run('on');
