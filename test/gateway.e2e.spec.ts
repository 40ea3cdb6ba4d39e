import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { createConnection, type Socket } from 'node:net';
import { once } from 'node:events';
import request from 'supertest';
import { isRealtimeErrorCode, RealtimeError, RealtimeMetrics, RealtimeModule } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';
import { countServerWrites } from './support/socket-writes.js';
import { until, within } from './support/until.js';
import { CapturingLogger } from './fixtures/auth-gateways.js';
import { pack } from '../src/protocol/msgpack.js';
import { BadCodeAboveGateway, BadCodeGateway, LifecycleLog, OtherGateway, TestGateway } from './fixtures/test-gateways.js';

describe('gateway adapter and protocol v1 envelope', () => {
  let running: RunningApp;
  let log: LifecycleLog;
  const clients: TestClient[] = [];

  async function connect(path = '/test'): Promise<TestClient> {
    const client = await TestClient.connect(running.wsUrl(path));
    clients.push(client);
    return client;
  }

  /** Starts the app again with `/test` alone, logging into the logger it returns. */
  async function restartWithLogger(): Promise<CapturingLogger> {
    await running.close();
    const logger = new CapturingLogger();
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [LifecycleLog, TestGateway] }, (app) =>
      app.useLogger(logger),
    );
    log = running.app.get(LifecycleLog);
    return logger;
  }

  beforeEach(async () => {
    running = await startApp({
      imports: [RealtimeModule.forRoot({})],
      providers: [LifecycleLog, TestGateway, OtherGateway],
    });
    log = running.app.get(LifecycleLog);
  });

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await running.close();
  });

  describe('replies', () => {
    it('answers a request with an id with the same event, id and the result', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'echo', id: 1, data: { message: 'hi' } }), {
        event: 'echo',
        id: 1,
        data: { message: 'hi' },
      });
      assert.deepEqual(await client.request({ event: 'echo', id: 'req-7', data: 'x' }), {
        event: 'echo',
        id: 'req-7',
        data: 'x',
      });
    });

    it('answers a request without an id only with data, and without an id', async () => {
      const client = await connect();
      client.send({ event: 'nothing' });
      client.send({ event: 'echo', data: { a: 1 } });
      assert.deepEqual(await client.nextJson(), { event: 'echo', data: { a: 1 } });
      assert.equal(client.pending, 0);
    });

    it('sends data: null when a handler returns nothing to a request with an id', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'nothing', id: 2 }), { event: 'nothing', id: 2, data: null });
    });

    it('replies under the event of a returned WsResponse', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'respond', id: 3, data: [1] }), {
        event: 'custom',
        id: 3,
        data: [1],
      });
      assert.deepEqual(await client.request({ event: 'respond', data: 'no id' }), { event: 'custom', data: 'no id' });
    });

    it('awaits async handlers and takes the last value of an observable', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'async', id: 4, data: 'later' }), {
        event: 'async',
        id: 4,
        data: 'later',
      });
      assert.deepEqual(await client.request({ event: 'observable', id: 5 }), { event: 'observable', id: 5, data: 3 });
    });

    it('stops the observable of a request that has not completed shortly after its client goes away (closeTimeoutMs)', async () => {
      const client = await connect();
      client.send({ event: 'forever', id: 1 });
      await until(() => log.ticks > 2, 'the observable to be running');
      assert.deepEqual(await client.request({ event: 'echo', id: 2, data: 'x' }), { event: 'echo', id: 2, data: 'x' });
      assert.equal(log.streamsStopped, 0);
      client.socket.close(1000);
      await log.disconnects(1);
      await until(() => log.streamsStopped === 1, 'the observable to be unsubscribed');
      const ticks = log.ticks;
      await new Promise((resolve) => setTimeout(resolve, 30));
      assert.equal(log.ticks, ticks, 'the observable went on after its client left');
    });

    it('runs to the end a request behind an interceptor that arrived just before its client closed', async () => {
      const client = await connect();
      client.socket.send(JSON.stringify({ event: 'save', id: 1, data: 'kept' }));
      client.socket.close(1000);
      await log.disconnects(1);
      await until(() => log.audited.length === 1, 'the interceptor to see the request complete');
      assert.deepEqual(log.saved, ['kept']);
      assert.deepEqual(log.audited, ['kept']);
    });

    it('gives @ConnectedSocket() the ws client', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'socket', id: 6 }), { event: 'socket', id: 6, data: true });
    });

    it('answers the reserved ping with pong and the server time', async () => {
      const client = await connect();
      const before = Date.now();
      const reply = await client.request({ event: 'ping', id: 'p' });
      assert.equal(reply.event, 'pong');
      assert.equal(reply.id, 'p');
      const t = (reply.data as { t: number }).t;
      assert.ok(t >= before && t <= Date.now(), `pong time ${t} out of range`);
      const noId = await client.request({ event: 'ping' });
      assert.equal(noId.event, 'pong');
      assert.equal('id' in noId, false);
    });

    it('sends each of many interleaved requests exactly one reply', async () => {
      const client = await connect();
      for (let i = 0; i < 200; i++) {
        client.send(i % 2 === 0 ? { event: 'async', id: i, data: i } : { event: 'nope', id: i });
      }
      const seen = new Map<unknown, Record<string, unknown>>();
      for (let i = 0; i < 200; i++) {
        const reply = await client.nextJson();
        assert.equal(seen.has(reply.id), false, `second reply for id ${String(reply.id)}`);
        seen.set(reply.id, reply);
      }
      for (let i = 0; i < 200; i++) {
        const reply = seen.get(i);
        assert.ok(reply, `no reply for id ${i}`);
        assert.equal(reply.event, i % 2 === 0 ? 'async' : 'error');
      }
    });

    // Handlers that answer through their MessageContext more than once: the first answer is the only frame.
    const answeredOnce: [string, unknown][] = [
      ['reply-twice', 'first'],
      ['reply-then-throw', 'sent'],
      ['fail-then-reply', { code: 'CONFLICT', message: 'already taken' }],
      ['fail-then-throw', { code: 'CONFLICT', message: 'already taken' }],
    ];
    for (const [event, data] of answeredOnce) {
      it(`sends one frame for ${event}: the first answer`, async () => {
        const client = await connect();
        assert.deepEqual(await client.request({ event, id: 'once' }), {
          event: typeof data === 'string' ? event : 'error',
          id: 'once',
          data,
        });
        // Anything more the handler sent was written before the next request arrived: the next frame must be its reply.
        assert.deepEqual(await client.request({ event: 'echo', id: 'after', data: 'next' }), { event: 'echo', id: 'after', data: 'next' });
        assert.equal(client.pending, 0);
      });
    }

    it('answers frames that arrive together in one write, and a slow reply in a write of its own', async () => {
      const writes = countServerWrites(running.app);
      const client = await connect();
      const counter = writes.at(-1)!;
      await client.request({ event: 'echo', id: 'warm', data: 0 });
      const before = counter.count;
      const raw = (client.socket as unknown as { _socket: Socket })._socket;
      raw.cork();
      for (let i = 0; i < 10; i++) {
        client.send({ event: 'echo', id: i, data: i });
      }
      client.send({ event: 'async', id: 'slow', data: 'later' });
      raw.uncork();
      for (let i = 0; i < 10; i++) {
        assert.deepEqual(await client.nextJson(), { event: 'echo', id: i, data: i });
      }
      assert.equal(counter.count - before, 1, 'ten replies in one write');
      assert.deepEqual(await client.nextJson(), { event: 'async', id: 'slow', data: 'later' });
      assert.equal(counter.count - before, 2, 'the reply 5 ms later in a write of its own');
    });
  });

  describe('raw text', () => {
    it('routes a frame that does not start with { to the raw handler and replies with raw text', async () => {
      const client = await connect();
      client.send('hi');
      const raw = await client.next();
      assert.deepEqual({ ...raw, bytes: undefined }, { json: undefined, text: 'raw: hi', isBinary: false, bytes: undefined });
      client.send('  [1,2]');
      assert.equal((await client.next()).text, 'raw:   [1,2]');
    });

    it('never lets a JSON frame reach the raw handler by naming its internal event', async () => {
      const client = await connect();
      client.send(JSON.stringify({ event: '<raw text>', id: 2, data: 'json' }));
      assert.deepEqual(await client.nextJson(), {
        event: 'error',
        id: 2,
        data: { code: 'UNKNOWN_EVENT', message: 'no handler for event "<raw text>"' },
      });
    });

    it('answers an error of the raw handler with an error frame', async () => {
      const client = await connect();
      client.send('fail');
      assert.deepEqual(await client.nextJson(), {
        event: 'error',
        data: { code: 'BAD_REQUEST', message: 'raw failure' },
      });
    });

    it('answers a raw result that cannot be serialized with INTERNAL, and the process lives on', async () => {
      const client = await connect();
      client.send('bigint');
      assert.deepEqual(await client.nextJson(), {
        event: 'error',
        data: { code: 'INTERNAL', message: 'the handler result could not be serialized' },
      });
      client.send('again');
      assert.equal((await client.next()).text, 'raw: again');
    });

    it('answers raw text with BAD_REQUEST on a gateway without a raw handler', async () => {
      const client = await connect('/other');
      for (const frame of ['hi', '[1,2]', '42', '"a string"', 'null', '']) {
        client.send(frame);
        assert.deepEqual(
          await client.nextJson(),
          { event: 'error', data: { code: 'BAD_REQUEST', message: 'frame must be a JSON object' } },
          `frame ${JSON.stringify(frame)}`,
        );
      }
    });
  });

  describe('bad frames', () => {
    it('answers malformed JSON with BAD_REQUEST', async () => {
      const client = await connect();
      assert.deepEqual(await client.request('{"event": "echo", '), {
        event: 'error',
        data: { code: 'BAD_REQUEST', message: 'frame is not valid JSON' },
      });
    });

    it('answers a missing or non-string event with BAD_REQUEST tied to the id', async () => {
      const client = await connect();
      for (const event of [undefined, 42, null, '', ['echo'], { name: 'echo' }, 'x'.repeat(129)]) {
        const reply = await client.request({ event, id: 9, data: 1 });
        assert.equal(reply.event, 'error');
        assert.equal(reply.id, 9);
        assert.equal((reply.data as { code: string }).code, 'BAD_REQUEST');
        assert.match((reply.data as { message: string }).message, /"event" must be a string/);
      }
    });

    it('answers a bad id with BAD_REQUEST and no id', async () => {
      const client = await connect();
      for (const id of [true, null, { a: 1 }, [1], '', 'x'.repeat(65)]) {
        const reply = await client.request({ event: 'echo', id, data: 1 });
        assert.deepEqual(reply.event, 'error');
        assert.equal('id' in reply, false, `id ${JSON.stringify(id)} was echoed`);
        assert.equal((reply.data as { code: string }).code, 'BAD_REQUEST');
      }
      const longest = 'x'.repeat(64);
      assert.equal((await client.request({ event: 'echo', id: longest, data: 1 })).id, longest);
      // A number past 2^53 - 1 is read as another one: refused, not answered with an id the client never sent.
      for (const id of ['9007199254740993', '-9007199254740993', '1e300']) {
        client.socket.send(`{"event":"echo","id":${id},"data":1}`);
        assert.deepEqual(await client.nextJson(), {
          event: 'error',
          data: { code: 'BAD_REQUEST', message: '"id" must be a string of 1 to 64 characters or a number of magnitude at most 2^53 - 1' },
        });
      }
      for (const id of [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 1.5]) {
        assert.equal((await client.request({ event: 'echo', id, data: 1 })).id, id);
      }
    });

    it('answers an unknown event with UNKNOWN_EVENT and the id', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'whoami', id: 10 }), {
        event: 'error',
        id: 10,
        data: { code: 'UNKNOWN_EVENT', message: 'no handler for event "whoami"' },
      });
    });

    it('answers a binary frame on a JSON connection with BAD_REQUEST, with the id a MessagePack one names', async () => {
      const client = await connect();
      client.socket.send(Buffer.from('{"event":"echo"}'), { binary: true });
      assert.deepEqual(await client.nextJson(), {
        event: 'error',
        data: { code: 'BAD_REQUEST', message: 'binary frames are only accepted with the realtime.v1.msgpack subprotocol' },
      });
      client.socket.send(Buffer.from(pack({ event: 'echo', id: 7, data: 'hi' })), { binary: true });
      assert.deepEqual(await client.nextJson(), {
        event: 'error',
        id: 7,
        data: { code: 'BAD_REQUEST', message: 'binary frames are only accepted with the realtime.v1.msgpack subprotocol' },
      });
    });

    it('answers nesting deeper than 32 levels with BAD_REQUEST, even 10,000 levels', async () => {
      const client = await connect();
      const nest = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);
      // The envelope is level 1, `data` starts level 2: 31 levels of data is the limit.
      assert.equal((await client.request(`{"event":"echo","id":1,"data":${nest(31)}}`)).event, 'echo');
      const tooDeep = await client.request(`{"event":"echo","id":2,"data":${nest(32)}}`);
      assert.deepEqual(tooDeep, {
        event: 'error',
        id: 2,
        data: { code: 'BAD_REQUEST', message: 'frame is nested deeper than 32 levels' },
      });
      const hostile = await client.request(`{"event":"echo","id":3,"data":${nest(10_000)}}`);
      assert.equal((hostile.data as { code: string }).code, 'BAD_REQUEST');
      assert.deepEqual(await client.request({ event: 'echo', id: 4, data: 'still alive' }), {
        event: 'echo',
        id: 4,
        data: 'still alive',
      });
    });

    it('strips __proto__, constructor and prototype keys before a handler sees them', async () => {
      const client = await connect();
      const reply = await client.request(
        '{"event":"proto","id":1,"data":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},"ok":1,"nested":{"__proto__":{"polluted":true}}}}',
      );
      assert.deepEqual(reply.data, { keys: ['ok', 'nested'], polluted: null, merged: { ok: 1, nested: {} } });
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });

    it('closes with 1009 a frame over 64 KiB, and reports it to handleDisconnect', async () => {
      const client = await connect();
      client.send({ event: 'echo', data: 'x'.repeat(64 * 1024) });
      assert.equal((await client.waitClosed()).code, 1009);
      const [reason] = await log.disconnects(1);
      assert.equal(reason?.cause, 'message-too-big');
      const other = await connect();
      assert.equal((await other.request({ event: 'echo', id: 1, data: 'ok' })).data, 'ok');
    });

    it('accepts a frame just under 64 KiB', async () => {
      const client = await connect();
      const data = 'x'.repeat(60 * 1024);
      assert.equal((await client.request({ event: 'echo', id: 1, data })).data, data);
    });

    it('answers bad frames one by one, then closes a flooding connection with 1008; the process stays healthy', async () => {
      const client = await connect();
      for (let i = 0; i < 1000; i++) {
        client.send(i % 2 === 0 ? '{not json' : { event: 'nope' });
      }
      const closed = await client.waitClosed();
      assert.equal(closed.code, 1008);
      assert.equal(closed.reason, 'too many invalid frames');
      let errors = 0;
      while (client.pending > 0) {
        const frame = await client.nextJson();
        assert.equal(frame.event, 'error');
        errors++;
      }
      assert.ok(errors >= 100, `only ${errors} error frames before the close`);
      const [reason] = await log.disconnects(1);
      assert.equal(reason?.cause, 'policy-violation');
      const healthy = await connect();
      assert.equal((await healthy.request({ event: 'echo', id: 1, data: 'alive' })).data, 'alive');
    });

    it('keeps a connection open below the invalid-frame limit, each bad frame answered', async () => {
      const client = await connect();
      for (let i = 0; i < 50; i++) {
        client.send({ event: 'nope', id: i });
      }
      for (let i = 0; i < 50; i++) {
        assert.equal((await client.nextJson()).id, i);
      }
      assert.equal((await client.request({ event: 'echo', id: 'ok', data: 1 })).id, 'ok');
    });
  });

  describe('handler errors', () => {
    const cases: [string, string, string][] = [
      ['throw-error', 'INTERNAL', 'internal error'],
      ['reject', 'INTERNAL', 'internal error'],
      ['throw-ws', 'BAD_REQUEST', 'room name is taken'],
      ['throw-ws-object', 'CONFLICT', 'already joined'],
      // An error passed on (`new WsException(err)`) is mapped as itself: INTERNAL, its text (an address) kept from the client.
      ['throw-ws-wrapped-error', 'INTERNAL', 'internal error'],
      ['throw-bad-request', 'BAD_REQUEST', 'limit must be positive'],
      ['throw-not-found', 'NOT_FOUND', 'no such room'],
      // A 5xx HttpException is the server's fault: INTERNAL, its text (a password, an address) kept from the client.
      ['throw-http-500', 'INTERNAL', 'internal error'],
      ['throw-http-503', 'INTERNAL', 'internal error'],
      ['guarded', 'FORBIDDEN', 'Forbidden resource'],
      ['circular', 'INTERNAL', 'the handler result could not be serialized'],
      // Applications' own codes, [A-Z][A-Z0-9_]{1,63}: kept; anything else is not a code.
      ['throw-ws-app-code', 'MY_APP_CODE', 'not today'],
      ['throw-ws-bad-code', 'BAD_REQUEST', 'lower case'],
      ['throw-bad-code', 'INTERNAL', 'internal error'],
    ];
    for (const [event, code, message] of cases) {
      it(`turns ${event} into ${code} tied to the id, and keeps the connection`, async () => {
        const client = await connect();
        assert.deepEqual(await client.request({ event, id: 11 }), { event: 'error', id: 11, data: { code, message } });
        client.send({ event });
        assert.deepEqual(await client.nextJson(), { event: 'error', data: { code, message } });
        assert.equal((await client.request({ event: 'echo', id: 12, data: 'after' })).data, 'after');
      });
    }

    it('counts an error frame only when it was sent: not for a client gone before its handler failed', async () => {
      const leaving = await connect();
      leaving.send({ event: 'fail-later', id: 1 });
      leaving.close();
      const staying = await connect();
      assert.equal((await staying.request({ event: 'fail-later', id: 2 })).event, 'error'); // the first one failed by now
      const metrics = await running.app.get(RealtimeMetrics).registry.metrics();
      assert.match(metrics, /^realtime_errors_total\{gateway="\/test",code="BAD_REQUEST"\} 1$/m);
    });

    it("passes an application's own code and its details through RealtimeError", async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'throw-app-code', id: 'a' }), {
        event: 'error',
        id: 'a',
        data: { code: 'ROOM_FULL', message: 'the room has 50 members already', details: [{ limit: 50 }] },
      });
    });

    it('accepts as error codes exactly [A-Z][A-Z0-9_]{1,63}', () => {
      for (const code of ['ROOM_FULL', 'A1', 'X'.repeat(64), 'BAD_REQUEST']) {
        assert.equal(isRealtimeErrorCode(code), true, code);
        assert.equal(new RealtimeError(code, 'm').code, code);
      }
      for (const code of [
        'A',
        'room_full',
        '1ABC',
        'X'.repeat(65),
        'ROOM-FULL',
        '',
        42,
        'TIMEOUT',
        'DISCONNECTED',
        'CLOSED',
        'QUEUE_FULL',
      ]) {
        assert.equal(isRealtimeErrorCode(code), false, String(code));
        assert.throws(() => new RealtimeError(code as string, 'm'), TypeError);
      }
    });

    it('passes RealtimeError code and details through', async () => {
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'throw-realtime', id: 't' }), {
        event: 'error',
        id: 't',
        data: { code: 'FORBIDDEN', message: 'not a member', details: [{ room: 'a' }] },
      });
    });

    it("answers INTERNAL, and warns in the log, when an application's filter fails with what is not a code", async () => {
      await running.close();
      const logger = new CapturingLogger();
      running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [BadCodeGateway, BadCodeAboveGateway] }, (app) =>
        app.useLogger(logger),
      );
      // The application's filter answers, named below or above @RealtimeGateway: the plugin's would log "handler … failed".
      for (const path of ['/bad-code', '/bad-code-above']) {
        const client = await TestClient.connect(running.wsUrl(path));
        assert.deepEqual(await client.request({ event: 'boom', id: 1 }), {
          event: 'error',
          id: 1,
          data: { code: 'INTERNAL', message: 'internal error' },
        });
        client.close();
      }
      assert.doesNotMatch(logger.text, /handler of "boom" failed/);
      assert.match(logger.text, /warn "boom" failed with "teapot", not an error code \(\[A-Z\]\[A-Z0-9_\]\{1,63\}\): answered INTERNAL/);
    });
  });

  describe('paths and lifecycle', () => {
    it('serves two gateways on two paths of the same server', async () => {
      const test = await connect('/test');
      const other = await connect('/other');
      assert.equal((await other.request({ event: 'whoami', id: 1 })).data, 'other');
      assert.equal((await test.request({ event: 'whoami', id: 1 })).event, 'error');
      assert.equal((await test.request({ event: 'echo', id: 2, data: 'x' })).data, 'x');
      const trailing = await connect('/other/?x=1');
      assert.equal((await trailing.request({ event: 'whoami', id: 1 })).data, 'other');
    });

    it('answers an unknown path with HTTP 404 and a JSON body, before any WebSocket exists', async () => {
      const refused = await refusedUpgrade(running.wsUrl('/nowhere?access_token=abc'));
      assert.equal(refused.status, 404);
      assert.match(String(refused.headers['content-type']), /application\/json/);
      assert.deepEqual(JSON.parse(refused.body), { error: 'NOT_FOUND', message: 'no WebSocket gateway at /nowhere' });
      assert.equal(log.connected.length, 0);
    });

    it("leaves a request to upgrade to another protocol to the application's own upgrade listener, and closes it when that one does not answer", async () => {
      await running.close();
      running = await startApp(
        { imports: [RealtimeModule.forRoot({ limits: { handshakeTimeoutMs: 300 } })], providers: [LifecycleLog, TestGateway] },
        (app) => app.getHttpServer().on('upgrade', () => undefined), // a proxy's listener, say, that ignores this path
      );
      const socket = createConnection(running.port, '127.0.0.1');
      try {
        socket.write('GET /health HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
        let answer = '';
        socket.on('data', (bytes: Buffer) => (answer += bytes.toString()));
        const started = performance.now();
        await within(once(socket, 'close'), 'the socket to be closed', 3000);
        assert.equal(answer, '', 'nothing written: the request was left to the other listener');
        assert.ok(performance.now() - started >= 250, 'not before the handshake deadline');
      } finally {
        socket.destroy(); // a socket left open would hold the app's close
      }
    });

    it('selects the realtime.v1 subprotocol when offered, never a bearer entry', async () => {
      const client = await TestClient.connect(running.wsUrl('/test'), {}, ['bearer.abc', 'realtime.v1']);
      clients.push(client);
      assert.equal(client.socket.protocol, 'realtime.v1');
    });

    it('gives handleConnection the upgrade request', async () => {
      await connect('/test?room=a');
      assert.deepEqual(log.connected, [{ path: '/test', url: '/test?room=a' }]);
    });

    it('runs handleDisconnect for a client close and for a terminated client', async () => {
      const closing = await connect();
      closing.socket.close(1000, 'bye');
      const [first] = await log.disconnects(1);
      assert.deepEqual(first, { code: 1000, reason: 'bye', cause: 'client' });
      const dying = await connect();
      dying.socket.terminate();
      const [, second] = await log.disconnects(2);
      assert.equal(second?.code, 1006);
      assert.equal(second?.cause, 'lost');
    });

    it("still tells the application's own listeners on a client of its frames and pongs, and of its close before handleDisconnect", async () => {
      const client = await connect('/test?listen=1');
      const frame = JSON.stringify({ event: 'echo', id: 1, data: 'x' });
      client.socket.send(frame);
      assert.deepEqual(await client.nextJson(), { event: 'echo', id: 1, data: 'x' });
      client.socket.pong();
      client.socket.close(1000, 'bye');
      await log.disconnects(1);
      await until(() => log.heardByApp.length === 3, 'three events heard by the application');
      assert.deepEqual(log.heardByApp, [`message ${frame}`, 'pong', 'close 1000 after 0 disconnect(s)']);
      assert.deepEqual(log.trackedAtDisconnect, [false], "ws's server forgot the client before handleDisconnect");
    });

    it('closes with 1011 a client whose handleConnection throws or rejects, logs why, and serves the others', async () => {
      const logger = await restartWithLogger();
      const bystander = await connect('/test');
      for (const [when, message] of [
        ['sync', 'handleConnection failed at once'],
        ['async', 'handleConnection failed later'],
      ] as const) {
        const failing = await connect(`/test?fail=${when}`);
        assert.deepEqual(await within(failing.waitClosed(), 'the close'), { code: 1011, reason: 'internal error' });
        assert.match(logger.text, new RegExp(`error handleConnection of TestGateway failed: Error: ${message}`));
      }
      const reasons = await log.disconnects(2);
      assert.deepEqual(
        reasons.map((reason) => reason.cause),
        ['server', 'server'],
      );
      assert.deepEqual(await bystander.request({ event: 'echo', id: 1, data: 'still served' }), {
        event: 'echo',
        id: 1,
        data: 'still served',
      });
      // A client that makes it fail again and again cannot flood the log: five lines, then counts.
      for (let i = 0; i < 4; i++) {
        await (await connect('/test?fail=sync')).waitClosed();
      }
      assert.equal(logger.lines.filter((line) => line.includes('handleConnection of TestGateway failed')).length, 5);
    });

    it('logs a handleDisconnect that throws or rejects, and serves on', async () => {
      const logger = await restartWithLogger();
      for (const [reason, message] of [
        ['fail at once', 'handleDisconnect failed at once'],
        ['fail later', 'handleDisconnect failed later'],
      ] as const) {
        const leaving = await connect('/test');
        leaving.socket.close(1000, reason);
        await leaving.waitClosed();
        await until(() => logger.text.includes(message), `"${message}" in the log`);
        assert.match(logger.text, new RegExp(`error handleDisconnect of TestGateway failed: Error: ${message}`));
      }
      const next = await connect('/test');
      assert.deepEqual(await next.request({ event: 'echo', id: 1, data: 'still served' }), { event: 'echo', id: 1, data: 'still served' });
    });

    it('closes every client with 1001 on app.close() and runs handleDisconnect for each', async () => {
      const all = await Promise.all(Array.from({ length: 20 }, () => connect()));
      await running.close();
      const codes = await Promise.all(all.map(async (client) => (await client.waitClosed()).code));
      assert.deepEqual(new Set(codes), new Set([1001]));
      const reasons = await log.disconnects(20);
      assert.ok(reasons.every((reason) => reason.cause === 'shutdown'));
      running = await startApp({
        imports: [RealtimeModule.forRoot({})],
        providers: [LifecycleLog, TestGateway],
      });
    });

    it('keeps HTTP routes working beside gateways', async () => {
      await request(running.app.getHttpServer()).get('/missing').expect(404);
    });
  });
});
