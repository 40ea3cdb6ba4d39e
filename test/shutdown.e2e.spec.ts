import { ApplicationConfig } from '@nestjs/core';
import type { AbstractWsAdapter } from '@nestjs/websockets';
import type WebSocket from 'ws';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect as tcpConnect, Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, it } from 'node:test';
import { type DisconnectReason, type OnRealtimeDisconnect, RealtimeGateway, RealtimeModule } from '../src/index.js';
import { RealtimeTestClient, signTestToken } from '../src/testing/index.js';
import { maskedCloseFrame, openConnection } from '../bench/support/ws-load.js';
import { startApp } from './support/app.js';
import { RawWsClient } from './support/raw-ws.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { copyProject, demoToken } from './support/sample-app.js';
import { until, within } from './support/until.js';
import { refusedUpgrade } from './support/ws-client.js';

/** A TCP socket to `port` that has sent one whole keep-alive request and read its answer. */
async function keptAlive(port: number): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write('GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  const [answer] = (await once(socket, 'data')) as [Buffer];
  assert.match(answer.toString(), /^HTTP\/1\.1 404/);
  return socket;
}

/** A TCP socket to `port` that has sent half of its request headers, and stops there. */
async function halfSent(port: number): Promise<Socket> {
  const socket = tcpConnect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  socket.write('GET /rooms HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  return socket;
}

/** Milliseconds until `socket` is closed by the other side; fails after `ms`. */
async function closedWithin(socket: Socket, ms: number): Promise<number> {
  const started = performance.now();
  if (socket.destroyed) {
    return 0;
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      new Promise((resolve) => socket.once('close', resolve)),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the socket was still open after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - started;
}

/**
 * Counts, until `stop()`, the `end()` calls with no arguments on streams that have already
 * finished (TCP sockets and `ws`'s frame parsers alike): Node builds an error with a stack
 * trace for each, and drops it.
 */
function countEndsOnFinished(): { stop(): number } {
  let count = 0;
  const originals = [Writable.prototype, Socket.prototype].map((proto) => [proto, proto.end] as const);
  for (const [proto, end] of originals) {
    proto.end = function (this: Writable, ...args: unknown[]) {
      if (args.length === 0 && this.writableFinished) {
        count++;
      }
      return (end as (...a: unknown[]) => Writable).apply(this, args);
    } as typeof proto.end;
  }
  return {
    stop() {
      for (const [proto, end] of originals) {
        proto.end = end as typeof proto.end;
      }
      return count;
    },
  };
}

/** What `/stuck` saw of disconnects, as they began. */
const stuckDisconnects: DisconnectReason[] = [];

/** `/stuck` (public): a gateway whose async `handleDisconnect` never finishes. */
@RealtimeGateway('/stuck', { public: true })
class StuckGateway implements OnRealtimeDisconnect {
  handleDisconnect(_client: WebSocket, reason: DisconnectReason): Promise<void> {
    stuckDisconnects.push(reason);
    return new Promise(() => undefined);
  }
}

describe('shutdown and slow sockets', () => {
  let app: RoomsApp | undefined;
  const sockets: Socket[] = [];
  const rawClients: RawWsClient[] = [];

  afterEach(async () => {
    sockets.splice(0).forEach((socket) => socket.destroy());
    rawClients.splice(0).forEach((client) => client.close());
    await app?.close();
    app = undefined;
  });

  it('gives every request on a keep-alive socket the handshake deadline, not only the first', async () => {
    app = await startRoomsApp(undefined, undefined, 0, { limits: { handshakeTimeoutMs: 300 } });
    // The deadline of a next request is at least the idle time the server grants (plus a
    // second): Node's own keep-alive close gives up once the next request's bytes arrive.
    (app.app.getHttpServer() as { keepAliveTimeout: number }).keepAliveTimeout = 200;
    const socket = await keptAlive(app.port);
    sockets.push(socket);
    // The next request's headers start, and never finish.
    socket.write('GET /rooms HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    await closedWithin(socket, 3000);
  });

  it('ends idle keep-alive sockets and half-sent requests at once on app.close()', async () => {
    app = await startRoomsApp();
    const idle = await keptAlive(app.port);
    const half = await halfSent(app.port);
    const member = await RealtimeTestClient.connect(app.app, '/rooms', { token: await signTestToken(app.app, { sub: 'alice' }) });
    sockets.push(idle, half);
    const started = performance.now();
    await app.close();
    const took = performance.now() - started;
    app = undefined;
    assert.ok(took < 1500, `app.close() took ${Math.round(took)} ms`);
    assert.deepEqual(await within(member.closed(), 'the close'), { code: 1001, reason: 'server shutting down' });
    await closedWithin(idle, 500);
    await closedWithin(half, 500);
  });

  it('closes connections, by the client and on shutdown, without ending a stream that has finished', async () => {
    app = await startRoomsApp();
    const url = app.wsUrl('/rooms');
    // Raw TCP clients (no `ws` client in this process): each answers a close frame with its
    // own and then its FIN, as browsers do.
    const open = (sub: string) =>
      openConnection(url, { authorization: `Bearer ${tokenFor(sub)}` }).then((connection) => {
        connection.onClose = (code) => {
          // A client that closed first has sent its close frame and FIN already.
          if (!connection.socket.writableEnded) {
            connection.socket.end(maskedCloseFrame(code));
          }
        };
        return connection;
      });
    const leaving = await Promise.all(['leaving-1', 'leaving-2', 'leaving-3'].map(open));
    const staying = await Promise.all(['staying-1', 'staying-2', 'staying-3'].map(open));
    const closed = [...leaving, ...staying].map(({ socket }) => once(socket, 'close'));
    const log = app.log;
    const counter = countEndsOnFinished();
    let endsOnFinished: number;
    try {
      for (const { socket } of leaving) {
        socket.end(maskedCloseFrame(1000));
      }
      await until(() => log.disconnects.length === 3, 'the three clients that left');
      await app.close();
      app = undefined;
      await within(Promise.all(closed), 'every client socket closed');
    } finally {
      endsOnFinished = counter.stop();
    }
    const reasons = log.disconnects.map(({ reason }) => `${reason.cause} ${reason.code}`).sort();
    assert.deepEqual(reasons, ['client 1000', 'client 1000', 'client 1000', 'shutdown 1001', 'shutdown 1001', 'shutdown 1001']);
    assert.equal(endsOnFinished, 0);
  });

  it("answers upgrades that arrive after the adapter is disposed with 503, not the HTTP stack's 404", async () => {
    app = await startRoomsApp();
    const adapter = app.app.get(ApplicationConfig).getIoAdapter() as AbstractWsAdapter;
    await adapter.dispose();
    const refused = await refusedUpgrade(app.wsUrl('/rooms'));
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the server is shutting down' });
  });

  it('cuts the clients that never answer the close frame at shutdown.timeoutMs, and not before', { timeout: 30_000 }, async () => {
    const timeoutMs = 1200;
    // Their own close timeout is far later: only the shutdown's deadline can cut them.
    app = await startRoomsApp(undefined, undefined, 0, { shutdown: { timeoutMs }, limits: { closeTimeoutMs: 120_000 } });
    const headers = (sub: string): Record<string, string> => ({ Authorization: `Bearer ${tokenFor(sub)}` });
    const mute = await Promise.all(['mute-1', 'mute-2'].map((sub) => RawWsClient.connect(app!.wsUrl('/rooms'), headers(sub))));
    rawClients.push(...mute);
    const polite = await RealtimeTestClient.connect(app.app, '/rooms', { token: await signTestToken(app.app, { sub: 'polite' }) });
    const log = app.log;
    const started = performance.now();
    const endedAfter = mute.map((client) => client.ended.then(() => performance.now() - started));
    const politeClosedAfter = polite.closed().then(() => performance.now() - started);
    await app.close();
    const took = performance.now() - started;
    app = undefined;
    // Timers may fire a millisecond early against performance.now().
    assert.ok(took >= timeoutMs - 5, `app.close() returned after ${Math.round(took)} ms, before the ${timeoutMs} ms deadline`);
    const ended = await Promise.all(endedAfter);
    for (const [i, after] of ended.entries()) {
      assert.ok(after >= timeoutMs - 5, `mute client ${i + 1} was cut after ${Math.round(after)} ms, before the deadline`);
      assert.deepEqual(mute[i]!.closeCodes, [1001], 'it was sent the shutdown close frame first');
    }
    // The client that answered was not held to the deadline.
    assert.ok((await politeClosedAfter) < Math.min(...ended), 'the polite client closed after the mute ones were cut');
    await until(() => log.disconnects.length === 3, 'the three disconnects');
    const reasons = log.disconnects.map(({ reason }) => `${reason.cause} ${reason.code}`).sort();
    assert.deepEqual(reasons, ['shutdown 1001', 'shutdown 1006', 'shutdown 1006']);
  });

  it("stops waiting for a gateway's handleDisconnect that never finishes at shutdown.timeoutMs", { timeout: 30_000 }, async () => {
    const timeoutMs = 600;
    stuckDisconnects.splice(0);
    const running = await startApp({ imports: [RealtimeModule.forRoot({ shutdown: { timeoutMs } })], providers: [StuckGateway] });
    const client = await RealtimeTestClient.connect(running.app, '/stuck');
    const started = performance.now();
    await running.close();
    const took = performance.now() - started;
    assert.deepEqual(await within(client.closed(), 'the close'), { code: 1001, reason: 'server shutting down' });
    assert.equal(stuckDisconnects.length, 1);
    assert.equal(stuckDisconnects[0]!.cause, 'shutdown');
    assert.ok(took >= timeoutMs - 5, `app.close() returned after ${Math.round(took)} ms, before the ${timeoutMs} ms deadline`);
  });

  it('drains with 1001 and exits 0 within about 2 s when SIGTERM reaches the process `npm start` runs', async () => {
    // `npm start` builds into dist/: a copy of the project, so the build never touches the
    // dist/ these tests run from.
    const copy = copyProject();
    let npm: ChildProcess | undefined;
    try {
      npm = spawn('npm', ['start'], {
        cwd: copy.dir,
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', JWT_SECRET: 'npm-start-test-secret-0123456789abcdef' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      npm.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      npm.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      const deadline = Date.now() + 60_000;
      let port = 0;
      while (!port) {
        assert.ok(Date.now() < deadline && npm.exitCode === null, `npm start did not get ready:\n${output}`);
        port = Number(/ws:\/\/127\.0\.0\.1:(\d+)\/echo/.exec(output)?.[1] ?? 0);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const token = await demoToken(`http://127.0.0.1:${port}`, 'alice');
      const client = await RealtimeTestClient.connect(`ws://127.0.0.1:${port}`, '/echo', { token });
      sockets.push(await keptAlive(port), await halfSent(port));
      const started = performance.now();
      npm.kill('SIGTERM');
      assert.deepEqual(await within(client.closed(), 'the drain'), { code: 1001, reason: 'server shutting down' });
      const [code] = (await once(npm, 'exit')) as [number | null];
      const took = performance.now() - started;
      assert.equal(code, 0, output);
      assert.ok(took < 2500, `the exit took ${Math.round(took)} ms`);
      // The server itself is gone, not orphaned: nothing listens on its port any more.
      const probe = tcpConnect(port, '127.0.0.1');
      const [error] = (await once(probe, 'error')) as [NodeJS.ErrnoException];
      assert.equal(error.code, 'ECONNREFUSED');
    } finally {
      if (npm && npm.exitCode === null) {
        npm.kill('SIGKILL');
      }
      copy.remove();
    }
  });
});
