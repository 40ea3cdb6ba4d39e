import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

/**
 * A hostile WebSocket client written by hand over TCP: it completes the upgrade, then
 * sends masked text frames whatever the server says, never answers a close frame and
 * never pongs. It reads what arrives (so the server's writes are not held up) and keeps
 * the close codes it was sent.
 */
export class RawWsClient {
  /** Close codes the server sent, in order. */
  readonly closeCodes: number[] = [];
  /** Resolves when the TCP connection ends, however it ended. */
  readonly ended: Promise<void>;
  private buffered = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    // Not events.once: an 'error' (a reset, say) would reject it; any end counts here.
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
  }

  /** Connects and upgrades `ws://host:port/path` with the given extra request headers. */
  static async connect(url: string, headers: Record<string, string> = {}): Promise<RawWsClient> {
    const { hostname, port, pathname, search } = new URL(url);
    const socket = connect(Number(port), hostname);
    await once(socket, 'connect');
    const lines = [
      `GET ${pathname}${search} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      'Sec-WebSocket-Version: 13',
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    ];
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let head = Buffer.alloc(0);
    for (;;) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end !== -1) {
        const status = head.subarray(0, head.indexOf('\r\n')).toString();
        if (!status.includes(' 101 ')) {
          socket.destroy();
          throw new Error(`upgrade refused: ${status}`);
        }
        const client = new RawWsClient(socket);
        client.read(head.subarray(end + 4));
        return client;
      }
    }
  }

  /** Sends one masked text frame (unless the socket is gone); never waits. */
  sendText(text: string): void {
    const payload = Buffer.from(text);
    const mask = randomBytes(4);
    const length = payload.length;
    const header =
      length < 126
        ? Buffer.from([0x81, 0x80 | length])
        : Buffer.from([0x81, 0x80 | 126, length >> 8, length & 0xff]);
    const masked = Buffer.alloc(length);
    for (let i = 0; i < length; i++) {
      masked[i] = payload[i]! ^ mask[i % 4]!;
    }
    if (!this.socket.destroyed) {
      this.socket.write(Buffer.concat([header, mask, masked]));
    }
  }

  get isOpen(): boolean {
    return !this.socket.destroyed;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Parses unmasked server frames just enough to note close codes. */
  private read(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    for (;;) {
      if (this.buffered.length < 2) {
        return;
      }
      const opcode = this.buffered[0]! & 0x0f;
      let length = this.buffered[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.buffered.length < 4) return;
        length = this.buffered.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.buffered.length < 10) return;
        length = Number(this.buffered.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.buffered.length < offset + length) {
        return;
      }
      if (opcode === 0x8 && length >= 2) {
        this.closeCodes.push(this.buffered.readUInt16BE(offset));
      }
      this.buffered = this.buffered.subarray(offset + length);
    }
  }
}
