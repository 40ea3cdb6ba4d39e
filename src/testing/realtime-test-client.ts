import type { INestApplication } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import WebSocket from 'ws';
import { PROTOCOL_V1_MSGPACK, type ValidationErrorDetail } from '../protocol/envelope.js';
import { pack, unpack } from '../protocol/msgpack.js';

/** Options of {@link RealtimeTestClient.connect}. */
export interface TestClientOptions {
  /** A token for the handshake, sent as `Authorization: Bearer <token>` (see `signTestToken`). */
  token?: string;
  /** More handshake headers, e.g. `Origin`. */
  headers?: Readonly<Record<string, string>>;
  /** How long a handshake, a request or `next()` may take before it fails, in ms. Default 5000. */
  timeoutMs?: number;
  /** For an app served over TLS (`wss://`): the certificate authority to trust, e.g. a test's self-signed certificate. */
  ca?: string | Buffer;
  /**
   * `msgpack`: speak the MessagePack encoding (binary frames; bytes in `data` arrive as
   * `Uint8Array`s). Default `json`.
   */
  encoding?: 'json' | 'msgpack';
}

/** A push the server sent (a frame without `id`): a room message, a broadcast, an error without id. */
export interface TestPush<T = unknown> {
  /** Its event; `raw` for a frame that is not a JSON object (a raw text handler's answer). */
  readonly event: string;
  /** Its data; the frame's text for a `raw` push. */
  readonly data: T;
  /** The room of a room message. */
  readonly room?: string;
  /** The room message's offset, while room history is on. */
  readonly offset?: number;
}

/** A request the server answered with an error frame. */
export class RealtimeTestError extends Error {
  /** The error code, e.g. `VALIDATION_FAILED`. */
  readonly code: string;
  /** The error's details, e.g. the properties that failed validation. */
  readonly details?: readonly (ValidationErrorDetail | unknown)[];

  constructor(code: string, message: string, details?: readonly (ValidationErrorDetail | unknown)[]) {
    super(`${code}: ${message}`);
    this.name = 'RealtimeTestError';
    this.code = code;
    this.details = details;
  }
}

interface Frame {
  event?: unknown;
  id?: unknown;
  data?: unknown;
  room?: unknown;
  offset?: unknown;
}

/**
 * A WebSocket client for end-to-end tests of an application: it connects to a gateway of a
 * listening app (`await app.listen(0)`), matches each request with its reply by id, and
 * queues pushes for {@link next}. Replies and pushes are frames of the plugin's
 * protocol, in JSON or, with `encoding: 'msgpack'`, in MessagePack.
 *
 * @example
 * const client = await RealtimeTestClient.connect(app, '/chat', { token: await signTestToken(app, { sub: 'alice' }) });
 * await client.request('join', { room: 'lobby' });
 * const push = await client.next('message');
 */
export class RealtimeTestClient {
  private nextId = 1;
  private readonly replies = new Map<string, { resolve(frame: Frame): void; reject(error: Error): void }>();
  /** Ids whose requests timed out: a late reply to one is dropped, not taken for a push. */
  private readonly abandoned = new Set<string>();
  private readonly pushes: TestPush[] = [];
  private readonly waiting: { event: string; resolve(push: TestPush): void; reject(error: Error): void }[] = [];
  private readonly closedPromise: Promise<{ code: number; reason: string }>;
  private closedWith: { code: number; reason: string } | undefined;

  /** Frames go binary, in MessagePack. */
  private readonly binary: boolean;

  private constructor(
    /** The underlying `ws` socket, for what the helpers do not cover (raw frames, pings). */
    readonly socket: WebSocket,
    private readonly timeoutMs: number,
  ) {
    this.binary = socket.protocol === PROTOCOL_V1_MSGPACK;
    this.closedPromise = new Promise((resolve) =>
      socket.once('close', (code, reason) => {
        this.closedWith = { code, reason: reason.toString() };
        // What still waits gets its answer now: none will come.
        const error = new Error(`the connection closed (${code}${this.closedWith.reason ? ` ${this.closedWith.reason}` : ''})`);
        [...this.replies.values()].forEach((reply) => reply.reject(error));
        this.replies.clear();
        this.waiting.splice(0).forEach((waiter) => waiter.reject(error));
        resolve(this.closedWith);
      }),
    );
    socket.on('message', (data: Buffer, isBinary) => {
      if (!isBinary) {
        const text = data.toString();
        const frame = parseObject(text);
        // Not a protocol frame: a raw text handler's answer.
        frame ? this.receive(frame) : this.deliver({ event: 'raw', data: text });
      } else if (this.binary) {
        const frame = unpackObject(data);
        frame ? this.receive(frame) : this.deliver({ event: 'raw', data });
      }
    });
  }

