import WebSocket, { type ClientOptions } from 'ws';

const WAIT_MS = 5000;

/** A message as received: parsed JSON when it parses, else the raw text. */
export type Received = { json: Record<string, unknown> | undefined; text: string; isBinary: boolean };

/**
 * A real `ws` client that queues what it receives, so tests await the next frame or
 * the close instead of sleeping. Every wait fails after 5 s with a clear message.
 */
export class TestClient {
  private readonly queue: Received[] = [];
  private readonly waiters: ((message: Received) => void)[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      const text = data.toString();
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      const message = { json, text, isBinary };
      const waiter = this.waiters.shift();
      waiter ? waiter(message) : this.queue.push(message);
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
    socket.on('error', () => undefined);
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

  send(frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next frame, raw. */
  next(): Promise<Received> {
    const queued = this.queue.shift();
    if (queued) {
      return Promise.resolve(queued);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error('no frame arrived within 5 s'));
      }, WAIT_MS);
      const waiter = (message: Received): void => {
        clearTimeout(timer);
        resolve(message);
      };
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

  /** Waits for the close and returns its code and reason. */
  async waitClosed(): Promise<{ code: number; reason: string }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the connection did not close within 5 s')), WAIT_MS);
    });
    try {
      return await Promise.race([this.closed, timeout]);
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
