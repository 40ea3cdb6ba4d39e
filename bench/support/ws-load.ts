// A WebSocket load generator that is not the bottleneck: raw TCP sockets, one handshake
// each, and prebuilt masked frames written in batches. It counts reply frames without
// parsing them, so a client core can drive far more messages than the `ws` client can.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { LatencyRecorder } from './latency.js';

/** One raw WebSocket connection: frames written as bytes, reply frames counted. */
export interface LoadConnection {
  readonly socket: Socket;
  /** Reply frames (text or binary) received so far. */
  received: number;
  /** Protocol pings received (each answered with a pong). */
  pings: number;
  /** Send times of requests not answered yet, oldest first (closed-loop latency). */
  sentAt: number[];
  /** Frames the contender's protocol handles itself (Socket.IO's open, connect, ping): true = not a reply. */
  intercept?: (payload: Buffer, connection: LoadConnection) => boolean;
  /** Called with how many complete frames one chunk of bytes held. */
  onFrames?: (count: number) => void;
  /** Called with the code of a close frame from the server (which is never answered). */
  onClose?: (code: number) => void;
}

/** A masked client text frame of `payload`, built once and written as often as needed. */
export function maskedTextFrame(payload: string): Buffer {
  return maskedFrame(0x81, Buffer.from(payload));
}

/** A masked client frame: `first` is the FIN bit and opcode byte (0x81 text, 0x8a pong). */
export function maskedFrame(first: number, data: Buffer): Buffer {
  const length = data.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.alloc(header + 4 + length);
  frame[0] = first;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length < 65_536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, header);
  for (let i = 0; i < length; i++) {
    frame[header + 4 + i] = data[i]! ^ mask[i & 3]!;
  }
  return frame;
}

/** A masked client close frame with `code` (1000 when none is given). */
export function maskedCloseFrame(code = 1000): Buffer {
  return maskedFrame(0x88, Buffer.from([code >> 8, code & 0xff]));
}

/**
 * Opens one connection and completes the handshake; refuses anything but 101.
 * `localAddress` picks the source address (any of 127.0.0.0/8 on loopback).
 */