  /**
   * Connects to `path` of a listening app (or of a base URL such as `ws://127.0.0.1:3000`).
   * Rejects when the handshake is refused, with the HTTP status in the message.
   */
  static connect(target: INestApplication | string, path: string, options: TestClientOptions = {}): Promise<RealtimeTestClient> {
    if (!path.startsWith('/')) {
      return Promise.reject(new TypeError(`a gateway path starts with "/", got ${JSON.stringify(path)}`));
    }
    const timeoutMs = options.timeoutMs ?? 5000;
    const headers = { ...options.headers, ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }) };
    if (options.encoding !== undefined && options.encoding !== 'json' && options.encoding !== 'msgpack') {
      return Promise.reject(new TypeError(`encoding is 'json' or 'msgpack', got ${JSON.stringify(options.encoding)}`));
    }
    const protocols = options.encoding === 'msgpack' ? [PROTOCOL_V1_MSGPACK] : [];
    const socket = new WebSocket(`${baseUrl(target)}${path}`, protocols, { headers, handshakeTimeout: timeoutMs, ca: options.ca });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new RealtimeTestClient(socket, timeoutMs)));
      socket.once('unexpected-response', (_request, response) => {
        socket.terminate();
        reject(new Error(`the handshake to ${path} was refused: HTTP ${response.statusCode}`));
      });
      socket.once('error', reject);
    });
  }

  /** Sends a request and resolves with its reply's `data`; rejects with a {@link RealtimeTestError} for an error reply. */
  request<T = unknown>(event: string, data?: unknown): Promise<T> {
    const id = `t${this.nextId++}`;
    if (this.socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error(`"${event}" not sent: the connection is not open`));
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(id);
        this.abandoned.add(id);
        reject(new Error(`no reply to "${event}" within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.replies.set(id, {
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
        resolve: (frame) => {
          clearTimeout(timer);
          if (frame.event === 'error') {
            const error = (frame.data ?? {}) as { code?: unknown; message?: unknown; details?: unknown };
            reject(
              new RealtimeTestError(String(error.code), String(error.message), Array.isArray(error.details) ? error.details : undefined),
            );
          } else {
            resolve(frame.data as T);
          }
        },
      });
      this.write(data === undefined ? { event, id } : { event, id, data });
    });
  }

  /** Sends a message without id (no reply unless the handler returns one, which then comes as a push). */
  send(event: string, data?: unknown): void {
    this.write(data === undefined ? { event } : { event, data });
  }

  private write(frame: object): void {
    this.socket.send(this.binary ? pack(frame) : JSON.stringify(frame));
  }

  /** The next push of `event` (those that came before and were not taken yet included). */
  next<T = unknown>(event: string): Promise<TestPush<T>> {
    const index = this.pushes.findIndex((push) => push.event === event);
    if (index >= 0) {
      return Promise.resolve(this.pushes.splice(index, 1)[0] as TestPush<T>);
    }
    if (this.closedWith) {
      return Promise.reject(new Error(`no "${event}" push: the connection closed (${this.closedWith.code})`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new Error(`no "${event}" push within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const waiter = {
        event,
        resolve: (push: TestPush) => {
          clearTimeout(timer);
          resolve(push as TestPush<T>);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiting.push(waiter);
    });
  }

  /**
   * The pushes that arrived and that no {@link next} has taken yet, oldest first (a copy:
   * nothing is taken). The server sends a connection's frames in order, so once a
   * `request()` resolves, every push sent before its reply is listed here: an empty list
   * then shows that nothing unexpected arrived.
   *
   * @example
   * await bob.request('rooms'); // a round trip
   * expect(bob.pendingPushes()).toEqual([]); // bob got no push before it
   */
  pendingPushes(): TestPush[] {
    return [...this.pushes];
  }

  /** Resolves with the close code and reason once the connection is closed. */
  closed(): Promise<{ code: number; reason: string }> {
    return this.closedPromise;
  }

  /** Closes the connection (code 1000). */
  close(): void {
    this.socket.close(1000);
  }

  private receive(frame: Frame): void {
    const reply = typeof frame.id === 'string' ? this.replies.get(frame.id) : undefined;
    if (reply) {
      this.replies.delete(frame.id as string);
      reply.resolve(frame);
      return;
    }
    if (typeof frame.id === 'string' && this.abandoned.delete(frame.id)) {
      return; // the reply to a request that already timed out
    }
    this.deliver({
      event: String(frame.event),
      data: frame.data,
      ...(typeof frame.room === 'string' ? { room: frame.room } : {}),
      ...(typeof frame.offset === 'number' ? { offset: frame.offset } : {}),
    });
  }

  private deliver(push: TestPush): void {
    const index = this.waiting.findIndex((waiter) => waiter.event === push.event);
    if (index >= 0) {
      this.waiting.splice(index, 1)[0]!.resolve(push);
    } else {
      this.pushes.push(push);
    }
  }
}

/** `text` as a JSON object, or undefined when it is not one. */
function parseObject(text: string): Frame | undefined {
  try {
    return asFrame(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** `bytes` as a MessagePack map, or undefined when they are not one. */
function unpackObject(bytes: Uint8Array): Frame | undefined {
  try {
    return asFrame(unpack(bytes));
  } catch {
    return undefined;
  }
}

function asFrame(value: unknown): Frame | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) ? (value as Frame) : undefined;
}

/** `ws://host:port` (`wss://` over TLS) of a listening app, or the given base URL without a trailing slash. */
function baseUrl(target: INestApplication | string): string {
  if (typeof target === 'string') {
    return target.replace(/\/$/, '');
  }
  const address = (target.getHttpServer() as { address(): AddressInfo | string | null }).address();
  if (!address || typeof address === 'string') {
    throw new Error('the app is not listening on a TCP port: call `await app.listen(0)` first');
  }
  const anyAddress = address.address === '::' || address.address === '0.0.0.0';
  const host = anyAddress ? '127.0.0.1' : address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${target.getHttpServer() instanceof TlsServer ? 'wss' : 'ws'}://${host}:${address.port}`;
}
