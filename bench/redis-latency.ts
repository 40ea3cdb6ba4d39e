// Scenario 5, cross-instance delivery through Redis: two instances of an app on one throw-away
// redis-server; a client on instance A publishes to a room at a fixed rate; a member on A
// (local delivery) and a member on B (through Redis) time each message. The latency the
// Redis hop adds is B's arrival minus A's, message by message, measured with room history
// off (local delivery at once); a second run with history on (the default) shows what
// local and remote members see when every room message takes its offset from Redis. Both app instances run on core 0; Redis
// and this light load generator are left to the scheduler. Run: `npm run bench`.
import WebSocket from 'ws';
import { RedisServer } from '../test/support/redis-server.js';
import { LatencyRecorder } from './support/latency.js';
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
 * One run: two instances on a fresh redis-server. With `history` off (the hop on its own)
 * it checks the target; with it on (the default), local members also get each message
 * back from Redis, with its offset, so local delivery pays the round trip too.
 */
async function run(history: 'on' | 'off'): Promise<void> {
  const redis = await RedisServer.start();
  const env = { REDIS_URL: redis.url, HISTORY: history };
  const [a, b] = await Promise.all([startServer(script, 0, env), startServer(script, 0, env)]);
  try {
    const publisher = await client(a!.port);
    const local = await client(a!.port);
    const remote = await client(b!.port);
    await join(local, 'bench');
    await join(remote, 'bench');
    const localArrivals = arrivals(local);
    const remoteArrivals = arrivals(remote);
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
    const hop = new LatencyRecorder();
    let lost = 0;
    for (const [at, seq] of measured) {
      const [here, there] = [localArrivals.get(seq), remoteArrivals.get(seq)];
      if (here === undefined || there === undefined) {
        lost++;
        continue;
      }
      localLatency.record(here - at);
      remoteLatency.record(there - at);
      // What the hop adds to this very message (a remote member cannot be earlier than a local one by more than noise).
      hop.record(Math.max(0, there - here));
    }
    const seconds = (sentAt.at(-1)! - measured[0]![0]) / 1000;
    console.log(
      `cross-instance delivery through Redis, room history ${history}, ${measured.length} messages at ` +
        `${Math.round(measured.length / seconds)} messages/s for ${DURATION_MS / 1000} s (servers on core 0):`,
    );
    const line = (name: string, latencies: LatencyRecorder): string => {
      const { p50, p99, p999 } = latencies.percentiles();
      return `  ${name.padEnd(44)} p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  p99.9 ${p999.toFixed(2)} ms`;
    };
    console.log(line('member on the same instance (local delivery)', localLatency));
    console.log(line('member on the other instance (through Redis)', remoteLatency));
    const added = hop.percentiles();
    const met = added.p50 < 1 && added.p99 < 5;
    console.log(
      history === 'off'
        ? `${line('added by the Redis hop, per message', hop)}  (target < 1 ms p50 and < 5 ms p99: ${met ? 'met' : 'NOT met'})`
        : line('remote later than local, per message', hop),
    );
    console.log(
      lost === 0 ? '  every message reached both members' : `  <- ${lost} of ${measured.length} messages did not reach both members`,
    );
    for (const socket of [publisher, local, remote]) {
      socket.close();
    }
  } finally {
    await Promise.all([a!.stop(), b!.stop()]);
    await redis.stop();
  }
}

await run('off');
await run('on');
