// Scenario 4: room broadcast. Deliveries per second and last-recipient latency
// (publish written → the LAST member of the room has read it; p50/p99) for rooms of 10,
// 1,000 and 10,000 members, for two servers: the naive `ws` loop of the issue (rooms as
// Sets of sockets, `for (const ws of room) ws.send(JSON.stringify(...))`) and this
// plugin (a public gateway, servers/broadcast-plugin.ts, whose `publish` calls
// `RealtimeHub.emitToRoom` on the default in-memory broker). Both are up at once, each in
// its own process pinned to core 0; this raw-TCP load generator runs on core 1.
//
// How: members are raw connections that join rooms, then only count frames. A publisher
// keeps a small fixed pipeline of publishes outstanding (PIPELINE below: the next one goes
// when the oldest has reached every member), so the server has work while the generator
// reads the tail of the previous one. After each run, once drained, every member must have
// had every publish and connections outside the room nothing.
// The generator has 20,000 file descriptors, not enough for 10,000 members on both
// servers. So the rooms of 10 and 1,000 come first, with 1,000 members on each server
// (members 0–9 are in both rooms) and rounds interleaving the two servers. Then the room of
// 10,000, on one server at a time, its members opened for each visit and reset after it:
// naive, plugin, naive again. The naive runs before and after bracket the plugin's, so a
// drift of the machine's speed cancels out of the ratio, and their difference shows how
// large that drift was. Run: `npm run bench`.
import { type BroadcastResult, broadcastRun, joinRooms, openMany, resetAll } from './support/broadcast-load.js';
import { median, notServerBound } from './support/latency.js';
import { pinSelf, type ServerProcess, startServer } from './support/server-process.js';
import { type LoadConnection, maskedTextFrame, openConnection, sleep } from './support/ws-load.js';

const SMALL_SIZES = [10, 1_000] as const;
const LARGE = 10_000;
type RoomSize = (typeof SMALL_SIZES)[number] | typeof LARGE;
const SIZES: readonly RoomSize[] = [...SMALL_SIZES, LARGE];
/** Publishes outstanding per room size: enough to keep the server busy, few enough for a meaningful latency. */
const PIPELINE: Record<RoomSize, number> = { 10: 16, 1_000: 4, 10_000: 2 };
/** Measured window of one run, after a warm-up of WARM_UP_MS. */
const RUN_MS: Record<RoomSize, number> = { 10: 700, 1_000: 700, 10_000: 1000 };
const WARM_UP_MS = 200;
/** Interleaved rounds of the small rooms. */
const ROUNDS = 3;
/** Visits of the room of 10,000, in order, and the runs of each. */
const LARGE_VISITS: readonly (readonly [Contender['key'], number])[] = [
  ['naive', 2],
  ['plugin', 3],
  ['naive', 2],
];
const TARGET = 3;
/** Largest change of the naive loop's rate between its visits for the 10,000 verdict to count. */
const MAX_DRIFT = 0.1;

interface Contender {
  readonly key: 'naive' | 'plugin';
  readonly name: string;
  readonly path: string;
}

const contenders: readonly Contender[] = [
  { key: 'naive', name: 'naive ws loop (stringify per member)', path: '/' },
  { key: 'plugin', name: 'this plugin (RealtimeHub.emitToRoom)', path: '/broadcast' },
];

/** A contender's server and, while it has them, its connections. */
interface Side {
  readonly contender: Contender;
  readonly server: ServerProcess;
  readonly url: string;
  members: LoadConnection[];
  publisher?: LoadConnection;
}

/** One run's result, and the visit of the room of 10,000 it belongs to (0 for the small rooms). */
interface Run extends BroadcastResult {
  readonly visit: number;
}

type Results = Map<Contender['key'], Map<RoomSize, Run[]>>;

/** The room made of the first `size` members. */
function roomName(size: RoomSize): string {
  return `r${size}`;
}

/** The publish frame of a room, such that the pushed `{"event":"message","room","data"}` is 64 bytes. */
function publishFrame(size: RoomSize): Buffer {
  const room = roomName(size);
  const bare = JSON.stringify({ event: 'message', room, data: { text: '' } }).length;
  const data = { text: 'x'.repeat(Math.max(1, 64 - bare)) };
  return maskedTextFrame(JSON.stringify({ event: 'publish', data: { room, data } }));
}

