// Room broadcast load on top of ws-load's raw connections: members that join rooms and
// then only count the frames they receive, and one publisher that keeps a fixed number of
// publishes outstanding. A publish is complete when the LAST member of the room has it;
// its latency is publish written → that last frame read. Nothing is parsed during a run:
// pushes of one publisher reach every member in publish order, so a member's n-th frame of
// the run is the n-th publish, and counting is enough to match them.
import { LatencyRecorder } from './latency.js';
import { pack, unpack } from '../../src/protocol/msgpack.js';
import { type LoadConnection, maskedFrame, maskedTextFrame, openConnection, sleep } from './ws-load.js';

/** Opens `count` connections to `url`, `concurrency` handshakes at a time, with `headers` (a subprotocol, say). */
export async function openMany(url: string, count: number, concurrency = 200, headers?: Record<string, string>): Promise<LoadConnection[]> {
  const connections: LoadConnection[] = [];
  while (connections.length < count) {
    const batch = Math.min(concurrency, count - connections.length);
    connections.push(...(await Promise.all(Array.from({ length: batch }, () => openConnection(url, headers)))));
  }
  return connections;
}

/**
 * Resets and closes every connection: an RST rather than a FIN, so that the thousands of
 * client ports a run used do not linger in TIME_WAIT before the next contender's members.
 */
export function resetAll(connections: readonly LoadConnection[]): void {
  for (const connection of connections) {
    connection.onFrames = undefined;
    connection.intercept = undefined;
    connection.socket.resetAndDestroy();
  }
}

/**
 * Joins member `i` to the rooms `roomsOf(i)` with `{"event":"join","id":1,"data":<room>}`
 * frames, `batch` members at a time (each batch written at once, then awaited), and
 * resolves when every join has been answered with a `join` reply. Rejects on the first
 * other answer (an error frame: a limit refused the join) or when the answers are not all
 * in after `timeoutMs`. With `packed`, the members speak MessagePack: the frames are binary.
 */
export async function joinRooms(
  members: readonly LoadConnection[],
  roomsOf: (index: number) => readonly string[],
  batch = 1000,
  timeoutMs = 20_000,
  packed = false,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let first = 0; first < members.length; first += batch) {
    await joinBatch(members.slice(first, first + batch), (index) => roomsOf(first + index), deadline, packed);
  }
}

async function joinBatch(
  members: readonly LoadConnection[],
  roomsOf: (index: number) => readonly string[],
  deadline: number,
  packed: boolean,
): Promise<void> {
  const joinReply = Buffer.from('{"event":"join"');
  const isJoinReply = (payload: Buffer): boolean =>
    packed ? (unpack(payload) as { event?: unknown }).event === 'join' : payload.subarray(0, joinReply.length).equals(joinReply);
  const joinFrame = (room: string): Buffer =>
    packed
      ? maskedFrame(0x82, Buffer.from(pack({ event: 'join', id: 1, data: room })))
      : maskedTextFrame(JSON.stringify({ event: 'join', id: 1, data: room }));
  let refusal: string | undefined;
  let expected = 0;
  const base = members.map((member) => member.received);
  members.forEach((member, index) => {
    const rooms = roomsOf(index);
    expected += rooms.length;
    member.intercept = (payload) => {
      if (refusal === undefined && !isJoinReply(payload)) {
        refusal = payload.toString();
      }
      return false;
    };
    member.socket.write(Buffer.concat(rooms.map(joinFrame)));
  });
  const answered = (): number => members.reduce((sum, member, index) => sum + member.received - base[index]!, 0);
  while (refusal === undefined && answered() < expected && performance.now() < deadline) {
    await sleep(2);
  }
  for (const member of members) {
    member.intercept = undefined;
  }
  if (refusal !== undefined) {
    throw new Error(`a join was refused: ${refusal}`);
  }
  if (answered() < expected) {
    throw new Error(`joins unanswered in time: ${expected - answered()} of ${expected} in a batch`);
  }
}

/** How one broadcast run went. */
export interface BroadcastResult {
  /** Member frames received per second in the measuring window. */
  readonly deliveriesPerSecond: number;
  /** Publishes completed (reached the last member) per second in the window. */
  readonly publishesPerSecond: number;
  /** Publish → last member, ms, of publishes sent in the window. */
  readonly p50: number;
  readonly p99: number;
  /** The server's CPU share (0..1 of a core) over the window. */
  readonly cpu: number;
  /** The share of that CPU spent in the kernel (0..1): system calls, socket writes mostly. */
  readonly kernelShare: number;
  /** Frames the room's members received per read in the window: how many pushes each socket write carried, about. */
  readonly framesPerRead: number;
  /** This process's (the generator's) CPU share over the window. */
  readonly generatorCpu: number;
  /** Publishes sent in the whole run (warm-up and window). */
  readonly sent: number;
  /** Deliveries still missing after draining, summed over the room's members. */
  readonly missing: number;
  /** Members that missed at least one publish. */
  readonly membersMissing: number;
  /** Frames received by connections outside the room, or beyond what was published. */
  readonly stray: number;
}

