import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { type Authentication, MemoryBroker, MemoryBus, RealtimeMetrics, type RealtimeModuleOptions } from '../src/index.js';
import { Redis } from 'ioredis';
import { RedisBroker } from '../src/redis.js';
import { CapturingLogger } from './fixtures/auth-gateways.js';
import { RoomsGateway } from './fixtures/rooms-gateways.js';
import { RedisServer } from './support/redis-server.js';
import { ROOMS_SECRET, startRoomsApp, type RoomsApp, tokenFor } from './support/rooms-app.js';
import { until, within } from './support/until.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';

/** One place in all, per address and per user: an upgrade that kept its place would keep everyone out. */
const ONE_PLACE = { maxConnections: 1, maxConnectionsPerIp: 1, maxConnectionsPerUser: 1 };

/** An upgrade request to `/rooms` written by hand over TCP, so that a test can send what no client library would. */
async function rawUpgrade(
  port: number,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ socket: Socket; answer: Promise<string> }> {
  const socket = tcpConnect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  let answer = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  const ended = new Promise<string>((resolve) => socket.once('close', () => resolve(answer)));
  const lines = [
    `${method} /rooms HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  return { socket, answer: ended };
}

/** What a well-formed upgrade of `sub` carries, with `overrides` replacing or adding headers. */
function upgradeHeaders(sub: string, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
    'Sec-WebSocket-Version': '13',
    Authorization: `Bearer ${tokenFor(sub)}`,
    ...overrides,
  };
}

/**
 * An authenticator whose answer is not an `Authentication` for the identity `broken`: it
 * resolves with no principal, as a buggy one could. Others are who `X-Identity` says.
 */
class CarelessAuthenticator {
  async authenticate(request: IncomingMessage): Promise<Authentication | undefined> {
    const identity = request.headers['x-identity'];
    if (typeof identity !== 'string') {
      return undefined;
    }
    return identity === 'broken' ? ({} as Authentication) : { principal: { sub: identity } };
  }
}

describe('admission: an upgrade that does not become a connection gives its place back', () => {
  let app: RoomsApp | undefined;
  const clients: TestClient[] = [];
  const sockets: Socket[] = [];

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    sockets.splice(0).forEach((socket) => socket.destroy());
    await app?.close();
    app = undefined;
  });

  async function start(options: RealtimeModuleOptions, logger?: CapturingLogger): Promise<RoomsApp> {
    app = await startRoomsApp(undefined, undefined, 0, options, logger && ((nest) => nest.useLogger(logger)));
    return app;
  }

  /** Connects `sub` and proves the connection is served. */
  async function served(sub: string): Promise<TestClient> {
    const client = await app!.connect(sub);
    clients.push(client);
    assert.deepEqual((await client.request({ event: 'rooms', id: 1 })).data, []);
    return client;
  }

  it('gives back the place (and the user channel) of an upgrade whose client went away while its verifyConnection hook was pending', async () => {
    const bus = new MemoryBus();
    // The first upgrade's hook waits until the test answers it; later ones pass at once.
    let answerFirst!: (verdict: boolean) => void;
    const firstVerdict = new Promise<boolean>((resolve) => (answerFirst = resolve));
    let hookReached!: () => void;
    const reached = new Promise<void>((resolve) => (hookReached = resolve));
    let hookCalls = 0;
    const running = await start({
      broker: new MemoryBroker({ bus }),
      limits: { ...ONE_PLACE, handshakeTimeoutMs: 60_000 },
      auth: {
        secret: ROOMS_SECRET,
        verifyConnectionTimeoutMs: 60_000,
        verifyConnection: () => {
          if (hookCalls++ > 0) {
            return true;
          }
          hookReached();
          return firstVerdict;
        },
      },
    });
    const serverSockets: Socket[] = [];
    running.app.getHttpServer().on('connection', (socket: Socket) => serverSockets.push(socket));

    const abandoned = await rawUpgrade(running.port, upgradeHeaders('alice'));
    sockets.push(abandoned.socket);
    await within(reached, 'the verifyConnection hook');
    // The client gives up while the hook runs: a reset, which the server's socket sees at once.
    abandoned.socket.resetAndDestroy();
    await until(() => serverSockets.length === 1 && serverSockets[0]!.destroyed, "the server's end of the abandoned upgrade to be gone");
    answerFirst(true);
    assert.equal(await abandoned.answer, '', 'nothing was answered to the abandoned upgrade');

    // Its place (in all, for the address, for alice) is free again, and alice's channel is no
    // longer held for it: it is subscribed for the new connection only, and dropped after it.
    const alice = await served('alice');
    assert.ok(bus.channels.has('u:alice'));
    alice.close();
    await alice.waitClosed();
    await until(() => !bus.channels.has('u:alice'), "alice's channel to be dropped once her only connection closed");
    await served('alice');
  });

  it('keeps the user count right when the hook answers after the upgrade was refused at its deadline', async () => {
    let answerFirst!: (verdict: boolean) => void;
    const firstVerdict = new Promise<boolean>((resolve) => (answerFirst = resolve));
    let hookCalls = 0;
    await start({
      limits: { ...ONE_PLACE, handshakeTimeoutMs: 200 },
      auth: { secret: ROOMS_SECRET, verifyConnectionTimeoutMs: 60_000, verifyConnection: () => (hookCalls++ > 0 ? true : firstVerdict) },
    });
    const refused = await refusedUpgrade(app!.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the handshake took too long' });
    // The late verdict lets alice in, but her upgrade is over: she must not be counted for it.
    answerFirst(true);
    await served('alice');
    assert.equal(hookCalls, 2);
  });

  for (const [what, overrides, message] of [
    [
      'a Sec-WebSocket-Key that is not 16 bytes of base64',
      { 'Sec-WebSocket-Key': 'not-a-key' },
      'Missing or invalid Sec-WebSocket-Key header',
    ],
    ['an unsupported Sec-WebSocket-Version', { 'Sec-WebSocket-Version': '12' }, 'Missing or invalid Sec-WebSocket-Version header'],
    ['a subprotocol offered twice', { 'Sec-WebSocket-Protocol': 'realtime.v1, realtime.v1' }, 'Invalid Sec-WebSocket-Protocol header'],
  ] as const) {
    it(`gives back the place of an upgrade that passed the checks and that ws refuses, answered as every refusal: ${what}`, async () => {
      const bus = new MemoryBus();
      const running = await start({ broker: new MemoryBroker({ bus }), limits: ONE_PLACE });
      for (let attempt = 0; attempt < 3; attempt++) {
        const refused = await rawUpgrade(running.port, upgradeHeaders('alice', overrides));
        sockets.push(refused.socket);
        const answer = await within(refused.answer, "ws's refusal");
        const [head, body] = answer.split('\r\n\r\n');
        assert.match(head!, /^HTTP\/1\.1 400 /, answer);
        assert.match(head!, /\r\nContent-Type: application\/json; charset=utf-8\r\n/, answer);
        assert.equal(/\r\nSec-WebSocket-Version: 13, 8(\r\n|$)/.test(head!), what.includes('Version'), answer);
        assert.deepEqual(JSON.parse(body!), { error: 'BAD_REQUEST', message });
      }
      const metrics = await running.app.get(RealtimeMetrics).registry.metrics();
      assert.match(metrics, /\nrealtime_upgrades_refused_total\{status="400",cause="bad-request"\} 3\n/);
      assert.ok(!bus.channels.has('u:alice'), "alice's channel is still held for a refused upgrade");
      await served('alice');
    });
  }

  it('answers an upgrade asked with another method than GET with 405 and Allow: GET', async () => {
    const running = await start({ limits: ONE_PLACE });
    const refused = await rawUpgrade(running.port, { ...upgradeHeaders('alice'), 'Content-Length': '0' }, 'POST');
    sockets.push(refused.socket);
    const [head, body] = (await within(refused.answer, 'the refusal')).split('\r\n\r\n');
    assert.match(head!, /^HTTP\/1\.1 405 /, head);
    assert.match(head!, /\r\nAllow: GET(\r\n|$)/, head);
    assert.deepEqual(JSON.parse(body!), { error: 'BAD_REQUEST', message: 'Invalid HTTP method' });
    await served('alice');
  });

  /** Connects `sub` to `/rooms` with `headers` added to its token. */
  function connectWith(sub: string, headers: Record<string, string>): Promise<TestClient> {
    return TestClient.connect(app!.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor(sub)}`, ...headers } });
  }

  it("closes with 1011 a connection whose application 'connection' listener throws, and its close gives back only what it held", async () => {
    const bus = new MemoryBus();
    const logger = new CapturingLogger();
    const running = await start(
      { broker: new MemoryBroker({ bus }), limits: { maxConnections: 3, maxConnectionsPerIp: 3, maxConnectionsPerUser: 2 } },
      logger,
    );
    // The application's own listener runs after the plugin's and Nest's have set the connection up.
    running.app.get(RoomsGateway).server.on('connection', (_socket: unknown, request: IncomingMessage) => {
      if (request.headers['x-explode'] !== undefined) {
        throw new Error('boom in a connection listener');
      }
    });
    const first = await served('alice');
    const exploded = await connectWith('alice', { 'x-explode': '1' });
    clients.push(exploded);
    assert.deepEqual(await within(exploded.waitClosed(), 'the failed connection to be closed'), { code: 1011, reason: 'internal error' });
    assert.match(logger.text, /error connection set-up at \/rooms failed: Error: boom in a connection listener/);
    await until(() => running.log.disconnects.length === 1, 'handleDisconnect of the failed connection');
    assert.equal(running.log.disconnects[0]!.reason.cause, 'server');

    // alice's first connection still gets what is sent to her: the failed one gave back its own hold only.
    running.hub.emitToUser('alice', 'note', 'still here');
    assert.equal((await first.nextJson()).event, 'note');
    // Its place is free again, and only its own: alice has two places, and one is still taken.
    const second = await served('alice');
    const third = await refusedUpgrade(running.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    assert.equal(third.status, 429, third.body);
    first.close();
    second.close();
    await Promise.all([first.waitClosed(), second.waitClosed()]);
    await until(() => !bus.channels.has('u:alice'), "alice's channel to be dropped once her last connection closed");
  });

  it("closes with 1011 a connection whose own set-up throws, and gives back its place and its user's channel", async () => {
    const bus = new MemoryBus();
    const logger = new CapturingLogger();
    const running = await start({ broker: new MemoryBroker({ bus }), limits: ONE_PLACE }, logger);
    // Fault injection: the plugin's own set-up fails once, after the connection took the upgrade's place.
    const attach = running.hub.attach.bind(running.hub);
    let failures = 1;
    running.hub.attach = (connection) => {
      if (failures-- > 0) {
        throw new Error('injected set-up failure');
      }
      attach(connection);
    };
    const failed = await connectWith('alice', {});
    clients.push(failed);
    assert.deepEqual(await within(failed.waitClosed(), 'the failed connection to be closed'), { code: 1011, reason: 'internal error' });
    assert.match(logger.text, /error connection set-up at \/rooms failed: Error: injected set-up failure/);
    assert.equal(running.log.disconnects.length, 0, 'Nest never heard of a connection that was not set up');
    await until(() => !bus.channels.has('u:alice'), "alice's channel to be given back");
    // One place in all: the failed connection's is free again.
    await served('alice');
    assert.ok(bus.channels.has('u:alice'));
  });

  it("does not keep a user out after a subscription to the user's channel that never completed", async () => {
    // A broker whose first subscription to alice's channel never completes (a custom broker with no deadline of its own).
    class StuckOnce extends MemoryBroker {
      stuck = 0;
      override subscribe(channel: string): Promise<void> {
        if (channel === 'u:alice' && this.stuck++ === 0) {
          return new Promise<void>(() => undefined);
        }
        return super.subscribe(channel);
      }
    }
    const broker = new StuckOnce({ bus: new MemoryBus() });
    await start({ broker, limits: { ...ONE_PLACE, handshakeTimeoutMs: 200 } });
    const refused = await refusedUpgrade(app!.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the handshake took too long' });
    // The next upgrade subscribes afresh instead of waiting on the stuck subscription.
    await served('alice');
    assert.equal(broker.stuck, 2);
  });

  it("answers 503 'try again later' when the handshake fails unexpectedly, logs why, and gives the place back", async () => {
    const logger = new CapturingLogger();
    const running = await start(
      { auth: undefined, authenticator: new CarelessAuthenticator(), limits: { ...ONE_PLACE, handshakeTimeoutMs: 3000 } },
      logger,
    );
    const url = running.wsUrl('/rooms');
    for (let attempt = 0; attempt < 3; attempt++) {
      const refused = await refusedUpgrade(url, { headers: { 'x-identity': 'broken' } });
      assert.equal(refused.status, 503, refused.body);
      assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'try again later' });
    }
    assert.match(logger.text, /error upgrade refused \(503 UNAVAILABLE\) at \/rooms: TypeError/);
    const alice = await TestClient.connect(url, { headers: { 'x-identity': 'alice' } });
    clients.push(alice);
    assert.deepEqual((await alice.request({ event: 'rooms', id: 1 })).data, []);
  });
});