/** Opens `count` members and a publisher on `side`, and joins member `i` to every room of `sizes` larger than `i`. */
async function populate(side: Side, count: number, sizes: readonly RoomSize[]): Promise<void> {
  side.members = await openMany(side.url, count);
  side.publisher = await openConnection(side.url);
  await joinRooms(side.members, (index) => sizes.filter((size) => index < size).map(roomName));
}

/** Resets every connection of `side`, and lets its server take the closes. */
async function depopulate(side: Side): Promise<void> {
  resetAll([...side.members, ...(side.publisher ? [side.publisher] : [])]);
  side.members = [];
  side.publisher = undefined;
  await sleep(300);
}

/** One timed run of the room of `size` on `side`, whose first `size` members are the room. */
function run(side: Side, size: RoomSize): Promise<BroadcastResult> {
  return broadcastRun(side.publisher!, side.members, size, publishFrame(size), {
    pipeline: PIPELINE[size],
    durationMs: RUN_MS[size],
    warmUpMs: WARM_UP_MS,
    cpuSeconds: () => side.server.cpuSeconds(),
    systemSeconds: () => side.server.systemSeconds(),
  });
}

const rate = (result: BroadcastResult): number => result.deliveriesPerSecond;
const percent = (share: number): string => `${Math.round(share * 100)}%`;
const mean = (values: readonly number[]): number => values.reduce((sum, value) => sum + value, 0) / values.length;

function formatRow(name: string, results: readonly BroadcastResult[]): string {
  const flag = notServerBound(results);
  return (
    `    ${name.padEnd(38)} ${Math.round(median(results.map(rate)))
      .toString()
      .padStart(8)} deliveries/s  ` +
    `last recipient p50 ${median(results.map((r) => r.p50)).toFixed(2)}  p99 ${median(results.map((r) => r.p99)).toFixed(2)} ms  ` +
    `server CPU ${percent(median(results.map((r) => r.cpu)))} (${percent(median(results.map((r) => r.kernelShare)))} of it in the kernel), ` +
    `${median(results.map((r) => r.framesPerRead)).toFixed(2)} pushes per member read${flag}`
  );
}

/** Loud lines for every run in which a member missed a publish or got a frame it should not have. */
function deliveryProblems(name: string, size: number, results: readonly BroadcastResult[]): string[] {
  return results
    .filter((result) => result.missing > 0 || result.stray > 0)
    .map(
      (result) =>
        `    !!! ${name}, room of ${size}: ${result.missing} deliveries MISSING (${result.membersMissing} members short of ` +
        `${result.sent} publishes), ${result.stray} unexpected frames`,
    );
}

/** The plugin/naive ratio line of the small rooms: runs of one round are seconds apart, so ratios pair them. */
function smallRatio(plugin: readonly Run[], naive: readonly Run[]): string {
  const ratio = median(plugin.map((result, i) => rate(result) / rate(naive[i]!)));
  const perCpu = median(plugin.map((result, i) => perCpuSecond(result) / perCpuSecond(naive[i]!)));
  return `    plugin / naive loop: ${ratio.toFixed(2)}x deliveries/s, ${perCpu.toFixed(2)}x per server CPU-second (median of per-round ratios)`;
}

/** Deliveries per second of server CPU: what the server would do on a full core, when the generator limited it. */
const perCpuSecond = (result: BroadcastResult): number => rate(result) / result.cpu;

