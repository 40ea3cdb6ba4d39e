// Cross-instance delivery through Redis: two instances of an app on one throw-away
// redis-server; a client on instance A publishes to a room at a fixed rate; a member on A
// (local delivery) and a member on B (through Redis) time each message. The added latency
// of the Redis hop is B minus A, per percentile. Both app instances run on core 0; Redis
// and this light load generator are left to the scheduler. Run: `npm run bench`.
import WebSocket from 'ws';
import { RedisServer } from '../test/support/redis-server.js';
import { startServer } from './support/server-process.js';
import { sleep } from './support/ws-load.js';

const RATE = 5000;
const DURATION_MS = 10_000;
const WARM_UP_MS = 1000;
const TICK_MS = 2;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

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

/** Records latencies (ms) of `message` frames once `recording` is on. */
function timer(socket: WebSocket, state: { recording: boolean }): number[] {
  const latencies: number[] = [];
  socket.on('message', (data: Buffer) => {
    const sent = (JSON.parse(data.toString()) as { data: number }).data;
    if (state.recording) {
      latencies.push(performance.timeOrigin + performance.now() - sent);
    }
  });
  return latencies;
}

const redis = await RedisServer.start();
const script = new URL('./servers/rooms-server.js', import.meta.url).pathname;
const [a, b] = await Promise.all([startServer(script, 0, { REDIS_URL: redis.url }), startServer(script, 0, { REDIS_URL: redis.url })]);
try {
  const publisher = await client(a!.port);
  const local = await client(a!.port);
  const remote = await client(b!.port);
  await join(local, 'bench');
  await join(remote, 'bench');
  const state = { recording: false };
  const localLatencies = timer(local, state);
  const remoteLatencies = timer(remote, state);
  const perTick = (RATE * TICK_MS) / 1000;
  const ticker = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      publisher.send(`{"event":"send","data":{"room":"bench","t":${performance.timeOrigin + performance.now()}}}`);
    }
  }, TICK_MS);
  await sleep(WARM_UP_MS);
  state.recording = true;
  await sleep(DURATION_MS);
  state.recording = false;
  clearInterval(ticker);
  await sleep(500);
  const report = (name: string, values: number[]): number[] => {
    const sorted = [...values].sort((x, y) => x - y);
    const [p50, p99, p999] = [percentile(sorted, 50), percentile(sorted, 99), percentile(sorted, 99.9)];
    console.log(`  ${name.padEnd(34)} n=${sorted.length}  p50 ${p50.toFixed(2)} ms  p99 ${p99.toFixed(2)} ms  p99.9 ${p999.toFixed(2)} ms`);
    return [p50, p99];
  };
  console.log(`cross-instance delivery through Redis at ${RATE} messages/s for ${DURATION_MS / 1000} s (servers on core 0):`);
  const [localP50, localP99] = report('member on the same instance', localLatencies);
  const [remoteP50, remoteP99] = report('member on the other instance', remoteLatencies);
  console.log(`  added by the Redis hop: p50 ${(remoteP50! - localP50!).toFixed(2)} ms, p99 ${(remoteP99! - localP99!).toFixed(2)} ms`);
  for (const socket of [publisher, local, remote]) {
    socket.close();
  }
} finally {
  await Promise.all([a!.stop(), b!.stop()]);
  await redis.stop();
}
