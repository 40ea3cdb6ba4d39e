// Encodings: JSON against MessagePack on this plugin, in the same run, on the same servers.
// - Echo, 100 authenticated connections x 1 and 16 in flight (the plugin server of
//   bench/echo: auth, validation, heartbeat), of two messages: the 64-byte object of
//   bench/echo, and 1 KiB of bytes (in JSON a base64 string: how a JSON client sends bytes).
// - Broadcast to a room of 1,000 members (the plugin server of bench/broadcast), whose
//   members all speak JSON, all MessagePack, or half and half (each push is then built in
//   both encodings, once each).
// Rounds interleave the encodings, in a fresh random order each; ratios are medians of
// per-round ratios. Servers on core 0, this generator on core 1.
// Run: `npm run bench:extra` (or, once built, `node dist/bench/encodings.js`).
import { randomBytes } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import { PROTOCOL_V1_MSGPACK } from '../src/protocol/envelope.js';
import { pack } from '../src/protocol/msgpack.js';
import { BENCH_SECRET } from './servers/bench-secret.js';
import { type BroadcastResult, broadcastRun, joinRooms, openMany, resetAll } from './support/broadcast-load.js';
import { echoRun, type RunResult } from './support/echo-run.js';
import { median, notServerBound, shuffled } from './support/latency.js';
import { pinSelf, startServer } from './support/server-process.js';
import { type LoadConnection, maskedFrame, maskedTextFrame, openConnection } from './support/ws-load.js';

const CONNECTIONS = 100;
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const ROOM = 1_000;
const ROOM_PIPELINE = 4;
const ROOM_RUN_MS = 700;
const MSGPACK_HEADER = { 'sec-websocket-protocol': PROTOCOL_V1_MSGPACK };

type Encoding = 'json' | 'msgpack';

/** A request in both encodings, as masked client frames. */
function request(event: string, data: { json: unknown; msgpack: unknown }): Record<Encoding, Buffer> {
  return {
    json: maskedTextFrame(JSON.stringify({ event, id: 1, data: data.json })),
    msgpack: maskedFrame(0x82, Buffer.from(pack({ event, id: 1, data: data.msgpack }))),
  };
}

const bytes = randomBytes(1024);
const MESSAGES = [
  {
    name: '64-byte object',
    frames: request('echo', {
      json: { message: 'hello from the benchmark, 64 bytes' },
      msgpack: { message: 'hello from the benchmark, 64 bytes' },
    }),
  },
  { name: '1 KiB of bytes', frames: request('blob', { json: { bytes: bytes.toString('base64') }, msgpack: { bytes } }) },
];

const jwt = new JwtService({ secret: BENCH_SECRET });
const tokens = Array.from({ length: CONNECTIONS }, (_, i) => jwt.sign({ sub: `user${i}` }, { expiresIn: '1h' }));

function line(name: string, results: readonly RunResult[]): string {
  const rate = median(results.map((r) => r.rate));
  const cpuPerMessage = median(results.map((r) => (r.cpu / r.rate) * 1e6));
  return (
    `    ${name.padEnd(12)} ${Math.round(rate).toString().padStart(7)} msg/s  p50 ${median(results.map((r) => r.p50)).toFixed(2)}  ` +
    `p99 ${median(results.map((r) => r.p99)).toFixed(2)} ms  ${cpuPerMessage.toFixed(1).padStart(5)} µs CPU/msg${notServerBound(results)}`
  );
}

function ratio(packed: readonly { rate: number; cpu: number }[], json: readonly { rate: number; cpu: number }[]): string {
  const throughput = median(packed.map((result, i) => result.rate / json[i]!.rate));
  const perCpu = median(packed.map((result, i) => result.rate / result.cpu / (json[i]!.rate / json[i]!.cpu)));
  return `MessagePack / JSON: ${throughput.toFixed(2)}x throughput, ${perCpu.toFixed(2)}x per server CPU-second`;
}