/** The ratio lines of the room of 10,000: the plugin's median against the naive runs that bracket it. */
function largeRatio(plugin: readonly Run[], naive: readonly Run[]): string[] {
  const before = mean(naive.filter((result) => result.visit === 0).map(rate));
  const after = mean(naive.filter((result) => result.visit === LARGE_VISITS.length - 1).map(rate));
  const ratio = median(plugin.map(rate)) / ((before + after) / 2);
  const perCpu = median(plugin.map(perCpuSecond)) / mean(naive.map(perCpuSecond));
  const drift = after / before;
  const naiveBound = naive.some((result) => result.cpu < 0.85);
  // A plugin held back by the generator (not by its own core) is judged by what it does per CPU-second.
  const pluginBound = plugin.some((result) => result.cpu < 0.85);
  const verdict =
    ratio >= TARGET
      ? 'met'
      : pluginBound && !naiveBound && perCpu >= TARGET
        ? `met per server CPU-second; its throughput was held back by the generator`
        : 'NOT met';
  const doubts = [
    ...(Math.abs(drift - 1) > MAX_DRIFT ? [`the naive loop drifted ${drift.toFixed(2)}x around the plugin's runs`] : []),
    ...(naiveBound ? ['a naive run was not server-bound'] : []),
  ];
  return [
    `    naive loop before / after the plugin's runs: ${Math.round(before)} / ${Math.round(after)} deliveries/s ` +
      `(drift ${drift.toFixed(2)}x)`,
    `    plugin / naive loop: ${ratio.toFixed(2)}x deliveries/s, ${perCpu.toFixed(2)}x per server CPU-second ` +
      `(plugin median / mean of the naive runs around it)  (target >= ${TARGET}x: ${verdict})` +
      (doubts.length > 0 ? `  <- not conclusive, ${doubts.join(' and ')}: run it again` : ''),
  ];
}

function report(results: Results): void {
  console.log('broadcast, 64-byte push, servers on core 0, generator on core 1:');
  const problems: string[] = [];
  let publishes = 0;
  for (const size of SIZES) {
    const how =
      size === LARGE
        ? `runs of ${RUN_MS[size] / 1000} s, members reopened per visit: ${LARGE_VISITS.map(([key, runs]) => `${key} x${runs}`).join(', ')}`
        : `${ROUNDS} interleaved rounds of ${RUN_MS[size] / 1000} s`;
    console.log(`  room of ${size} members, ${PIPELINE[size]} publishes in flight, ${how}:`);
    for (const contender of contenders) {
      const runs = results.get(contender.key)!.get(size)!;
      console.log(formatRow(contender.name, runs));
      problems.push(...deliveryProblems(contender.name, size, runs));
      publishes += runs.reduce((sum, result) => sum + result.sent, 0);
    }
    const plugin = results.get('plugin')!.get(size)!;
    const naive = results.get('naive')!.get(size)!;
    for (const line of size === LARGE ? largeRatio(plugin, naive) : [smallRatio(plugin, naive)]) {
      console.log(line);
    }
  }
  if (problems.length > 0) {
    console.log('  !!! NOT EVERY MEMBER RECEIVED EVERY PUBLISH:');
    for (const problem of problems) {
      console.log(problem);
    }
  } else {
    console.log(`  every member received every publish, and nothing else: yes (${publishes} publishes checked)`);
  }
}

pinSelf(1);
const sides: Side[] = await Promise.all(
  contenders.map(async (contender) => {
    const server = await startServer(new URL('./servers/broadcast-contenders.js', import.meta.url).pathname, 0, {
      CONTENDER: contender.key,
    });
    return { contender, server, url: `ws://127.0.0.1:${server.port}${contender.path}`, members: [] };
  }),
);
const sideOf = (key: Contender['key']): Side => sides.find((side) => side.contender.key === key)!;
const results: Results = new Map(contenders.map((contender) => [contender.key, new Map(SIZES.map((size) => [size, []]))]));
const record = async (side: Side, size: RoomSize, visit = 0): Promise<void> => {
  results
    .get(side.contender.key)!
    .get(size)!
    .push({ ...(await run(side, size)), visit });
};
try {
  // Rooms of 10 and 1,000: both servers' members fit at once, so rounds interleave them.
  for (const side of sides) {
    await populate(side, SMALL_SIZES[SMALL_SIZES.length - 1]!, SMALL_SIZES);
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      for (const size of SMALL_SIZES) {
        await record(side, size);
      }
    }
  }
  for (const side of sides) {
    await depopulate(side);
  }
  // The room of 10,000: one server's members at a time.
  for (const [visit, [key, runs]] of LARGE_VISITS.entries()) {
    const side = sideOf(key);
    await populate(side, LARGE, [LARGE]);
    for (let i = 0; i < runs; i++) {
      await record(side, LARGE, visit);
    }
    await depopulate(side);
  }
  report(results);
} finally {
  for (const side of sides) {
    resetAll([...side.members, ...(side.publisher ? [side.publisher] : [])]);
  }
  await Promise.all(sides.map((side) => side.server.stop()));
}
