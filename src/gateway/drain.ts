import { CloseCode } from '../protocol/close-codes.js';
import type { ShutdownSettings } from '../options/resolve-options.js';
import type { Connection } from './connection.js';

/**
 * Closing connections on shutdown: in batches, with 1001 (or 1012), waiting for their
 * close handshakes and for the gateways' async `handleDisconnect` work, all within
 * `shutdown.timeoutMs`. The disconnect work is this adapter's own: one application's
 * shutdown never waits on another's.
 */
export class Drain {
  /** Async `handleDisconnect` work still running, of this adapter's connections. */
  readonly disconnectWork = new Set<Promise<unknown>>();
  constructor(private readonly settings: ShutdownSettings) {}

  /** Closes `connections` and waits for them and for the disconnect work, at most `shutdown.timeoutMs`. */
  async run(connections: readonly Connection[]): Promise<void> {
    const deadline = Date.now() + this.settings.timeoutMs;
    const closing: Promise<void>[] = [];
    for (let start = 0; start < connections.length; start += this.settings.batchSize) {
      for (const connection of connections.slice(start, start + this.settings.batchSize)) {
        closing.push(this.closeGracefully(connection, deadline));
      }
      // Let the batch's close frames go out (and other work run) before the next batch.
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(closing);
    // Every gateway's async handleDisconnect still running, including those of connections
    // that closed just before the drain began.
    const work = [...this.disconnectWork];
    if (work.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, Math.max(0, deadline - Date.now()));
      });
      await Promise.race([Promise.allSettled(work), timeout]);
      clearTimeout(timer);
    }
  }

  private async closeGracefully(connection: Connection, deadline: number): Promise<void> {
    const timer = setTimeout(() => connection.terminate('shutdown'), Math.max(0, deadline - Date.now()));
    const reason = this.settings.closeCode === CloseCode.SERVICE_RESTART ? 'server restarting' : 'server shutting down';
    connection.close(this.settings.closeCode, reason, 'shutdown');
    await connection.whenClosed();
    clearTimeout(timer);
  }
}
