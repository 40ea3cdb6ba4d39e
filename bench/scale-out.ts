// Scale-out: the sample app's /chat with rooms spread over 1, 2 and 4 instances, on one
// throw-away redis-server and then on a throw-away Redis Cluster of 3 masters
// (`npm run bench:scale`, about 3 minutes).
//
// 400 clients (distinct users) in 40 rooms of 10; the members of each room are spread over
// the instances, so every message crosses Redis to every instance. The clients send a
// fixed 2,000 messages a second in all (each member 5 a second, well under the sample app's
// rate limits); each message reaches its room's 10 members. Every setup gets the same
// load, so what differs is what it costs: server CPU per delivery, Redis CPU per message,
// and how the work splits over instances and shards. All instances share core 0 and
// every redis-server and this load generator share core 1: a 2-core machine cannot show
// added throughput, only that the work divides. The end of the output turns the measured
// costs into a paper estimate for 1M connections and 100k messages a second.
import { JwtService } from '@nestjs/jwt';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { RedisCluster } from '../test/support/redis-cluster.js';
import { RedisServer } from '../test/support/redis-server.js';
import { BENCH_SECRET } from './servers/bench-secret.js';
import { cpuSecondsOf, pinSelf, startServer, type ServerProcess } from './support/server-process.js';
import { sleep } from './support/ws-load.js';

const ROOMS = 40;
const MEMBERS = 10;
const RATE = 4000;
/** CPU measured with everyone connected and joined but nothing sent: subtracted from Redis's figures. */
const IDLE_MS = 3000;
const TICK_MS = 10;
const WARM_UP_MS = 3000;
const MEASURE_MS = 10_000;
/** The memory bench's RSS per idle authenticated connection (bench/README.md), for the estimate. */
const RSS_PER_CONNECTION_KB = 6.1;
const script = new URL('./servers/sample-instance.js', import.meta.url).pathname;
const jwt = new JwtService({ secret: BENCH_SECRET });

interface Setup {
  readonly redis: 'server' | 'cluster';
  readonly instances: number;
}

/** What one setup measured over the measurement window. */
interface Result extends Setup {
  readonly sentPerSecond: number;
  readonly ackedPerSecond: number;
  readonly deliveredPerSecond: number;
  /** Server CPU (all instances) per acknowledged message, µs. */
  readonly serverUsPerMessage: number;
  /** Each instance's CPU, in % of a core. */
  readonly instanceCpu: number[];
  /** Redis CPU (all nodes) per message, µs, above what the same nodes use idle. */
  readonly redisUsPerMessage: number;
  /** Each Redis node's CPU, in % of a core. */
  readonly redisCpu: number[];
}

pinSelf(1);
const results: Result[] = [];
for (const setup of [
  { redis: 'server', instances: 1 },
  { redis: 'server', instances: 2 },
  { redis: 'server', instances: 4 },
  { redis: 'cluster', instances: 1 },
  { redis: 'cluster', instances: 2 },
  { redis: 'cluster', instances: 4 },
] as const) {
  results.push(await measure(setup));
}
report(results);

