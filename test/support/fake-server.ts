import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';

/** One connection the fake server accepted, with what its client sent. */
export interface FakeConnection {
  readonly socket: WebSocket;
  /** The subprotocols the client offered. */
  readonly protocols: string[];
  /** Parsed JSON frames received so far. */
  readonly frames: Record<string, unknown>[];
}

/**
 * An in-process WebSocket server whose behaviour each test scripts: what to do on each
 * connection and frame, and whether to refuse the next upgrades with an HTTP status.
 * For deterministic client tests; the real server is tested against the real adapter.
 */
export class FakeServer {
  readonly connections: FakeConnection[] = [];
  /** HTTP statuses to refuse the next upgrades with, in order. */
  readonly refusals: number[] = [];
  onConnection: (connection: FakeConnection) => void = () => undefined;
  onFrame: (connection: FakeConnection, frame: Record<string, unknown>) => void = () => undefined;
  private readonly http: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('realtime.v1') ? 'realtime.v1' : false),
  });
  private readonly waiters: (() => void)[] = [];

  private constructor() {
    this.http = createServer();
    this.http.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const status = this.refusals.shift();
      if (status !== undefined) {
        socket.end(`HTTP/1.1 ${status} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        return;
      }
      this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, request));
    });
  }

  static async start(): Promise<FakeServer> {
    const server = new FakeServer();
    await new Promise<void>((resolve) => server.http.listen(0, '127.0.0.1', resolve));
    return server;
  }

  /** A server on the port of `url` (of a fake server closed before). */
  static async startOn(url: string): Promise<FakeServer> {
    const server = new FakeServer();
    await new Promise<void>((resolve) => server.http.listen(Number(new URL(url).port), '127.0.0.1', resolve));
    return server;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.http.address() as AddressInfo).port}/fake`;
  }

  /** Resolves once `count` connections have been accepted in all. */
  async connectionCount(count: number): Promise<FakeConnection> {
    const deadline = Date.now() + 5000;
    while (this.connections.length < count) {
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} connections, got ${this.connections.length}`);
      }
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.connections[count - 1]!;
  }

  async close(): Promise<void> {
    for (const client of this.wss.clients) {
      client.terminate();
    }
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private accept(socket: WebSocket, request: IncomingMessage): void {
    const protocols = (request.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const connection: FakeConnection = { socket, protocols, frames: [] };
    this.connections.push(connection);
    socket.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as Record<string, unknown>;
      connection.frames.push(frame);
      this.onFrame(connection, frame);
    });
    this.onConnection(connection);
    this.waiters.splice(0).forEach((wake) => wake());
  }
}

/** The token a client offered as its `bearer.` subprotocol. */
export function offeredToken(connection: FakeConnection): string | undefined {
  return connection.protocols.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length);
}