describe('admission while the user channel is being subscribed (Redis broker, throw-away redis-server)', () => {
  let redis: RedisServer;
  let app: RoomsApp | undefined;
  let inspector: Redis | undefined;

  before(async () => {
    redis = await RedisServer.start();
  });

  after(async () => {
    await redis.stop();
  });

  afterEach(async () => {
    redis.resume();
    inspector?.disconnect();
    inspector = undefined;
    await app?.close();
    app = undefined;
  });

  it("releases the user's hold when the upgrade was refused at its deadline while the hold was pending", async () => {
    const keyPrefix = `adm${randomBytes(4).toString('hex')}:`;
    const broker = new RedisBroker({ url: redis.url, keyPrefix, commandTimeoutMs: 1500 });
    app = await startRoomsApp(broker, undefined, 0, { limits: { ...ONE_PLACE, handshakeTimeoutMs: 300 } });
    inspector = new Redis(redis.url);
    const subscribers = async (): Promise<number> => {
      const [, count] = (await inspector!.pubsub('NUMSUB', `${keyPrefix}u:alice`)) as [string, number];
      return count;
    };
    await until(() => broker.health().status === 'ok', 'the broker to be ready');

    // Redis stops answering: alice's upgrade waits for her channel's SUBSCRIBE, past its deadline.
    redis.pause();
    const refused = await refusedUpgrade(app.wsUrl('/rooms'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAVAILABLE', message: 'the handshake took too long' });
    // The SUBSCRIBE gives up at the command deadline; Redis answers again after it.
    await until(() => broker.health().status === 'degraded', 'the stall to be noticed', 5000);
    redis.resume();
    await until(() => broker.health().status === 'ok', 'the broker to recover', 10_000);

    // Alice connects and leaves: the last hold of her channel goes, and so does its subscription.
    const alice = await app.connect('alice');
    assert.deepEqual((await alice.request({ event: 'rooms', id: 1 })).data, []);
    assert.equal(await subscribers(), 1);
    alice.close();
    await alice.waitClosed();
    await until(async () => (await subscribers()) === 0, "alice's channel to be unsubscribed once nothing holds it");
  });
});
