import { Logger } from '@nestjs/common';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, it } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { PROTOCOL_V1, PROTOCOL_V1_MSGPACK, RealtimeModule, type RealtimeModuleOptions } from '../src/index.js';
import { RealtimeClient, RealtimeClientError } from '../src/client/index.js';
import { pack } from '../src/protocol/msgpack.js';
import { RedisBroker } from '../src/redis.js';
import { RealtimeTestClient, RealtimeTestError } from '../src/testing/index.js';
import { BinaryGateway } from './fixtures/binary-gateways.js';
import { startApp, type RunningApp } from './support/app.js';
import { RedisServer } from './support/redis-server.js';
import { until } from './support/until.js';
import { TestClient } from './support/ws-client.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

type Frame = Record<string, unknown>;

/** What came as MessagePack bytes (bin), as a Buffer; fails for anything else (a `{type: 'Buffer', data}` object, say). */
function bytesOf(value: unknown): Buffer {
  assert.ok(value instanceof Uint8Array, `not bytes: ${JSON.stringify(value)}`);
  return Buffer.from(value);
}

/** Bytes that are not valid UTF-8 and not JSON: only a binary encoding carries them as they are. */
const BYTES = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x7b, 0x22, 0x0a, 0xc1]);

describe('the MessagePack encoding (protocol 1.2)', () => {
  const apps: RunningApp[] = [];
  const clients: TestClient[] = [];
  const sdks: RealtimeClient[] = [];

  async function start(options: RealtimeModuleOptions = {}): Promise<RunningApp> {
    const app = await startApp({ imports: [RealtimeModule.forRoot(options)], providers: [BinaryGateway] });
    apps.push(app);
    return app;
  }

  /** A frame-level client offering `protocols` (MessagePack first, JSON too, by default). */
  async function connect(app: RunningApp, protocols = [PROTOCOL_V1_MSGPACK, PROTOCOL_V1], options = {}): Promise<TestClient> {
    const client = await TestClient.connect(app.wsUrl('/bin'), options, protocols);
    clients.push(client);
    return client;
  }

  /** Sends a frame and returns the next frame, which must be binary. */
  async function binaryRequest(client: TestClient, frame: unknown): Promise<Frame> {
    client.send(frame);
    return nextBinary(client);
  }

  async function nextBinary(client: TestClient): Promise<Frame> {
    const received = await client.next();
    assert.equal(received.isBinary, true, `a text frame came: ${received.text}`);
    assert.ok(received.json, 'the binary frame decodes as MessagePack');
    return received.json;
  }

  afterEach(async () => {
    sdks.splice(0).forEach((sdk) => sdk.disconnect());
    clients.splice(0).forEach((client) => client.close());
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });

  it('is selected when offered, next to JSON or alone; a client that offers only JSON gets JSON', async () => {
    const app = await start();
    assert.equal((await connect(app)).socket.protocol, PROTOCOL_V1_MSGPACK);
    assert.equal((await connect(app, [PROTOCOL_V1_MSGPACK])).socket.protocol, PROTOCOL_V1_MSGPACK);
    const json = await connect(app, [PROTOCOL_V1]);
    assert.equal(json.socket.protocol, PROTOCOL_V1);
    const reply = await json.request({ event: 'echo', id: 1, data: 'text' });
    assert.deepEqual(reply, { event: 'echo', id: 1, data: 'text' });
  });

  it('carries bytes inside data both ways, in the envelope of JSON (same fields, same order)', async () => {
    const client = await connect(await start());
    const data = { name: 'blob', bytes: BYTES, nested: [{ more: new Uint8Array([1, 2, 3]) }], n: 1.5, none: null };
    const received = await binaryRequest(client, { event: 'echo', id: 'a1', data });
    assert.deepEqual(Object.keys(received), ['event', 'id', 'data']);
    assert.equal(received.event, 'echo');
    assert.equal(received.id, 'a1');
    const echoed = received.data as { bytes: Uint8Array; nested: { more: Uint8Array }[]; n: number; none: null; name: string };
    assert.deepEqual(bytesOf(echoed.bytes), BYTES);
    assert.deepEqual([...echoed.nested[0]!.more], [1, 2, 3]);
    assert.equal(echoed.n, 1.5);
    assert.equal(echoed.none, null);
    // A push without id, a reply without data: as in JSON.
    const nothing = await binaryRequest(client, { event: 'echo', id: 2 });
    assert.deepEqual(nothing, { event: 'echo', id: 2, data: null });
    // Application ping.
    const pong = await binaryRequest(client, { event: 'ping', id: 3 });
    assert.equal(pong.event, 'pong');
    assert.equal(typeof (pong.data as { t: unknown }).t, 'number');
    // A date travels as JSON renders it.
    const when = await binaryRequest(client, { event: 'when', id: 4 });
    assert.deepEqual(when.data, { at: '2026-01-02T03:04:05.000Z' });
  });

  it('validates DTOs as JSON does: bytes reach the handler as a Buffer, and a bad frame gets the same error frame', async () => {
    const app = await start();
    const client = await connect(app);
    const ok = await binaryRequest(client, { event: 'upload', id: 1, data: { name: 'photo', bytes: BYTES } });
    assert.equal(ok.event, 'upload');
    const body = ok.data as { name: string; size: number; buffer: boolean; bytes: Uint8Array };
    assert.deepEqual({ ...body, bytes: bytesOf(body.bytes) }, { name: 'photo', size: BYTES.length, buffer: true, bytes: BYTES });
    const bad = { event: 'upload', id: 2, data: { name: 5, bytes: 'not bytes' } };
    const fromBinary = await binaryRequest(client, bad);
    const fromJson = await (await connect(app, [PROTOCOL_V1])).request(bad);
    assert.equal(fromBinary.event, 'error');
    assert.equal((fromBinary.data as { code: string }).code, 'VALIDATION_FAILED');
    assert.deepEqual(fromBinary, fromJson);
    // MessagePack values that are objects in JavaScript but no map (bytes, a timestamp) are not a DTO's data.
    for (const [id, data] of [
      [3, new Uint8Array(60_000)],
      [4, new Date(0)],
    ] as const) {
      const refused = await binaryRequest(client, { event: 'upload', id, data });
      assert.equal(refused.id, id);
      assert.deepEqual(refused.data, {
        code: 'VALIDATION_FAILED',
        message: 'validation failed: data must be a JSON object (UploadDto)',
        details: [],
      });
    }
  });

  it('answers every bad binary frame with a clear error frame, with its id when it has one', async () => {
    const client = await connect(await start());
    const refusal = async (frame: Uint8Array | string): Promise<Frame> => {
      client.socket.send(frame);
      const received = await nextBinary(client);
      assert.equal(received.event, 'error');
      return received;
    };
    const notMsgpack = await refusal(Buffer.from([0xc1]));
    assert.deepEqual(Object.keys(notMsgpack), ['event', 'data']);
    assert.match((notMsgpack.data as { message: string }).message, /^frame is not valid MessagePack: /);
    assert.deepEqual((await refusal(pack([1, 2]))).data, { code: 'BAD_REQUEST', message: 'frame must be a MessagePack map' });
    assert.deepEqual((await refusal(pack('echo'))).data, { code: 'BAD_REQUEST', message: 'frame must be a MessagePack map' });
    // Two messages in one frame are not one frame.
    assert.equal((await refusal(Buffer.concat([pack({ event: 'echo' }), pack({ event: 'echo' })]))).event, 'error');
    // A map with a __proto__ key never reaches an object's prototype.
    const proto = Buffer.from([0x82, 0xa5, ...Buffer.from('event'), 0xa4, ...Buffer.from('echo'), 0xa9, ...Buffer.from('__proto__'), 0x80]);
    assert.match(((await refusal(proto)).data as { message: string }).message, /__proto__/);
    assert.deepEqual(await refusal(pack({ event: 'nope', id: 9 })), {
      event: 'error',
      id: 9,
      data: { code: 'UNKNOWN_EVENT', message: 'no handler for event "nope"' },
    });
    assert.deepEqual((await refusal(pack({ event: 'echo', id: {} }))).data, {
      code: 'BAD_REQUEST',
      message: '"id" must be a string of 1 to 64 characters or a number of magnitude at most 2^53 - 1',
    });
    let deep: unknown = 1;
    for (let i = 0; i < 40; i++) {
      deep = [deep];
    }
    assert.deepEqual(await refusal(pack({ event: 'echo', id: 'deep', data: deep })), {
      event: 'error',
      id: 'deep',
      data: { code: 'BAD_REQUEST', message: 'frame is nested deeper than 32 levels' },
    });
    // 65,536 nested arrays in a frame under the size limit: refused, nothing crashes.
    assert.equal((await refusal(Buffer.alloc(60_000, 0x91))).event, 'error');
    // Sizes the bytes cannot hold: refused before anything is reserved for them. 21,000
    // nested arrays of 65,535 elements would take gigabytes; 2^25 elements, 270 MB.
    const huge = await refusal(Buffer.concat(Array.from({ length: 21_000 }, () => Buffer.from([0xdc, 0xff, 0xff]))));
    assert.deepEqual(huge.data, {
      code: 'BAD_REQUEST',
      message: 'frame is not valid MessagePack: the message declares more than it holds',
    });
    assert.equal((await refusal(Buffer.from([0xdd, 0x01, 0xff, 0xff, 0xff]))).event, 'error');
    assert.equal((await refusal(Buffer.from([0xdf, 0x7f, 0xff, 0xff, 0xff]))).event, 'error');
    assert.equal((await refusal(Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff, 0x00]))).event, 'error');
    assert.equal((await refusal(Buffer.from([0x81, 0xa1]))).event, 'error');
    const textFrame = await refusal('{"event":"echo","id":1}');
    assert.deepEqual(textFrame.data, {
      code: 'BAD_REQUEST',
      message: 'this connection speaks MessagePack (realtime.v1.msgpack): frames must be binary',
    });
    assert.equal(textFrame.id, 1, 'the refusal names the request it refuses');
    // Still serving.
    assert.deepEqual(await binaryRequest(client, { event: 'echo', id: 'after', data: 1 }), { event: 'echo', id: 'after', data: 1 });
  });

  /** `1` inside `depth` arrays. */
  function nested(depth: number): unknown {
    let value: unknown = 1;
    for (let i = 0; i < depth; i++) {
      value = [value];
    }
    return value;
  }

  it('carries data as deep as JSON does: a push nested 150 deep reaches its MessagePack members too', async () => {
    const app = await start({ limits: { maxDepth: 200 } });
    const first = await connect(app, [PROTOCOL_V1]);
    const packed = await connect(app);
    const last = await connect(app, [PROTOCOL_V1]);
    for (const client of [first, packed, last]) {
      await client.request({ event: 'join', id: 'j', data: { room: 'deep' } });
    }
    first.send({ event: 'send', id: 's', data: { room: 'deep', payload: nested(150) } });
    for (const client of [first, packed, last]) {
      const push = client === packed ? await nextBinary(packed) : await client.nextJson();
      assert.deepEqual([push.event, push.data], ['message', nested(150)]);
    }
    assert.deepEqual((await first.nextJson()).data, { offset: 1 });
  });

  it('refuses over the rate limit with the request id, as in JSON', async () => {
    const client = await connect(await start({ limits: { messageRate: { perSecond: 1, burst: 2 }, userMessageRate: false } }));
    for (let id = 1; id <= 4; id++) {
      client.send({ event: 'echo', id, data: id });
    }
    // Over the limit, a frame in the other encoding (JSON text) is refused with its id as well.
    client.socket.send('{"event":"echo","id":5}');
    const replies = [];
    for (let i = 0; i < 5; i++) {
      replies.push(await nextBinary(client));
    }
    assert.deepEqual(
      replies.map((reply) => [reply.id, reply.event, (reply.data as { code?: string }).code ?? reply.data]),
      [
        [1, 'echo', 1],
        [2, 'echo', 2],
        [3, 'error', 'RATE_LIMITED'],
        [4, 'error', 'RATE_LIMITED'],
        [5, 'error', 'RATE_LIMITED'],
      ],
    );
  });

  it('sends room pushes to each member in its encoding: bytes to MessagePack, their JSON rendering to JSON, one offset', async () => {
    const app = await start();
    const packed = await connect(app);
    const json = await connect(app, [PROTOCOL_V1]);
    const room = `r-${randomUUID()}`;
    await binaryRequest(packed, { event: 'join', id: 'j', data: { room } });
    assert.equal((await json.request({ event: 'join', id: 'j', data: { room } })).event, 'join');
    packed.send({ event: 'send', id: 's', data: { room, payload: { file: BYTES, at: new Date(0) } } });
    // The sender is a member: its push and the reply, in either order.
    const [push, sent] = [await nextBinary(packed), await nextBinary(packed)].sort((a, b) => Number('id' in a) - Number('id' in b));
    const offset = (sent!.data as { offset: number }).offset;
    assert.equal(typeof offset, 'number');
    assert.deepEqual(Object.keys(push), ['offset', 'event', 'room', 'data']);
    assert.deepEqual({ ...push, data: undefined }, { offset, event: 'message', room, data: undefined });
    const data = push.data as { file: Uint8Array; at: string };
    assert.deepEqual(bytesOf(data.file), BYTES);
    assert.equal(data.at, new Date(0).toISOString());
    assert.deepEqual(await json.nextJson(), {
      offset,
      event: 'message',
      room,
      data: { file: { type: 'Buffer', data: [...BYTES] }, at: new Date(0).toISOString() },
    });
    // A push JSON carries whole is spliced, not decoded: both get it, the MessagePack member as MessagePack.
    json.send({ event: 'send', id: 't', data: { room, payload: 'plain' } });
    const texts = [await json.nextJson(), await json.nextJson()];
    assert.deepEqual(
      texts.find((frame) => frame.id === undefined),
      { offset: offset + 1, event: 'message', room, data: 'plain' },
    );
    assert.deepEqual(await nextBinary(packed), { offset: offset + 1, event: 'message', room, data: 'plain' });
    // A broadcast to everyone, as well.
    packed.send({ event: 'shout', data: { b: BYTES } });
    assert.deepEqual(bytesOf(((await nextBinary(packed)).data as { b: Uint8Array }).b), BYTES);
    assert.deepEqual((await json.nextJson()).data, { b: { type: 'Buffer', data: [...BYTES] } });
  });

  it('makes every encoding of a push, live or recovered, from what JSON makes of its data, bytes kept', async () => {
    const app = await start();
    const room = `r-${randomUUID()}`;
    const packed = await connect(app);
    const json = await connect(app, [PROTOCOL_V1]);
    const joined = (await binaryRequest(packed, { event: 'join', id: 'j', data: { room } })).data as { epoch: string; offset: number };
    await json.request({ event: 'join', id: 'j', data: { room } });
    const asJson = { price: '1.10', at: '1970-01-01T00:00:00.000Z', bad: null, nan: null, list: [null, null, 2] };
    const bytes = { f32: [0, 0, 192, 63], buffer: [0, 0], bytes: [1, 2] };
    const readBytes = (data: Frame): Frame =>
      Object.fromEntries(Object.entries(data).map(([key, value]) => [key, key in bytes ? [...bytesOf(value)] : value]));
    packed.send({ event: 'rich', id: 'r', data: { room } });
    const [push, reply] = [await nextBinary(packed), await nextBinary(packed)].sort((a, b) => Number('id' in a) - Number('id' in b));
    assert.deepEqual(readBytes(push!.data as Frame), { ...asJson, ...bytes });
    assert.deepEqual(readBytes(reply!.data as Frame), { ...asJson, ...bytes });
    const jsonBytes = Object.fromEntries(Object.entries(bytes).map(([key, data]) => [key, { type: 'Buffer', data }]));
    assert.deepEqual((await json.nextJson()).data, { ...asJson, ...jsonBytes });
    // The same push recovered from history, by a MessagePack member and by a JSON one.
    const since = { offset: joined.offset, epoch: joined.epoch };
    const again = await connect(app);
    await binaryRequest(again, { event: 'join', id: 'again', data: { room, since } });
    assert.deepEqual(readBytes((await nextBinary(again)).data as Frame), { ...asJson, ...bytes });
    const jsonAgain = await connect(app, [PROTOCOL_V1]);
    await jsonAgain.request({ event: 'join', id: 'again', data: { room, since } });
    assert.deepEqual((await jsonAgain.nextJson()).data, { ...asJson, ...jsonBytes });
  });

  it('recovers missed room messages with their bytes intact after a reconnection', async () => {
    const app = await start();
    const room = `r-${randomUUID()}`;
    const first = await connect(app);
    const joined = await binaryRequest(first, { event: 'join', id: 'j', data: { room } });
    const { epoch } = joined.data as { epoch: string; offset: number };
    first.close();
    const sender = await connect(app, [PROTOCOL_V1_MSGPACK]);
    for (let i = 0; i < 3; i++) {
      await binaryRequest(sender, { event: 'send', id: i, data: { room, payload: Buffer.from([i, 0xff]) } });
    }
    const back = await connect(app);
    const reply = await binaryRequest(back, { event: 'join', id: 'again', data: { room, since: { offset: 0, epoch } } });
    assert.equal((reply.data as { recovered: boolean }).recovered, true);
    for (let i = 0; i < 3; i++) {
      const push = await nextBinary(back);
      assert.equal(push.offset, i + 1);
      assert.deepEqual([...bytesOf(push.data)], [i, 0xff]);
    }
  });

  it('takes server requests and their replies in MessagePack, bytes included', async () => {
    const client = await connect(await start());
    client.send({ event: 'ask', id: 1, data: { doc: BYTES } });
    const asked = await nextBinary(client);
    assert.equal(asked.event, 'sign');
    assert.equal(typeof asked.sid, 'number');
    assert.deepEqual(bytesOf((asked.data as { doc: Uint8Array }).doc), BYTES);
    client.send({ event: 'sign', sid: asked.sid, data: { signature: Buffer.from([9, 9]) } });
    const answered = await nextBinary(client);
    assert.deepEqual([...bytesOf((answered.data as { reply: { signature: unknown } }).reply.signature)], [9, 9]);
  });

  it('compresses binary frames over the threshold when the connection negotiated permessage-deflate', async () => {
    const app = await start({ compression: { threshold: 1024 } });
    const client = await connect(app, [PROTOCOL_V1_MSGPACK], { perMessageDeflate: true });
    assert.equal(client.socket.extensions, 'permessage-deflate');
    const socket = (client.socket as WebSocket & { _socket: { bytesRead: number } })._socket;
    const big = Buffer.alloc(30_000, 'abcdefgh');
    const before = socket.bytesRead;
    const reply = await binaryRequest(client, { event: 'echo', id: 1, data: big });
    assert.deepEqual(bytesOf(reply.data as Uint8Array), big);
    assert.ok(socket.bytesRead - before < 3000, `${socket.bytesRead - before} bytes on the wire for a reply of 30,000`);
  });

  it('carries bytes across instances through Redis, and recovers them from its history', async () => {
    const redis = await RedisServer.start();
    try {
      const keyPrefix = `m${randomUUID().slice(0, 8)}:`;
      const [a, b] = await Promise.all([
        start({ broker: new RedisBroker({ url: redis.url, keyPrefix }) }),
        start({ broker: new RedisBroker({ url: redis.url, keyPrefix }) }),
      ]);
      const room = `r-${randomUUID()}`;
      const onB = await connect(b!);
      const joined = (await binaryRequest(onB, { event: 'join', id: 'j', data: { room } })).data as { epoch: string; offset: number };
      const jsonOnB = await connect(b!, [PROTOCOL_V1]);
      await jsonOnB.request({ event: 'join', id: 'j', data: { room } });
      const sender = await connect(a!);
      await binaryRequest(sender, { event: 'send', id: 1, data: { room, payload: { file: BYTES } } });
      assert.deepEqual(bytesOf(((await nextBinary(onB)).data as { file: Uint8Array }).file), BYTES);
      assert.deepEqual((await jsonOnB.nextJson()).data, { file: { type: 'Buffer', data: [...BYTES] } });
      // Missed while away, recovered from Redis on another instance.
      onB.close();
      await binaryRequest(sender, { event: 'send', id: 2, data: { room, payload: BYTES } });
      const back = await connect(a!);
      const since = { offset: joined.offset + 1, epoch: joined.epoch };
      const reply = await binaryRequest(back, { event: 'join', id: 'again', data: { room, since } });
      assert.equal((reply.data as { recovered: boolean }).recovered, true);
      const missed = await nextBinary(back);
      assert.equal(missed.offset, joined.offset + 2);
      assert.deepEqual(bytesOf(missed.data as Uint8Array), BYTES);
    } finally {
      clients.splice(0).forEach((client) => client.close());
      await Promise.all(apps.splice(0).map((app) => app.close()));
      await redis.stop();
    }
  });

  it("gives the test helpers' client the encoding too", async () => {
    const app = await start();
    await assert.rejects(
      RealtimeTestClient.connect(app.app, '/bin', { encoding: 'cbor' as 'json' }),
      /encoding is 'json' or 'msgpack', got "cbor"/,
    );
    const client = await RealtimeTestClient.connect(app.app, '/bin', { encoding: 'msgpack' });
    try {
      assert.equal(client.socket.protocol, PROTOCOL_V1_MSGPACK);
      assert.deepEqual(bytesOf((await client.request<{ b: unknown }>('echo', { b: BYTES })).b), BYTES);
      client.send('shout', BYTES);
      assert.deepEqual(bytesOf((await client.next('shout')).data), BYTES);
      await assert.rejects(client.request('upload', {}), (error: RealtimeTestError) => error.code === 'VALIDATION_FAILED');
    } finally {
      client.close();
    }
  });

  describe('the client SDK with encoding: msgpack', () => {
    function sdk(url: string, options = {}): RealtimeClient {
      const client = new RealtimeClient(url, { WebSocket, encoding: 'msgpack', pingIntervalMs: false, ...options });
      sdks.push(client);
      return client;
    }

    it('requests, receives pushes and answers server requests with bytes, queued frames included', async () => {
      const app = await start();
      const client = sdk(app.wsUrl('/bin'));
      // Sent before the connection is open: queued, then written in the encoding the server selected.
      const early = client.request<{ bytes: Uint8Array }>('echo', { bytes: BYTES });
      assert.deepEqual(bytesOf((await early).bytes), BYTES);
      const room = `r-${randomUUID()}`;
      const pushes: unknown[] = [];
      client.on('message', (data) => pushes.push(data));
      await client.join(room);
      await client.request('send', { room, payload: new Uint8Array([7, 8]) });
      await until(() => pushes.length === 1, 'the room push');
      assert.deepEqual([...bytesOf(pushes[0])], [7, 8]);
      client.handle('sign', (data) => ({ signed: data }));
      const answered = await client.request<{ reply: { signed: Uint8Array } }>('ask', BYTES);
      assert.deepEqual(bytesOf(answered.reply.signed), BYTES);
      // The server's error frames reject as in JSON.
      await assert.rejects(client.request('upload', { name: 1 }), (error: RealtimeClientError) => error.code === 'VALIDATION_FAILED');
    });

    it('sends a queued frame as it was when it was queued', async () => {
      const app = await start();
      const client = sdk(app.wsUrl('/bin'));
      const bytes = new Uint8Array([1, 2, 3]);
      const data = { bytes, note: 'before' };
      // Right after the constructor: queued until the connection opens.
      const reply = client.request<{ bytes: Uint8Array; note: string }>('echo', data);
      bytes[0] = 9;
      data.note = 'after';
      const echoed = await reply;
      assert.deepEqual([...bytesOf(echoed.bytes)], [1, 2, 3]);
      assert.equal(echoed.note, 'before');
      // What MessagePack cannot carry throws at the call, as with JSON.
      assert.throws(() => client.send('echo', { n: 1n }), /BigInt/);
    });

    it('speaks JSON to a server that does not select MessagePack', async () => {
      const server = new WebSocketServer({
        port: 0,
        handleProtocols: (protocols: Set<string>) => (protocols.has(PROTOCOL_V1) ? PROTOCOL_V1 : false),
      });
      await once(server, 'listening');
      const offered: string[][] = [];
      const frames: { binary: boolean; text: string }[] = [];
      server.on('connection', (socket, request) => {
        offered.push(String(request.headers['sec-websocket-protocol']).split(/,\s*/));
        socket.on('message', (data: Buffer, isBinary) => {
          frames.push({ binary: isBinary, text: data.toString() });
          const frame = JSON.parse(data.toString()) as { id: number; data: unknown };
          socket.send(JSON.stringify({ event: 'echo', id: frame.id, data: frame.data }));
        });
      });
      try {
        const client = sdk(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
        assert.deepEqual(await client.request('echo', { n: 1 }), { n: 1 });
        assert.deepEqual(offered, [[PROTOCOL_V1_MSGPACK, PROTOCOL_V1]]);
        assert.deepEqual(frames, [{ binary: false, text: '{"event":"echo","id":1,"data":{"n":1}}' }]);
      } finally {
        sdks.splice(0).forEach((client) => client.disconnect());
        server.close();
      }
    });

    it('refuses an unknown encoding at once', () => {
      assert.throws(
        () => new RealtimeClient('ws://127.0.0.1:1', { WebSocket, encoding: 'cbor' as 'json', autoConnect: false }),
        /encoding is 'json' or 'msgpack', got "cbor"/,
      );
    });
  });
});