async function measure(setup: Setup): Promise<Result> {
  const server = setup.redis === 'server' ? await RedisServer.start() : undefined;
  const cluster = setup.redis === 'cluster' ? await RedisCluster.start() : undefined;
  const redisPids = server ? [server.pid!] : cluster!.nodes.map((node) => node.pid!);
  redisPids.forEach((pid) => spawnSync('taskset', ['-p', '-c', '1', String(pid)]));
  const env = server
    ? { REDIS_URL: server.url }
    : { REDIS_CLUSTER: cluster!.startupNodes.map((node) => `${node.host}:${node.port}`).join(',') };
  const instances: ServerProcess[] = [];
  const sockets: WebSocket[] = [];
  try {
    for (let i = 0; i < setup.instances; i++) {
      instances.push(await startServer(script, 0, { JWT_SECRET: BENCH_SECRET, LOG_FORMAT: 'json', ...env }));
    }
    const counts = { acked: 0, delivered: 0, refused: 0 };
    // Member m of room r: user u<r*10+m>, on instance (r*10+m) mod N, so each room spans the instances.
    const members: { socket: WebSocket; room: string }[] = [];
    for (let r = 0; r < ROOMS; r++) {
      for (let m = 0; m < MEMBERS; m++) {
        const user = r * MEMBERS + m;
        const socket = await connect(instances[user % setup.instances]!.port, `u${user}`, counts);
        sockets.push(socket);
        await request(socket, { event: 'join', id: 'join', data: { room: `room-${r}` } });
        members.push({ socket, room: `room-${r}` });
      }
    }
    const idleFrom = redisPids.map(cpuSecondsOf);
    await sleep(IDLE_MS);
    const idlePerSecond = sum(redisPids.map((pid, i) => cpuSecondsOf(pid) - idleFrom[i]!)) / (IDLE_MS / 1000);
    let next = 0;
    let sent = 0;
    const perTick = (RATE * TICK_MS) / 1000;
    const sender = setInterval(() => {
      for (let i = 0; i < perTick; i++) {
        const member = members[next++ % members.length]!;
        member.socket.send(JSON.stringify({ event: 'send', id: sent++, data: { room: member.room, text: 'a chat line of some length' } }));
      }
    }, TICK_MS);
    await sleep(WARM_UP_MS);
    const start = {
      at: performance.now(),
      sent,
      ...counts,
      instances: instances.map((instance) => instance.cpuSeconds()),
      redis: redisPids.map(cpuSecondsOf),
    };
    await sleep(MEASURE_MS);
    const seconds = (performance.now() - start.at) / 1000;
    const end = { sent, ...counts, instances: instances.map((instance) => instance.cpuSeconds()), redis: redisPids.map(cpuSecondsOf) };
    clearInterval(sender);
    const acked = end.acked - start.acked;
    const delivered = end.delivered - start.delivered;
    const instanceSeconds = end.instances.map((cpu, i) => cpu - start.instances[i]!);
    const redisSeconds = end.redis.map((cpu, i) => cpu - start.redis[i]!);
    if (counts.refused > 0) {
      console.log(`  (${counts.refused} sends refused: the figures count acknowledged ones)`);
    }
    return {
      ...setup,
      sentPerSecond: (end.sent - start.sent) / seconds,
      ackedPerSecond: acked / seconds,
      deliveredPerSecond: delivered / seconds,
      serverUsPerMessage: (sum(instanceSeconds) * 1e6) / acked,
      instanceCpu: instanceSeconds.map((cpu) => (cpu / seconds) * 100),
      redisUsPerMessage: ((sum(redisSeconds) - idlePerSecond * seconds) * 1e6) / acked,
      redisCpu: redisSeconds.map((cpu) => (cpu / seconds) * 100),
    };
  } finally {
    sockets.forEach((socket) => socket.terminate());
    await Promise.all(instances.map((instance) => instance.stop()));
    await server?.stop();
    await cluster?.stop();
  }
}

/** A member's connection: counts the acknowledgements of its sends and the room messages it gets. */
async function connect(port: number, user: string, counts: { acked: number; delivered: number; refused: number }): Promise<WebSocket> {
  let socket: WebSocket;
  for (let attempt = 0; ; attempt++) {
    socket = new WebSocket(`ws://127.0.0.1:${port}/chat`, {
      headers: { authorization: `Bearer ${jwt.sign({ sub: user }, { expiresIn: 3600 })}` },
    });
    const opened = await new Promise<boolean>((resolve) => {
      socket.once('open', () => resolve(true));
      socket.once('error', () => resolve(false));
    });
    if (opened) {
      break;
    }
    if (attempt === 100) {
      throw new Error(`user ${user} could not connect to port ${port}`);
    }
    await sleep(100); // the sample app's handshake rate per address (50 a second after a burst of 200)
  }
  socket.on('message', (data: Buffer) => {
    // Only the event name is read: the load generator must stay cheap.
    const head = data.subarray(0, 48).toString('latin1');
    if (head.includes('"event":"message"')) {
      counts.delivered++;
    } else if (head.includes('"event":"send"')) {
      counts.acked++;
    } else if (head.includes('"event":"error"')) {
      counts.refused++;
    }
  });
  return socket;
}

