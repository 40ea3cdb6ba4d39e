import WebSocket, { type ClientOptions } from 'ws';
import { PROTOCOL_V1_MSGPACK } from '../../src/protocol/envelope.js';
import { pack, unpack } from '../../src/protocol/msgpack.js';

const WAIT_MS = 5000;

/**
 * A message as received: its frame when it decodes (a text frame as JSON, a binary frame as
 * MessagePack), its raw text and bytes.
 */
export type Received = { json: Record<string, unknown> | undefined; text: string; isBinary: boolean; bytes: Buffer };

/**
 * A real `ws` client that queues what it receives, so tests await the next frame or
 * the close instead of sleeping. Every wait fails after 5 s with a clear message, and at
 * once when no frame can come any more: a wait for a frame fails when the connection
 * closes, and any wait fails with the socket's error (the server broke the protocol: an
 * invalid frame, invalid UTF-8, a frame over `maxPayload`).
 */
export class TestClient {
  private readonly queue: Received[] = [];
  private readonly waiters: { resolve(message: Received): void; reject(error: Error): void }[] = [];
  /** Why no frame will come any more: the socket's error, else the close; undefined while open. */
  private ended: Error | undefined;
  /** The socket's error, if it had one (ws closes the connection after it). */
  error: Error | undefined;
  /** Resolves with the close code and reason however the connection ended, after an error too. */
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const text = data.toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = (isBinary ? unpack(data) : JSON.parse(text)) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      const message = { json, text, isBinary, bytes: data };
      const waiter = this.waiters.shift();
      waiter ? waiter.resolve(message) : this.queue.push(message);
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', (code: number, reason: Buffer) => {
        const text = reason.toString();
        this.end(new Error(`the connection closed (${code}${text ? ` ${text}` : ''}) before the frame awaited`));
        resolve({ code, reason: text });
      }),
    );
    // Listened to for good, so that an error never crashes the process: it fails what waits.
    socket.on('error', (error: Error) => {
      this.error ??= error;
      this.end(new Error(`the socket failed: ${error.message}`, { cause: error }));
    });
  }

  /** No frame will come any more: what waits for one fails with `why` (the first reason given). */
  private end(why: Error): void {
    this.ended ??= why;
    for (const waiter of this.waiters.splice(0)) {
      waiter.reject(this.ended);
    }
  }

  static connect(url: string, options: ClientOptions = {}, protocols?: string[]): Promise<TestClient> {
    const socket = new WebSocket(url, protocols, options);
    const client = new TestClient(socket);
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(client));
      socket.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused with HTTP ${res.statusCode}`)));
      socket.once('error', reject);
    });
  }

  /** Sends a frame: a string as it is, anything else in the connection's encoding (JSON, or MessagePack when selected). */
  send(frame: unknown): void {
    if (typeof frame === 'string') {
      this.socket.send(frame);
    } else {
      this.socket.send(this.socket.protocol === PROTOCOL_V1_MSGPACK ? pack(frame) : JSON.stringify(frame));
    }
  }

  /** The next frame, raw; fails at once when the connection closed or failed before it. */
  next(): Promise<Received> {
    const queued = this.queue.shift();
    if (queued) {
      return Promise.resolve(queued);
    }
    if (this.ended) {
      return Promise.reject(this.ended);
    }
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (message: Received): void => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error: Error): void => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error('no frame arrived within 5 s'));
      }, WAIT_MS);
      this.waiters.push(waiter);
    });
  }

  /** The next frame, which must be JSON. */
  async nextJson(): Promise<Record<string, unknown>> {
    const message = await this.next();
    if (!message.json) {
      throw new Error(`expected a JSON frame, got ${message.text}`);
    }
    return message.json;
  }

  /** Sends a frame and returns the next JSON frame. */
  async request(frame: unknown): Promise<Record<string, unknown>> {
    this.send(frame);
    return this.nextJson();
  }

  /** How many frames are queued and not yet read. */
  get pending(): number {
    return this.queue.length;
  }

  /** Waits for the close and returns its code and reason; fails with the socket's error if it had one. */
  async waitClosed(): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the connection did not close within 5 s')), WAIT_MS);
    });
    try {
      const closed = await Promise.race([this.closed, timeout]);
      if (this.error) {
        throw new Error(`the connection closed (${closed.code}) after a socket error: ${this.error.message}`, { cause: this.error });
      }
      return closed;
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) {
      this.socket.close();
    }
  }
}

/** What an HTTP upgrade attempt got instead of a WebSocket. */
export interface RefusedUpgrade {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** Attempts an upgrade that must be refused; resolves with the HTTP response. */
export function refusedUpgrade(url: string, options: ClientOptions = {}, protocols?: string[]): Promise<RefusedUpgrade> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols, options);
    socket.once('open', () => {
      socket.close();
      reject(new Error('the upgrade was accepted'));
    });
    socket.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    socket.once('error', (error) => reject(error));
  });
}
