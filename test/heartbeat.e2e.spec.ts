import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ApplicationConfig } from '@nestjs/core';
import WebSocket from 'ws';
import { RealtimeModule, RealtimeWsAdapter } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { TestClient } from './support/ws-client.js';
import { HeartbeatGateway, NoHeartbeatGateway } from './fixtures/heartbeat-gateways.js';
import { LifecycleLog } from './fixtures/test-gateways.js';

const timing = { intervalMs: 200, timeoutMs: 100 };

describe('heartbeat (protocol §3)', () => {
  let running: RunningApp;
  let log: LifecycleLog;
  const clients: TestClient[] = [];

  async function connect(path = '/hb', options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const client = await TestClient.connect(running.wsUrl(path), options);
    clients.push(client);
    return client;
  }

  function stats(): { watched: number; reaped: number; timers: number } {
    const adapter = running.app.get(ApplicationConfig).getIoAdapter() as RealtimeWsAdapter;
    return adapter.heartbeatStats();
  }

  /** Resolves with the payloads of the first `count` protocol pings the client receives. */
  function pings(client: TestClient, count: number): Promise<Buffer[]> {
    const seen: Buffer[] = [];
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${seen.length} pings arrived`)), 10 * count * timing.intervalMs);
      client.socket.on('ping', (payload: Buffer) => {
        if (seen.push(payload) === count) {
          clearTimeout(timer);
          resolve(seen);
        }
      });
    });
  }

  beforeEach(async () => {
    running = await startApp({
      imports: [RealtimeModule.forRoot({ heartbeat: timing })],
      providers: [LifecycleLog, HeartbeatGateway, NoHeartbeatGateway],
    });
    log = running.app.get(LifecycleLog);
  });

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await running.close();
  });

  it('terminates a client that sends nothing and answers no ping, within interval + timeout', async () => {
    const client = await connect('/hb', { autoPong: false });
    const openedAt = performance.now();
    let pinged = 0;
    client.socket.on('ping', () => pinged++);
    const closed = await client.waitClosed();
    const elapsed = performance.now() - openedAt;
    assert.equal(closed.code, 1006);
    assert.ok(pinged >= 1, 'it was never pinged');
    const deadline = timing.intervalMs + timing.timeoutMs;
    // Not before interval + timeout (the sweep's one timer may fire a little later, by load).
    assert.ok(elapsed >= deadline - 5, `terminated after ${Math.round(elapsed)} ms, before ${deadline} ms`);
    const [reason] = await log.disconnects(1);
    assert.deepEqual(reason, { code: 1006, reason: '', cause: 'heartbeat-timeout' });
    assert.deepEqual(stats(), { watched: 0, reaped: 1, timers: 0 });
  });

  it('keeps a silent client that answers pings, over many intervals', async () => {
    const client = await connect();
    const payloads = await pings(client, 6);
    // Well-formed pings with no payload (a malformed frame would have closed the socket with 1002).
    assert.deepEqual(
      payloads.map((payload) => payload.length),
      [0, 0, 0, 0, 0, 0],
    );
    assert.equal(client.socket.readyState, WebSocket.OPEN);
    assert.equal((await client.request({ event: 'work', id: 1 })).data, 'done');
    assert.deepEqual(stats(), { watched: 1, reaped: 0, timers: 1 });
  });

  it('keeps a client that sends messages but never pongs, and does not ping it', async () => {
    const client = await connect('/hb', { autoPong: false });
    let pinged = 0;
    client.socket.on('ping', () => pinged++);
    const until = performance.now() + 6 * timing.intervalMs;
    let id = 0;
    while (performance.now() < until) {
      assert.equal((await client.request({ event: 'work', id: ++id })).data, 'done');
      // Paced at half the interval: the client's traffic is its only proof of life.
      await new Promise((resolve) => setTimeout(resolve, timing.intervalMs / 2));
    }
    assert.equal(client.socket.readyState, WebSocket.OPEN);
    assert.equal(pinged, 0);
    assert.equal(stats().reaped, 0);
  });

  it('answers the app-level ping with pong and the server time, and counts it as life', async () => {
    const client = await connect('/hb', { autoPong: false });
    const before = Date.now();
    const pong = await client.request({ event: 'ping', id: 'p1' });
    assert.equal(pong.event, 'pong');
    assert.equal(pong.id, 'p1');
    const t = (pong.data as { t: number }).t;
    assert.ok(t >= before && t <= Date.now(), `t=${t}`);
    assert.deepEqual(Object.keys(await client.request({ event: 'ping' })), ['event', 'data']);
    // App-level pings alone keep a client that ignores protocol pings alive.
    for (let i = 0; i < 8; i++) {
      await new Promise((resolve) => setTimeout(resolve, timing.intervalMs / 2));
      assert.equal((await client.request({ event: 'ping', id: i })).event, 'pong');
    }
    assert.equal(client.socket.readyState, WebSocket.OPEN);
  });

  it('leaves a gateway with heartbeat: false unwatched', async () => {
    await connect('/hb-off', { autoPong: false });
    const watched = await connect('/hb');
    assert.equal((await watched.request({ event: 'work', id: 1 })).data, 'done');
    assert.equal(stats().watched, 1);
  });

  it('sweeps 5,000 idle connections with one timer, then reaps them all once they stop answering', async () => {
    // Opening 5,000 connections with client and server in one process stalls the event
    // loop for longer than the 100 ms timeout above, so this app gets roomier timing.
    await running.close();
    running = await startApp({
      imports: [
        RealtimeModule.forRoot({
          heartbeat: { intervalMs: 1000, timeoutMs: 500 },
          // All 5,000 come from 127.0.0.1, ten times the default per-address limit, and
          // far faster than its default handshake rate.
          limits: { maxConnectionsPerIp: 10_000, handshakeRate: false },
        }),
      ],
      providers: [LifecycleLog, HeartbeatGateway],
    });
    log = running.app.get(LifecycleLog);
    const count = 5000;
    const timersBefore = activeTimeouts();
    let answering = true;
    for (let opened = 0; opened < count; opened += 250) {
      const batch = await Promise.all(Array.from({ length: 250 }, () => connect('/hb', { autoPong: false })));
      for (const client of batch) {
        client.socket.on('ping', (data: Buffer) => answering && client.socket.pong(data));
      }
    }
    assert.deepEqual(stats(), { watched: count, reaped: 0, timers: 1 });
    const added = activeTimeouts() - timersBefore;
    assert.ok(added < 20, `${added} timers were added for ${count} connections`);
    answering = false;
    const closes = await Promise.all(clients.map((client) => client.closed));
    assert.ok(closes.every((close) => close.code === 1006));
    assert.deepEqual(stats(), { watched: 0, reaped: count, timers: 0 });
    const reasons = await log.disconnects(count);
    assert.equal(reasons.filter((reason) => reason.cause === 'heartbeat-timeout').length, count);
  });
});

function activeTimeouts(): number {
  return process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;
}
