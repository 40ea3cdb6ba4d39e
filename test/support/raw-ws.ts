import { type LoadConnection, maskedTextFrame, openConnection } from '../../bench/support/ws-load.js';

/**
 * A hostile WebSocket client over raw TCP (the benchmarks' load connection): it completes
 * the upgrade, then sends masked text frames whatever the server says and never answers a
 * close frame. It reads what arrives (so the server's writes are not held up) and keeps
 * the close codes it was sent.
 */
export class RawWsClient {
  /** Close codes the server sent, in order. */
  readonly closeCodes: number[] = [];
  /** Resolves when the TCP connection ends, however it ended (a reset included). */
  readonly ended: Promise<void>;

  private constructor(private readonly connection: LoadConnection) {
    connection.onClose = (code) => this.closeCodes.push(code);
    connection.socket.on('error', () => undefined);
    this.ended = new Promise((resolve) => connection.socket.once('close', () => resolve()));
  }

  /** Connects and upgrades `ws://host:port/path` with the given extra request headers. */
  static async connect(url: string, headers: Record<string, string> = {}): Promise<RawWsClient> {
    return new RawWsClient(await openConnection(url, headers));
  }

  /** Sends one masked text frame (unless the socket is gone); never waits. */
  sendText(text: string): void {
    if (!this.connection.socket.destroyed) {
      this.connection.socket.write(maskedTextFrame(text));
    }
  }

  close(): void {
    this.connection.socket.destroy();
  }
}
