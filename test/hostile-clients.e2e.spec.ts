import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { RealtimeClient, RealtimeClientError } from '../src/client/index.js';
import { addressKey } from '../src/limits/handshake-rates.js';
import { RealtimeMetrics, type RealtimeModuleOptions } from '../src/index.js';
import { CapturingLogger } from './fixtures/auth-gateways.js';
import { RawWsClient } from './support/raw-ws.js';
import { startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until } from './support/until.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';

/** Resolves with how long `promise` took, or fails after `ms`. */
async function within(promise: Promise<unknown>, ms: number, what: string): Promise<number> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - started;
}

/** The value of one series in a Prometheus exposition, 0 when absent. */
function series(text: string, name: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name} `));
  return line ? Number(line.slice(name.length + 1)) : 0;
}

describe('hostile clients', () => {
  let app: RoomsApp;
  let logger: CapturingLogger;
  const clients: (TestClient | RawWsClient)[] = [];

  async function start(options: RealtimeModuleOptions = {}): Promise<void> {
    logger = new CapturingLogger();
    app = await startRoomsApp(undefined, undefined, 0, options, (nest) => nest.useLogger(logger));
  }

  async function raw(sub: string, lifetimeSeconds?: number): Promise<RawWsClient> {
    const client = await RawWsClient.connect(app.wsUrl('/rooms'), { authorization: `Bearer ${tokenFor(sub, lifetimeSeconds)}` });
    clients.push(client);
    return client;
  }

  async function member(sub: string, room: string): Promise<TestClient> {
    const client = await app.connect(sub);
    clients.push(client);
    assert.equal((await client.request({ event: 'join', id: 'j', data: { room } })).event, 'join');
    return client;
  }

  /** Joins a raw client to `room` and waits until the room's presence shows it. */
  async function rawMember(client: RawWsClient, sub: string, room: string, observer: TestClient): Promise<void> {
    client.sendText(JSON.stringify({ event: 'join', id: 'j', data: { room } }));
    await until(
      async () => ((await observer.request({ event: 'presence', id: 'p', data: { room } })).data as string[]).includes(sub),
      `${sub} in ${room}`,
    );
  }

  /** The next room message bob gets must be his own marker: nothing else reached the room before it. */
  async function nothingBefore(bob: TestClient, room: string): Promise<void> {
    bob.send({ event: 'send', data: { room, text: 'marker' } });
    assert.deepEqual((await bob.nextJson()).data, { from: 'bob', text: 'marker' });
  }

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await app?.close();
  });

  it('dispatches nothing after a 4003 kick, and cuts a client that ignores the close frame within closeTimeoutMs', async () => {
    await start({ limits: { closeTimeoutMs: 300 } });
    const bob = await member('bob', 'lobby');
    const mallory = await raw('mallory');
    await rawMember(mallory, 'mallory', 'lobby', bob);
    bob.send({ event: 'kick', data: { user: 'mallory' } });
    await until(() => mallory.closeCodes.includes(4003), 'the 4003 close frame');
    for (let i = 0; i < 5; i++) {
      mallory.sendText(JSON.stringify({ event: 'send', data: { room: 'lobby', text: `after the kick ${i}` } }));
    }
    await nothingBefore(bob, 'lobby');
    const took = await within(mallory.ended, 3000, 'cutting the socket');
    assert.ok(took < 3000);
    await until(() => app.log.disconnects.length === 1, 'the disconnect hook');
    assert.equal(app.log.disconnects[0]!.reason.cause, 'kicked');
  });

  it('dispatches nothing after a 4001 token expiry, whatever the client keeps sending', async () => {
    await start({ limits: { closeTimeoutMs: 300 } });
    const bob = await member('bob', 'lobby');
    const mallory = await raw('mallory', 1);
    await rawMember(mallory, 'mallory', 'lobby', bob);
    await until(() => mallory.closeCodes.includes(4001), 'the 4001 close frame', 5000);
    for (let i = 0; i < 30; i++) {
      mallory.sendText(JSON.stringify({ event: 'send', data: { room: 'lobby', text: `expired ${i}` } }));
    }
    await nothingBefore(bob, 'lobby');
    await within(mallory.ended, 3000, 'cutting the socket');
  });

  it('logs one line for a 1008 close and neither counts nor answers what follows it', async () => {
    await start({ limits: { closeTimeoutMs: 500, invalidFrames: { limit: 5, windowMs: 60_000 } } });
    const mallory = await raw('mallory');
    for (let i = 0; i < 6; i++) {
      mallory.sendText('{"event": 42}');
    }
    await until(() => mallory.closeCodes.includes(1008), 'the 1008 close frame');
    for (let i = 0; i < 2000; i++) {
      mallory.sendText('{"event": 42}');
    }
    await mallory.ended;
    const closeLines = logger.lines.filter((line) => line.includes('closing a connection'));
    assert.equal(closeLines.length, 1, logger.text);
    assert.match(closeLines[0]!, /closing a connection at \/rooms with 1008: too many invalid frames/);
    const metrics = await app.app.get(RealtimeMetrics).registry.metrics();
    assert.equal(series(metrics, 'realtime_messages_in_total{gateway="/rooms",event="(unknown)"}'), 6);
    assert.equal(series(metrics, 'realtime_errors_total{gateway="/rooms",code="BAD_REQUEST"}'), 6);
  });

  it('logs repeated refusals at a bounded rate, then one line with the count', async () => {
    // The 20 refusals must fit in one interval, even on a loaded machine.
    await start({ limits: { logThrottle: { lines: 3, intervalMs: 1500 } } });
    for (let i = 0; i < 20; i++) {
      assert.equal((await refusedUpgrade(app.wsUrl('/rooms'))).status, 401);
    }
    await until(() => logger.text.includes('suppressed'), 'the summary line');
    const refusals = logger.lines.filter((line) => line.includes('upgrade refused (401'));
    assert.equal(refusals.length, 3, logger.text);
    assert.ok(
      logger.lines.some((line) => /^warn 17 more "upgrade refused: unauthorized" lines suppressed in the last \d+ s$/.test(line)),
      logger.text,
    );
    // The next interval writes again.
    assert.equal((await refusedUpgrade(app.wsUrl('/rooms'))).status, 401);
    await until(() => logger.lines.filter((line) => line.includes('upgrade refused (401')).length === 4, 'a line in the next interval');
  });

  it("counts in-band auth frames against their address's handshake rate: they cannot run the token checks faster", async () => {
    await start({ limits: { handshakeRate: { perSecond: 0.5, burst: 3 } } });
    const alice = await app.connect('alice'); // the first of the three
    clients.push(alice);
    const answers: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await alice.request({ event: 'auth', id: `a${i}`, data: { token: tokenFor('alice') } });
      answers.push(reply.event === 'error' ? (reply.data as { code: string }).code : reply.event);
    }
    assert.deepEqual(answers, ['auth', 'auth', 'RATE_LIMITED']);
    assert.equal((await alice.request({ event: 'rooms', id: 'r' })).id, 'r', 'the connection goes on');
  });

  it('limits handshakes per address with 429 and Retry-After, before the token is read, and counts the cause', async () => {
    // Behind one trusted proxy, X-Forwarded-For tells the addresses apart.
    await start({ limits: { handshakeRate: { perSecond: 0.5, burst: 3 }, trustProxy: true } });
    const from = (address: string, sub?: string) => ({
      headers: { 'x-forwarded-for': address, ...(sub ? { authorization: `Bearer ${tokenFor(sub)}` } : {}) },
    });
    for (let i = 0; i < 3; i++) {
      assert.equal((await refusedUpgrade(app.wsUrl('/rooms'), from('203.0.113.7'))).status, 401);
    }
    const limited = await refusedUpgrade(app.wsUrl('/rooms'), from('203.0.113.7', 'alice'));
    assert.equal(limited.status, 429);
    assert.equal(limited.headers['retry-after'], '2');
    assert.deepEqual(JSON.parse(limited.body), {
      error: 'TOO_MANY_CONNECTIONS',
      message: 'too many handshakes from this address: slow down',
    });
    // Another address, and another /64 of IPv6, have buckets of their own; the same /64 does not.
    const other = await TestClient.connect(app.wsUrl('/rooms'), from('198.51.100.1', 'alice'));
    clients.push(other);
    for (let i = 0; i < 3; i++) {
      assert.equal((await refusedUpgrade(app.wsUrl('/rooms'), from(`2001:db8:1:2::${i + 1}`))).status, 401);
    }
    assert.equal((await refusedUpgrade(app.wsUrl('/rooms'), from('2001:db8:1:2:ffff::9'))).status, 429);
    assert.equal((await refusedUpgrade(app.wsUrl('/rooms'), from('2001:db8:1:3::1'))).status, 401);
    const metrics = await app.app.get(RealtimeMetrics).registry.metrics();
    assert.equal(series(metrics, 'realtime_upgrades_refused_total{status="429",cause="handshake-rate"}'), 2);
    assert.equal(series(metrics, 'realtime_upgrades_refused_total{status="401",cause="unauthorized"}'), 7);
  });

  it('keys IPv6 addresses by their /64 and IPv4-mapped ones as IPv4', () => {
    assert.equal(addressKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
    assert.equal(addressKey('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd'), '2001:db8:1:2::/64');
    assert.equal(addressKey('::1'), '0:0:0:0::/64');
    assert.equal(addressKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(addressKey('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(addressKey('192.0.2.1'), '192.0.2.1');
  });

  it('answers every id of a 290-frame burst exactly once, RATE_LIMITED ones included', async () => {
    await start();
    const alice = await app.connect('alice');
    clients.push(alice);
    // Back to back, well past the default burst of 200.
    for (let i = 0; i < 290; i++) {
      alice.send({ event: 'rooms', id: `b${i}` });
    }
    const answered = new Map<unknown, number>();
    let limited = 0;
    for (let i = 0; i < 290; i++) {
      const reply = await alice.nextJson();
      answered.set(reply.id, (answered.get(reply.id) ?? 0) + 1);
      if (reply.event === 'error') {
        assert.equal((reply.data as { code: string }).code, 'RATE_LIMITED');
        limited++;
      }
    }
    assert.equal(answered.size, 290);
    assert.ok([...answered.values()].every((count) => count === 1));
    assert.ok(limited >= 50, `${limited} were rate limited`);
    assert.equal(alice.socket.readyState, WebSocket.OPEN);
  });

  it("rejects the SDK's request over the rate with RATE_LIMITED at once, not at its timeout", async () => {
    await start({ limits: { messageRate: { perSecond: 1, burst: 2 } } });
    const client = new RealtimeClient(app.wsUrl('/rooms'), {
      WebSocket,
      token: () => tokenFor('alice'),
      pingIntervalMs: false,
      requestTimeoutMs: 30_000,
    });
    try {
      await client.whenOpen();
      let outcomes: PromiseSettledResult<unknown>[] = [];
      await within(
        Promise.allSettled([0, 1, 2, 3].map(() => client.request('rooms'))).then((settled) => (outcomes = settled)),
        5000,
        'four requests against a burst of two',
      );
      const rejected = outcomes.filter((outcome) => outcome.status === 'rejected');
      assert.equal(rejected.length, 2);
      for (const outcome of rejected) {
        assert.ok(outcome.reason instanceof RealtimeClientError);
        assert.equal(outcome.reason.code, 'RATE_LIMITED');
      }
    } finally {
      client.disconnect();
    }
  });
});
