import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { startRoomsApp, type RoomsApp } from './support/rooms-app.js';
import { until } from './support/until.js';
import type { TestClient } from './support/ws-client.js';

/** The server's end of a connection, as `RealtimeHub.localClientsOf` gives it (a `ws` WebSocket). */
type ServerSide = { readyState: number };

describe('slow consumers: the grace after the 4008 close', () => {
  let app: RoomsApp | undefined;
  const clients: TestClient[] = [];

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.socket.terminate());
    await app?.close();
    app = undefined;
  });

  it(
    'cuts a slow consumer that does not answer its 4008 close after a second of grace, not after limits.closeTimeoutMs',
    { timeout: 30_000 },
    async () => {
      const maxBufferedBytes = 256 * 1024;
      // The close timeout of other closes is far later: only the slow consumer's own grace can cut it soon.
      app = await startRoomsApp(undefined, undefined, 0, { limits: { maxBufferedBytes, closeTimeoutMs: 120_000 } });
      const sleeper = await app.connect('sleeper');
      clients.push(sleeper);
      const [serverSide] = app.hub.localClientsOf('sleeper') as ServerSide[];
      // The client stops reading for good: it will never read the 4008 close frame, let alone answer it.
      (sleeper.socket as unknown as { _socket: { pause(): void } })._socket.pause();
      const chunk = 'x'.repeat(16 * 1024);
      const started = performance.now();
      // Paced pushes (not a wait for anything): the close is seen within one pause of its start.
      while (serverSide!.readyState === 1 && performance.now() - started < 10_000) {
        app.hub.emitToUser('sleeper', 'bulk', chunk);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // Closing (its 4008 sent) or closed: seen at most one pause after the close began.
      const closingAt = performance.now();
      assert.notEqual(serverSide!.readyState, 1, 'the server never closed the connection of a client that does not read');
      const log = app.log;
      await until(() => log.disconnects.length === 1, 'the slow consumer to be cut', 10_000);
      const cutAfter = performance.now() - closingAt;
      assert.deepEqual(log.disconnects[0]!.reason, { code: 1006, reason: '', cause: 'slow-consumer' });
      assert.ok(cutAfter >= 950, `cut ${Math.round(cutAfter)} ms after its 4008 close: it was not given its second of grace`);
    },
  );
});