export function openConnection(
  url: string,
  headers: Record<string, string> = {},
  init?: (connection: LoadConnection) => void,
  localAddress?: string,
): Promise<LoadConnection> {
  const { hostname, port, pathname, search } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), noDelay: true, localAddress });
    const lines = [
      `GET ${pathname}${search} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    let head = Buffer.alloc(0);
    const onHandshake = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        return;
      }
      socket.off('data', onHandshake);
      const status = head.subarray(0, head.indexOf('\r\n')).toString();
      if (!status.includes(' 101 ')) {
        socket.destroy();
        reject(new Error(`handshake refused: ${status}`));
        return;
      }
      const connection: LoadConnection = { socket, received: 0, pings: 0, sentAt: [] };
      // Set up before the first frames, which may have come with the 101 response.
      init?.(connection);
      countFrames(connection, head.subarray(end + 4));
      resolve(connection);
    };
    socket.on('data', onHandshake);
    socket.once('error', reject);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  });
}

/** Counts the server's (unmasked) frames as they arrive, across chunk boundaries. */
function countFrames(connection: LoadConnection, initial: Buffer): void {
  let pending: Buffer = initial;
  const consume = (chunk: Buffer): void => {
    const buffer = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk;
    let offset = 0;
    let frames = 0;
    for (;;) {
      if (buffer.length - offset < 2) {
        break;
      }
      let length = buffer[offset + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buffer.length - offset < 4) break;
        length = buffer.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (buffer.length - offset < 10) break;
        length = Number(buffer.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (buffer.length - offset < header + length) {
        break;
      }
      const opcode = buffer[offset]! & 0x0f;
      const intercepted = opcode < 0x8 && connection.intercept?.(buffer.subarray(offset + header, offset + header + length), connection);
      if (intercepted) {
        // handled by the protocol's own logic: not a reply
      } else if (opcode === 0x9) {
        // A protocol ping: answer with a pong carrying the same payload, as browsers do.
        connection.pings++;
        connection.socket.write(maskedFrame(0x8a, buffer.subarray(offset + header, offset + header + length)));
      } else if (opcode < 0x8) {
        frames++;
      } else if (opcode === 0x8 && length >= 2) {
        connection.onClose?.(buffer.readUInt16BE(offset + header));
      }
      offset += header + length;
    }
    pending = offset === buffer.length ? Buffer.alloc(0) : buffer.subarray(offset);
    if (frames > 0) {
      connection.received += frames;
      connection.onFrames?.(frames);
    }
  };
  connection.socket.on('data', consume);
  if (initial.length > 0) {
    consume(Buffer.alloc(0));
  }
}

/** Opens `count` connections, a few at a time. */
export async function openConnections(
  url: string,
  count: number,
  headers?: Record<string, string>,
  init?: (connection: LoadConnection) => void,
): Promise<LoadConnection[]> {
  const connections: LoadConnection[] = [];
  while (connections.length < count) {
    const batch = Math.min(50, count - connections.length);
    connections.push(...(await Promise.all(Array.from({ length: batch }, () => openConnection(url, headers, init)))));
  }
  return connections;
}

/**
 * Closed loop: every connection keeps `inFlight` requests outstanding, sending one more
 * for each reply, for `durationMs` after a warm-up. Returns replies per second.
 */
export async function closedLoop(
  connections: readonly LoadConnection[],
  frame: Buffer,
  inFlight: number,
  durationMs: number,
  warmUpMs = 500,
): Promise<number> {
  const batch = batcher(frame);
  let running = true;
  for (const connection of connections) {
    connection.onFrames = (count) => {
      if (running) {
        connection.socket.write(batch(count));
      }
    };
    connection.socket.write(batch(inFlight));
  }
  await sleep(warmUpMs);
  const start = total(connections);
  const startedAt = process.hrtime.bigint();
  await sleep(durationMs);
  const replies = total(connections) - start;
  const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
  running = false;
  // Let what is in flight drain before the next run uses the connections.
  await sleep(200);
  return replies / seconds;
}

/** `count` copies of `frame` in one buffer, built once per count. */
function batcher(frame: Buffer): (count: number) => Buffer {
  const batches = new Map<number, Buffer>();
  return (count) => {
    let buffer = batches.get(count);
    if (!buffer) {
      buffer = Buffer.concat(Array.from({ length: count }, () => frame));
      batches.set(count, buffer);
    }
    return buffer;
  };
}

function total(connections: readonly LoadConnection[]): number {
  return connections.reduce((sum, connection) => sum + connection.received, 0);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Closes every connection. */
export function closeAll(connections: readonly LoadConnection[]): void {
  for (const connection of connections) {
    connection.socket.destroy();
  }
}

/** Throughput and latency of one closed-loop run. */
export interface LoopResult {
  /** Replies per second. */
  rate: number;
  /** Latency percentiles in ms: p50, p99, p99.9. */
  p50: number;
  p99: number;
  p999: number;
}

/**
 * Closed loop with latency: like {@link closedLoop}, and each reply is matched with the
 * oldest unanswered request of its connection (every contender answers in order).
 * `window` is told when the measured window (after the warm-up) starts and ends.
 */
export async function timedLoop(
  connections: readonly LoadConnection[],
  frame: Buffer,
  inFlight: number,
  durationMs: number,
  warmUpMs = 500,
  window?: { start(): void; end(): void },
): Promise<LoopResult> {
  let recording = false;
  let running = true;
  const latency = new LatencyRecorder();
  const batch = batcher(frame);
  const send = (connection: LoadConnection, count: number): void => {
    const now = performance.now();
    for (let i = 0; i < count; i++) {
      connection.sentAt.push(now);
    }
    connection.socket.write(batch(count));
  };
  for (const connection of connections) {
    connection.sentAt.length = 0;
    connection.onFrames = (count) => {
      const now = performance.now();
      for (let i = 0; i < count; i++) {
        const sent = connection.sentAt.shift();
        if (recording && sent !== undefined) {
          latency.record(now - sent);
        }
      }
      if (running) {
        send(connection, count);
      }
    };
    send(connection, inFlight);
  }
  await sleep(warmUpMs);
  recording = true;
  window?.start();
  const start = total(connections);
  const startedAt = performance.now();
  await sleep(durationMs);
  const replies = total(connections) - start;
  const seconds = (performance.now() - startedAt) / 1000;
  window?.end();
  recording = false;
  running = false;
  await sleep(200);
  const { p50, p99, p999 } = latency.percentiles();
  return { rate: replies / seconds, p50, p99, p999 };
}
