// A handshake load generator: raw TCP sockets, each writing one upgrade request and timing
// TCP connect -> `101 Switching Protocols` (or, for a protocol with its own open frame,
// -> that frame), then destroyed at once. A fixed number of handshakes is kept outstanding:
// every completed one starts another. It parses nothing but the status line and, where
// asked, the first frame's header: the client's core does as little as it can per handshake.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { LatencyRecorder } from './latency.js';
import { sleep } from './ws-load.js';

/** What to hand-shake with, and when a handshake counts as complete. */
export interface HandshakeTarget {
  readonly port: number;
  /** Path and query of the upgrade request. */
  readonly path: string;
  /** Extra header lines (each ending in CRLF) of handshake number `i`, e.g. its own token. */
  headers?(i: number): string;
  /** Complete only once the first WebSocket frame after the 101 has arrived (Socket.IO's `0{...}` open packet). */
  readonly untilFirstFrame?: boolean;
}

/** One timed window of handshakes. */
export interface HandshakeResult {
  /** Handshakes completed per second in the window. */
  readonly rate: number;
  /** Latency percentiles in ms, TCP connect to completion. */
  readonly p50: number;
  readonly p99: number;
  /** Handshakes started in this call, warm-up and drain included. */
  readonly started: number;
  /** Handshakes that failed (refused, reset, no free port...). */
  readonly failed: number;
  /** The first failure's message, if any. */
  readonly firstError?: string;
  /** Server CPU over the window, as a share of one core (its process's user + system time). */
  readonly serverCpu: number;
  /** Each core over the window, from /proc/stat. */
  readonly cores: readonly CoreShare[];
}

/** How busy one core was over a window, as shares of the window. */
export interface CoreShare {
  /** Everything but idle and iowait. */
  readonly busy: number;
  /** Of which softirq: the kernel's network work, in no process's CPU time. */
  readonly softirq: number;
}

// Any valid key: servers do not require it to be fresh, and it costs the generator nothing.
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/** Index of the end of the HTTP head in `buffer` (after CRLF CRLF), or -1. */
function headEnd(buffer: Buffer): number {
  const at = buffer.indexOf('\r\n\r\n');
  return at === -1 ? -1 : at + 4;
}

/** Whether `buffer` from `offset` holds one complete (unmasked, server) frame. */
function hasWholeFrame(buffer: Buffer, offset: number): boolean {
  if (buffer.length - offset < 2) {
    return false;
  }
  let length = buffer[offset + 1]! & 0x7f;
  let header = 2;
  if (length === 126) {
    if (buffer.length - offset < 4) return false;
    length = buffer.readUInt16BE(offset + 2);
    header = 4;
  } else if (length === 127) {
    if (buffer.length - offset < 10) return false;
    length = Number(buffer.readBigUInt64BE(offset + 2));
    header = 10;
  }
  return buffer.length - offset >= header + length;
}

/**
 * One handshake against `target` on 127.0.0.1: resolves with its latency in ms once the
 * server has answered 101 (and, with `untilFirstFrame`, sent its first frame); the
 * socket is destroyed then. Rejects on anything else.
 */
export function handshakeOnce(target: HandshakeTarget, i: number): Promise<number> {
  const request =
    `GET ${target.path} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n${target.headers?.(i) ?? ''}\r\n`;
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const socket = connect({ host: '127.0.0.1', port: target.port, noDelay: true });
    let received: Buffer | undefined;
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) {
        reject(error);
      } else {
        resolve(performance.now() - startedAt);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      received = received ? Buffer.concat([received, chunk]) : chunk;
      const end = headEnd(received);
      if (end === -1) {
        return;
      }
      if (received.toString('latin1', 9, 12) !== '101') {
        finish(new Error(`handshake refused: ${received.toString('latin1', 0, received.indexOf('\r\n'))}`));
      } else if (!target.untilFirstFrame || hasWholeFrame(received, end)) {
        finish();
      }
    });
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('closed before the handshake completed')));
    socket.write(request);
  });
}

/**
 * Keeps `concurrency` handshakes outstanding against `target` for `warmUpMs`, then counts
 * and times those completed in the next `durationMs`, reading the server's CPU over that
 * window; then lets the outstanding ones finish. `nextIndex` numbers handshakes (each
 * gets its own headers, e.g. its own token) across calls.
 */
export async function handshakeLoop(
  target: HandshakeTarget,
  cpuSeconds: () => number,
  nextIndex: () => number,
  concurrency: number,
  durationMs: number,
  warmUpMs: number,
): Promise<HandshakeResult> {
  const latency = new LatencyRecorder();
  let recording = false;
  let running = true;
  let completed = 0;
  let started = 0;
  let failed = 0;
  let firstError: string | undefined;
  const lanes: Promise<void>[] = [];
  const lane = async (): Promise<void> => {
    while (running) {
      started++;
      try {
        const ms = await handshakeOnce(target, nextIndex());
        if (recording) {
          completed++;
          latency.record(ms);
        }
      } catch (error) {
        failed++;
        firstError ??= error instanceof Error ? error.message : String(error);
        // Back off a little: a failing server (or no free port) must not turn into a spin.
        await sleep(5);
      }
    }
  };
  for (let i = 0; i < concurrency; i++) {
    lanes.push(lane());
  }
  await sleep(warmUpMs);
  recording = true;
  const cpuBefore = cpuSeconds();
  const coresBefore = coreTimes();
  const startedAt = performance.now();
  await sleep(durationMs);
  recording = false;
  const seconds = (performance.now() - startedAt) / 1000;
  const serverCpu = (cpuSeconds() - cpuBefore) / seconds;
  const cores = coreShares(coresBefore, coreTimes());
  running = false;
  await Promise.all(lanes);
  const { p50, p99 } = latency.percentiles();
  return { rate: completed / seconds, p50, p99, started, failed, firstError, serverCpu, cores };
}

/** Clock ticks of one core so far. */
interface CoreTicks {
  readonly busy: number;
  readonly softirq: number;
  readonly total: number;
}

/** Per core, from /proc/stat: its clock ticks so far. */
function coreTimes(): CoreTicks[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((line) => /^cpu\d+ /.test(line))
    .map((line) => {
      // user nice system idle iowait irq softirq steal
      const ticks = line.split(/\s+/).slice(1, 9).map(Number);
      const total = ticks.reduce((sum, value) => sum + value, 0);
      return { busy: total - ticks[3]! - ticks[4]!, softirq: ticks[6]!, total };
    });
}

function coreShares(before: readonly CoreTicks[], after: readonly CoreTicks[]): CoreShare[] {
  return after.map((end, core) => {
    const start = before[core]!;
    const total = Math.max(1, end.total - start.total);
    return { busy: (end.busy - start.busy) / total, softirq: (end.softirq - start.softirq) / total };
  });
}

/** Sockets in TIME_WAIT on this machine (all of them, from /proc/net/sockstat). */
export function timeWaitSockets(): number {
  const match = /TCP:.*\btw (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'));
  return match ? Number(match[1]) : NaN;
}

/**
 * net.ipv4.tcp_tw_reuse: 2 (the kernel's default) or 1 lets a new connection take a local
 * port still in TIME_WAIT on loopback, so a run may make more handshakes to one server
 * than there are ephemeral ports; with 0 it fails past about 28,000 in a minute.
 */
export function twReuse(): string {
  try {
    return readFileSync('/proc/sys/net/ipv4/tcp_tw_reuse', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}
