// A closed loop with a fixed mix of frames, on top of ws-load's raw connections: each
// connection cycles through a list of frames (say 9 valid, 1 invalid), keeps `inFlight`
// requests outstanding, and sorts every reply by its first bytes (a success reply, the
// expected error frame, or anything else) without parsing it. Counts cover the whole run,
// warm-up and drain included, so that sent and answered can be matched exactly.
import { type LoadConnection, sleep } from './ws-load.js';

/** One frame of the cycle: its masked bytes and whether it should be refused. */
export interface MixedFrame {
  readonly frame: Buffer;
  readonly invalid: boolean;
}

/** How replies are told apart: a reply starting with `errorPrefix` is the expected error frame. */
export interface ReplyPrefixes {
  readonly ok: Buffer;
  readonly error: Buffer;
}

/** What one mixed run sent and got back. */
export interface MixedResult {
  /** Replies per second in the measuring window. */
  readonly rate: number;
  /** The server's CPU share (0..1 of a core) over the window. */
  readonly cpu: number;
  /** This process's (the generator's) CPU share over the window. */
  readonly generatorCpu: number;
  /** Frames sent over the whole run, and of those the invalid ones. */
  readonly sent: number;
  readonly sentInvalid: number;
  /** Replies over the whole run: success replies, expected error frames, and others. */
  readonly ok: number;
  readonly errors: number;
  readonly other: number;
  /** The first reply that was neither, for the report. */
  readonly otherSample: string | undefined;
  /** Requests still unanswered after draining. */
  readonly unanswered: number;
  /** Connections the server closed during the run. */
  readonly closed: number;
}

/** Settings of {@link mixedLoop}. */
export interface MixedLoopOptions {
  readonly inFlight: number;
  readonly durationMs: number;
  readonly warmUpMs: number;
  /** Longest wait, once sending stops, for the last replies. */
  readonly drainMs?: number;
  /** The server's CPU seconds so far (`ServerProcess.cpuSeconds`). */
  readonly cpuSeconds: () => number;
}

/**
 * The bytes of `cycle` repeated `copies` times, with the offset of every frame's start and
 * how many invalid frames come before it, so that any run of consecutive frames is one
 * `subarray` and one subtraction.
 */
function unroll(cycle: readonly MixedFrame[], copies: number): { bytes: Buffer; offsets: number[]; invalidBefore: number[] } {
  const frames = Array.from({ length: copies }, () => cycle).flat();
  const offsets = [0];
  const invalidBefore = [0];
  for (const { frame, invalid } of frames) {
    offsets.push(offsets[offsets.length - 1]! + frame.length);
    invalidBefore.push(invalidBefore[invalidBefore.length - 1]! + (invalid ? 1 : 0));
  }
  return { bytes: Buffer.concat(frames.map(({ frame }) => frame)), offsets, invalidBefore };
}

/**
 * Closed loop over `connections` with the frames of `cycle` in turn (connection `i` starts
 * at frame `i % cycle.length`, so invalid frames are spread over time): every reply,
 * whatever its kind, lets one more frame go. Returns replies per second in the window, and
 * counts of what was sent and received over the whole run. Leaves the connections'
 * `intercept` and `onFrames` unset.
 */
export async function mixedLoop(
  connections: readonly LoadConnection[],
  cycle: readonly MixedFrame[],
  prefixes: ReplyPrefixes,
  options: MixedLoopOptions,
): Promise<MixedResult> {
  const { bytes, offsets, invalidBefore } = unroll(cycle, Math.ceil(options.inFlight / cycle.length) + 1);
  let running = true;
  let sent = 0;
  let sentInvalid = 0;
  let replies = 0;
  let ok = 0;
  let errors = 0;
  let other = 0;
  let otherSample: string | undefined;
  let closed = 0;
  const onClose = (): void => {
    closed++;
  };
  const classify = (payload: Buffer): boolean => {
    if (payload.subarray(0, prefixes.error.length).equals(prefixes.error)) {
      errors++;
    } else if (payload.subarray(0, prefixes.ok.length).equals(prefixes.ok)) {
      ok++;
    } else {
      other++;
      otherSample ??= payload.toString().slice(0, 200);
    }
    return false; // a reply all the same
  };
  connections.forEach((connection, index) => {
    let position = index % cycle.length;
    /** Writes the next `count` frames of the cycle, in one write when count ≤ inFlight. */
    const send = (count: number): void => {
      for (let left = count; left > 0;) {
        const now = Math.min(left, options.inFlight);
        connection.socket.write(bytes.subarray(offsets[position]!, offsets[position + now]!));
        sent += now;
        sentInvalid += invalidBefore[position + now]! - invalidBefore[position]!;
        position = (position + now) % cycle.length;
        left -= now;
      }
    };
    connection.intercept = classify;
    connection.onFrames = (count) => {
      replies += count;
      if (running) {
        send(count);
      }
    };
    connection.socket.once('close', onClose);
    send(options.inFlight);
  });

  await sleep(options.warmUpMs);
  const cpuBefore = options.cpuSeconds();
  const generatorBefore = process.cpuUsage();
  const repliesBefore = replies;
  const startedAt = performance.now();
  await sleep(options.durationMs);
  const seconds = (performance.now() - startedAt) / 1000;
  const rate = (replies - repliesBefore) / seconds;
  const cpu = (options.cpuSeconds() - cpuBefore) / seconds;
  const generator = process.cpuUsage(generatorBefore);
  const generatorCpu = (generator.user + generator.system) / 1e6 / seconds;
  running = false;
  const drainUntil = performance.now() + (options.drainMs ?? 2000);
  while (replies < sent && performance.now() < drainUntil) {
    await sleep(5);
  }
  // A little longer: a reply too many would come right behind the last one.
  await sleep(20);
  for (const connection of connections) {
    connection.intercept = undefined;
    connection.onFrames = undefined;
    connection.socket.off('close', onClose);
  }
  return { rate, cpu, generatorCpu, sent, sentInvalid, ok, errors, other, otherSample, unanswered: sent - replies, closed };
}