async function echo(): Promise<void> {
  const server = await startServer(new URL('./servers/echo-contenders.js', import.meta.url).pathname, 0, { CONTENDER: 'plugin' });
  try {
    const load = (frame: Buffer, encoding: Encoding) => ({
      url: `ws://127.0.0.1:${server.port}/echo`,
      connections: CONNECTIONS,
      frame,
      headers: (i: number) => ({ authorization: `Bearer ${tokens[i]}`, ...(encoding === 'msgpack' ? MSGPACK_HEADER : {}) }),
      cpuSeconds: () => server.cpuSeconds(),
    });
    for (const message of MESSAGES) {
      for (const encoding of ['json', 'msgpack'] as const) {
        await echoRun(load(message.frames[encoding], encoding), 16, 1000); // warm-up
      }
    }
    for (const inFlight of [1, 16]) {
      console.log(`echo, ${CONNECTIONS} connections x ${inFlight} in flight, ${ROUNDS} rounds of ${RUN_MS / 1000} s, server on core 0:`);
      for (const message of MESSAGES) {
        const results: Record<Encoding, RunResult[]> = { json: [], msgpack: [] };
        for (let round = 0; round < ROUNDS; round++) {
          for (const encoding of shuffled(['json', 'msgpack'] as const)) {
            results[encoding].push(await echoRun(load(message.frames[encoding], encoding), inFlight, RUN_MS));
          }
        }
        console.log(`  ${message.name}:`);
        console.log(line('JSON', results.json));
        console.log(line('MessagePack', results.msgpack));
        console.log(`    ${ratio(results.msgpack, results.json)}`);
      }
    }
  } finally {
    await server.stop();
  }
}

const ROOM_MIXES = [
  { key: 'json', name: 'all JSON', packedMembers: 0 },
  { key: 'msgpack', name: 'all MessagePack', packedMembers: ROOM },
  { key: 'mixed', name: 'half and half', packedMembers: ROOM / 2 },
] as const;

async function broadcast(): Promise<void> {
  const server = await startServer(new URL('./servers/broadcast-contenders.js', import.meta.url).pathname, 0, { CONTENDER: 'plugin' });
  const url = `ws://127.0.0.1:${server.port}/broadcast`;
  const opened: LoadConnection[] = [];
  try {
    // One room per mix, each with members of its own.
    const members = new Map<string, LoadConnection[]>();
    for (const mix of ROOM_MIXES) {
      const json = await openMany(url, ROOM - mix.packedMembers);
      const packed = await openMany(url, mix.packedMembers, 200, MSGPACK_HEADER);
      await joinRooms(json, () => [mix.key]);
      await joinRooms(packed, () => [mix.key], 1000, 20_000, true);
      members.set(mix.key, [...json, ...packed]);
      opened.push(...json, ...packed);
    }
    const publisher = await openConnection(url);
    opened.push(publisher);
    const run = (key: string): Promise<BroadcastResult> => {
      const data = { text: 'x'.repeat(40) };
      const frame = maskedTextFrame(JSON.stringify({ event: 'publish', data: { room: key, data } }));
      return broadcastRun(publisher, members.get(key)!, ROOM, frame, {
        pipeline: ROOM_PIPELINE,
        durationMs: ROOM_RUN_MS,
        warmUpMs: 200,
        cpuSeconds: () => server.cpuSeconds(),
        systemSeconds: () => server.systemSeconds(),
      });
    };
    for (const mix of ROOM_MIXES) {
      await run(mix.key); // warm-up
    }
    const results = new Map<string, BroadcastResult[]>(ROOM_MIXES.map((mix) => [mix.key, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const mix of shuffled(ROOM_MIXES)) {
        results.get(mix.key)!.push(await run(mix.key));
      }
    }
    console.log(`broadcast to a room of ${ROOM.toLocaleString('en')}, 64-byte push, ${ROUNDS} rounds, server on core 0:`);
    for (const mix of ROOM_MIXES) {
      const runs = results.get(mix.key)!;
      const problems = runs.reduce((sum, result) => sum + result.missing + result.stray, 0);
      console.log(
        `    ${mix.name.padEnd(16)} ${Math.round(median(runs.map((r) => r.deliveriesPerSecond)))
          .toString()
          .padStart(8)} deliveries/s  last recipient p50 ${median(runs.map((r) => r.p50)).toFixed(2)}  ` +
          `p99 ${median(runs.map((r) => r.p99)).toFixed(2)} ms${notServerBound(runs)}${problems > 0 ? `  !!! ${problems} deliveries missing or stray` : ''}`,
      );
    }
    const rate = (key: string) => results.get(key)!.map((r) => ({ rate: r.deliveriesPerSecond, cpu: r.cpu }));
    console.log(`    all ${ratio(rate('msgpack'), rate('json'))}`);
    console.log(
      `    half and half / all JSON: ${median(rate('mixed').map((r, i) => r.rate / rate('json')[i]!.rate)).toFixed(2)}x throughput`,
    );
  } finally {
    resetAll(opened);
    await server.stop();
  }
}

pinSelf(1);
await echo();
await broadcast();