async function request(socket: WebSocket, frame: { event: string; id: string; data: unknown }): Promise<void> {
  const replied = new Promise<void>((resolve, reject) => {
    const onMessage = (data: Buffer): void => {
      const reply = JSON.parse(data.toString()) as { event: string; id?: string };
      if (reply.id === frame.id) {
        socket.off('message', onMessage);
        if (reply.event === frame.event) {
          resolve();
        } else {
          reject(new Error(`${frame.event} refused: ${data.toString()}`));
        }
      }
    };
    socket.on('message', onMessage);
  });
  socket.send(JSON.stringify(frame));
  await replied;
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function report(all: readonly Result[]): void {
  console.log(
    `scale-out: sample app /chat, ${ROOMS} rooms of ${MEMBERS} members spread over the instances, ${RATE} messages/s offered ` +
      `(${RATE * MEMBERS} deliveries/s); instances on core 0, Redis and the clients on core 1`,
  );
  console.log('redis    inst  acked/s  delivered/s  server µs/msg  per instance (% core)     Redis µs/msg  per Redis node (% core)');
  for (const result of all) {
    console.log(
      `${result.redis.padEnd(8)} ${String(result.instances).padStart(4)}  ${result.ackedPerSecond.toFixed(0).padStart(7)}  ` +
        `${result.deliveredPerSecond.toFixed(0).padStart(11)}  ${result.serverUsPerMessage.toFixed(1).padStart(13)}  ` +
        `${result.instanceCpu
          .map((cpu) => cpu.toFixed(0))
          .join(' / ')
          .padEnd(24)}  ` +
        `${result.redisUsPerMessage.toFixed(1).padStart(12)}  ${result.redisCpu.map((cpu) => cpu.toFixed(0)).join(' / ')}`,
    );
  }
  estimate(all);
}

/**
 * The paper estimate for 1M connections and 100k messages/s in rooms of 10. A message costs
 * the app `once` (the sender's instance: validation, the publish, its 10 deliveries) plus
 * `perInstance` for every instance that has a member of the room (it receives the message
 * from Redis and sends it on), fitted from 1 and 4 instances on one Redis.
 */
function estimate(all: readonly Result[]): void {
  const at = (redis: Setup['redis'], instances: number): Result => all.find((r) => r.redis === redis && r.instances === instances)!;
  const perInstance = (at('server', 4).serverUsPerMessage - at('server', 1).serverUsPerMessage) / 3;
  const once = at('server', 1).serverUsPerMessage - perInstance;
  const messages = 100_000;
  const utilisation = 0.6;
  const memoryGb = (1_000_000 * RSS_PER_CONNECTION_KB) / 1024 / 1024;
  console.log('');
  console.log(
    `fitted app cost per message: ${once.toFixed(0)} µs once + ${perInstance.toFixed(0)} µs per instance with members of the room`,
  );
  console.log(`paper estimate: 1,000,000 connections, ${messages} messages/s in rooms of ${MEMBERS}:`);
  for (const spread of [MEMBERS, 2]) {
    const cores = (messages * (once + perInstance * spread)) / 1e6;
    console.log(
      `  app, each room on ${spread} instances${spread === MEMBERS ? ' (no placement: members land anywhere)' : ' (rooms placed by affinity)'}: ` +
        `${cores.toFixed(0)} cores busy, ${Math.ceil(cores / utilisation)} single-core instances at ${utilisation * 100}% load`,
    );
  }
  console.log(
    `  app memory: ${RSS_PER_CONNECTION_KB} KB per idle connection x 1M = ${memoryGb.toFixed(1)} GB in all, before message buffers`,
  );
  const redisCores = (messages * at('cluster', 4).redisUsPerMessage) / 1e6;
  const shards = Math.ceil(redisCores / utilisation);
  console.log(
    `  Redis: ${messages} x ${at('cluster', 4).redisUsPerMessage.toFixed(1)} µs (measured with 4 instances per room) = ${redisCores.toFixed(1)} cores; ` +
      `a Redis process uses one core, so at ${utilisation * 100}% load ${shards} master${shards === 1 ? '' : 's'}, plus a replica each ` +
      `(more instances per room cost Redis more per message)`,
  );
}