/** Settings of {@link broadcastRun}. */
export interface BroadcastRunOptions {
  /** Publishes outstanding at any time: the next one is sent when the oldest has reached every member. */
  readonly pipeline: number;
  readonly durationMs: number;
  readonly warmUpMs: number;
  /** How long to wait, once publishing stops, for the last publishes to reach everyone. */
  readonly drainMs?: number;
  /** The server's CPU seconds so far (`ServerProcess.cpuSeconds`). */
  readonly cpuSeconds: () => number;
  /** Of those, the seconds in the kernel (`ServerProcess.systemSeconds`). */
  readonly systemSeconds: () => number;
}

const RING = 1024;

/**
 * One broadcast run: `publisher` writes `publishFrame` (a masked `publish` to the room)
 * whenever fewer than `pipeline` publishes are incomplete; `members[0..roomSize)` are the
 * room, the other members must receive nothing. After the window, publishing stops and
 * the run drains, then every member's count is checked against the publishes sent.
 */
export async function broadcastRun(
  publisher: LoadConnection,
  members: readonly LoadConnection[],
  roomSize: number,
  publishFrame: Buffer,
  options: BroadcastRunOptions,
): Promise<BroadcastResult> {
  if (options.pipeline >= RING) {
    throw new RangeError(`pipeline must be below ${RING}`);
  }
  const remaining = new Int32Array(RING);
  const sentAt = new Float64Array(RING);
  /** Frames each member of the room has received in this run. */
  const got = new Int32Array(roomSize);
  const latency = new LatencyRecorder();
  let sent = 0;
  let completed = 0;
  let delivered = 0;
  /** Chunks read by the room's members (each one or more frames). */
  let reads = 0;
  let stray = 0;
  let running = true;
  /** Publishes numbered from here on are timed; Infinity during the warm-up. */
  let firstTimed = Infinity;

  const publish = (): void => {
    const slot = sent % RING;
    remaining[slot] = roomSize;
    sentAt[slot] = performance.now();
    sent++;
    publisher.socket.write(publishFrame);
  };
  const complete = (index: number, now: number): void => {
    completed++;
    if (index >= firstTimed) {
      latency.record(now - sentAt[index % RING]!);
    }
    if (running) {
      publish();
    }
  };
  members.forEach((member, position) => {
    member.onFrames =
      position >= roomSize
        ? (count) => {
            stray += count;
          }
        : (count) => {
            delivered += count;
            reads++;
            const now = performance.now();
            for (let i = 0; i < count; i++) {
              const index = got[position]++;
              if (index >= sent) {
                stray++;
              } else if (--remaining[index % RING] === 0) {
                complete(index, now);
              }
            }
          };
  });

  for (let i = 0; i < options.pipeline; i++) {
    publish();
  }
  await sleep(options.warmUpMs);
  firstTimed = sent;
  const cpuBefore = options.cpuSeconds();
  const systemBefore = options.systemSeconds();
  const readsBefore = reads;
  const generatorBefore = process.cpuUsage();
  const deliveredBefore = delivered;
  const completedBefore = completed;
  const startedAt = performance.now();
  await sleep(options.durationMs);
  const seconds = (performance.now() - startedAt) / 1000;
  const cpuSeconds = options.cpuSeconds() - cpuBefore;
  const cpu = cpuSeconds / seconds;
  const kernelShare = cpuSeconds > 0 ? (options.systemSeconds() - systemBefore) / cpuSeconds : 0;
  const generator = process.cpuUsage(generatorBefore);
  const generatorCpu = (generator.user + generator.system) / 1e6 / seconds;
  const deliveries = delivered - deliveredBefore;
  const framesPerRead = deliveries / Math.max(1, reads - readsBefore);
  const publishes = completed - completedBefore;
  firstTimed = Infinity;
  running = false;

  const drainUntil = performance.now() + (options.drainMs ?? 3000);
  while (completed < sent && performance.now() < drainUntil) {
    await sleep(5);
  }
  // A little longer: a duplicate or stray frame would come right behind the last one.
  await sleep(20);
  let missing = 0;
  let membersMissing = 0;
  for (let position = 0; position < roomSize; position++) {
    const short = sent - got[position]!;
    if (short > 0) {
      missing += short;
      membersMissing++;
    }
  }
  for (const member of members) {
    member.onFrames = undefined;
  }
  const { p50, p99 } = latency.percentiles();
  return {
    deliveriesPerSecond: deliveries / seconds,
    publishesPerSecond: publishes / seconds,
    p50,
    p99,
    cpu,
    kernelShare,
    framesPerRead,
    generatorCpu,
    sent,
    missing,
    membersMissing,
    stray,
  };
}
