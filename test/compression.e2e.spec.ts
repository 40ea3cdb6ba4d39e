import assert from 'node:assert/strict';
import { afterEach, describe, it, mock } from 'node:test';
import zlib from 'node:zlib';
import type WebSocket from 'ws';
import { RealtimeModule, type RealtimeModuleOptions } from '../src/index.js';
import { resolveCompression } from '../src/options/compression.js';
import { DeflateGateway, PlainGateway } from './fixtures/compression-gateways.js';
import { startApp, type RunningApp } from './support/app.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';

/** Bytes the client's TCP socket has read so far (frames as they came on the wire). */
function bytesRead(client: TestClient): number {
  return (client.socket as WebSocket & { _socket: { bytesRead: number } })._socket.bytesRead;
}

/** Text that compresses well, with repeats both near (within 512 bytes) and far (about 1,200 bytes back). */
function compressible(size: number): string {
  const block = Array.from({ length: 40 }, (_, i) => `line ${i}: the quick brown fox ${i % 7} jumps;`).join(' ');
  return block.repeat(Math.ceil(size / block.length)).slice(0, size);
}

describe('permessage-deflate (opt-in compression)', () => {
  let app: RunningApp;
  const clients: TestClient[] = [];

  async function start(options: RealtimeModuleOptions): Promise<void> {
    app = await startApp({ imports: [RealtimeModule.forRoot(options)], providers: [DeflateGateway, PlainGateway] });
  }

  /** A `ws` client that offers permessage-deflate (`ws` offers it by default), or not. */
  async function connect(path: string, perMessageDeflate: boolean | { serverMaxWindowBits?: number } = true): Promise<TestClient> {
    const client = await TestClient.connect(app.wsUrl(path), { perMessageDeflate });
    clients.push(client);
    return client;
  }

  /** Sends `frame` and returns its reply, and how many bytes came on the wire meanwhile. */
  async function measured(client: TestClient, frame: unknown): Promise<{ reply: Record<string, unknown>; wire: number }> {
    const before = bytesRead(client);
    const reply = await client.request(frame);
    return { reply, wire: bytesRead(client) - before };
  }

  afterEach(async () => {
    mock.restoreAll();
    clients.splice(0).forEach((client) => client.close());
    await app?.close();
  });

  it('is off by default: a client offering it gets no extension, and frames go as they are', async () => {
    await start({});
    const client = await connect('/deflate');
    assert.equal(client.socket.extensions, '');
    const text = compressible(20_000);
    const { reply, wire } = await measured(client, { event: 'echo', id: 1, data: text });
    assert.equal(reply.data, text);
    assert.ok(wire > 20_000, `${wire} bytes on the wire`);
  });

  it('compresses replies over the threshold, not those under it, and each is read back intact', async () => {
    await start({ compression: { threshold: 1024 } });
    const client = await connect('/deflate');
    assert.equal(client.socket.extensions, 'permessage-deflate');
    const large = compressible(20_000);
    const big = await measured(client, { event: 'echo', id: 1, data: large });
    assert.equal(big.reply.data, large);
    assert.ok(big.wire < 20_000 / 4, `${big.wire} bytes on the wire for a reply of over 20,000`);
    const small = compressible(900);
    const under = await measured(client, { event: 'echo', id: 2, data: small });
    assert.equal(under.reply.data, small);
    assert.ok(under.wire > 900, `${under.wire} bytes on the wire for a reply of over 900: not compressed`);
  });

  it('compresses within the window the client allows (server_max_window_bits)', async () => {
    await start({ compression: true });
    // With a 512-byte window the client cannot inflate a reference 1,200 bytes back: the
    // server must not use its 32 KiB window for this client.
    const client = await connect('/deflate', { serverMaxWindowBits: 9 });
    const text = compressible(20_000);
    const { reply, wire } = await measured(client, { event: 'echo', id: 1, data: text });
    assert.equal(reply.data, text);
    assert.ok(wire < 20_000, `${wire} bytes on the wire: compressed`);
    assert.equal((await client.request({ event: 'echo', id: 2, data: 'still open' })).data, 'still open');
  });

  it('compresses a broadcast once for all its recipients, and sends it as is to a client without compression', async () => {
    await start({ compression: true });
    const members = [await connect('/deflate'), await connect('/deflate'), await connect('/deflate'), await connect('/deflate', false)];
    for (const member of members) {
      assert.equal((await member.request({ event: 'join', id: 'j', data: { room: 'r' } })).data, 'r');
    }
    const deflates = mock.method(zlib, 'deflateRawSync');
    const text = compressible(30_000);
    const before = members.map(bytesRead);
    // The sender's reply is small (an offset); the push is the large frame.
    const sender = members[0]!;
    sender.send({ event: 'send', id: 's', data: { room: 'r', text } });
    const pushes = await Promise.all(
      members.map(async (member) => {
        for (;;) {
          const frame = await member.nextJson();
          if (frame.event === 'message') {
            return frame;
          }
        }
      }),
    );
    for (const push of pushes) {
      assert.deepEqual(push.data, { text });
    }
    assert.equal(deflates.mock.callCount(), 1, 'one compression for the push');
    const wire = members.map((member, i) => bytesRead(member) - before[i]!);
    assert.ok(wire[1]! < 30_000 / 4 && wire[2]! < 30_000 / 4, `compressed pushes: ${wire.join(', ')} bytes`);
    assert.ok(wire[3]! > 30_000, `the uncompressed client: ${wire[3]} bytes`);
  });

  it('compresses a broadcast once per window its recipients allow, whatever their order', async () => {
    await start({ compression: true });
    const members = [
      await connect('/deflate'),
      await connect('/deflate', { serverMaxWindowBits: 9 }),
      await connect('/deflate'),
      await connect('/deflate', { serverMaxWindowBits: 9 }),
    ];
    for (const member of members) {
      assert.equal((await member.request({ event: 'join', id: 'j', data: { room: 'w' } })).data, 'w');
    }
    const deflates = mock.method(zlib, 'deflateRawSync');
    const text = compressible(30_000);
    members[0]!.send({ event: 'send', id: 's', data: { room: 'w', text } });
    for (const member of members) {
      for (;;) {
        const frame = await member.nextJson();
        if (frame.event === 'message') {
          assert.deepEqual(frame.data, { text });
          break;
        }
      }
    }
    assert.equal(deflates.mock.callCount(), 2, 'one compression per window (15 and 9)');
  });

  it('is turned off per gateway with compression: false', async () => {
    await start({ compression: true });
    const client = await connect('/plain');
    assert.equal(client.socket.extensions, '');
    assert.equal((await client.request({ event: 'echo', id: 1, data: 'x' })).data, 'x');
  });

  it('answers compressed inbound frames like any other: replies, refusals with their id', async () => {
    await start({ compression: true });
    const client = await connect('/deflate');
    const text = compressible(30_000); // ws compresses what the client sends over 1 KiB
    assert.equal((await client.request({ event: 'echo', id: 1, data: text })).data, text);
    assert.deepEqual(await client.request({ event: 'nope', id: 2, data: text }), {
      event: 'error',
      id: 2,
      data: { code: 'UNKNOWN_EVENT', message: 'no handler for event "nope"' },
    });
  });

  it('closes with 1009 a small compressed frame that inflates past maxPayload, and serves the others on', async () => {
    await start({ compression: true, limits: { maxPayload: 64 * 1024 } });
    const bomb = await connect('/deflate');
    // 16 MiB of one character: about 16 KiB compressed, well under the 64 KiB limit on the wire.
    bomb.send({ event: 'echo', id: 1, data: 'a'.repeat(16 * 1024 * 1024) });
    assert.equal((await bomb.waitClosed()).code, 1009);
    const other = await connect('/deflate');
    assert.equal((await other.request({ event: 'echo', id: 1, data: 'fine' })).data, 'fine');
  });

  it('refuses an extension offer it cannot accept with HTTP 400, and gives the connection place back', async () => {
    await start({ compression: true, limits: { maxConnectionsPerIp: 1 } });
    const refused = await refusedUpgrade(app.wsUrl('/deflate'), {
      perMessageDeflate: false,
      headers: { 'sec-websocket-extensions': 'permessage-deflate; server_max_window_bits=99' },
    });
    assert.equal(refused.status, 400);
    assert.deepEqual(JSON.parse(refused.body), {
      error: 'BAD_REQUEST',
      message: 'Invalid or unacceptable Sec-WebSocket-Extensions header',
    });
    // The one place per address is free again.
    const client = await connect('/deflate');
    assert.equal((await client.request({ event: 'echo', id: 1, data: 'ok' })).data, 'ok');
  });

  it('refuses bad options at startup, naming them', () => {
    assert.equal(resolveCompression('compression', undefined, undefined), undefined);
    assert.equal(resolveCompression('compression', false, undefined), undefined);
    assert.deepEqual(resolveCompression('compression', true, undefined), {
      threshold: 1024,
      level: 1,
      windowBits: 15,
      memLevel: 8,
      inflateConcurrency: 10,
    });
    const inherited = resolveCompression('compression', { level: 6 }, undefined);
    assert.equal(resolveCompression('/x: compression', undefined, inherited), inherited);
    assert.equal(resolveCompression('/x: compression', false, inherited), undefined);
    for (const [value, message] of [
      [{ level: 0 }, /compression\.level must be a whole number from 1 to 9, got 0/],
      [{ windowBits: 16 }, /compression\.windowBits must be a whole number from 9 to 15/],
      [{ memLevel: 1.5 }, /compression\.memLevel/],
      [{ threshold: -1 }, /compression\.threshold/],
      [{ inflateConcurrency: 0 }, /compression\.inflateConcurrency/],
      [{ windowbits: 10 }, /compression has no "windowbits"/],
      ['yes', /compression must be true, false or an object/],
    ] as const) {
      assert.throws(() => resolveCompression('compression', value as never, undefined), message);
    }
  });
});
