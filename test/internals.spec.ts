import 'reflect-metadata';
import assert from 'node:assert/strict';
import { type EventEmitter, once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { PIPES_METADATA } from '@nestjs/common/constants.js';
import { Cluster } from 'ioredis';
import * as wsModule from 'ws';
import WebSocket, { WebSocketServer } from 'ws';
import { prebuildTextFrame } from '../src/transport/prebuilt-frame.js';
import { underlyingSocket } from '../src/transport/ws/write-batching.js';

/**
 * What the plugin relies on inside `ws` and Nest, beyond their documented APIs. An upgrade
 * that changes one of these fails here, by name, instead of somewhere deep in a broadcast
 * or a benchmark.
 */
describe('the ws and Nest internals the plugin relies on', () => {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  let server: WebSocket;
  let client: WebSocket;

  before(async () => {
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const connected = once(wss, 'connection');
    client = new WebSocket(`ws://127.0.0.1:${(http.address() as AddressInfo).port}`);
    [server] = (await connected) as [WebSocket];
    await once(client, 'open');
  });

  after(async () => {
    client.terminate();
    wss.close();
    await new Promise((resolve) => http.close(resolve));
  });

  it("ws keeps a connection's TCP socket as `_socket`, a stream that can be corked and reset", () => {
    const raw = underlyingSocket(server) as (Writable & { resetAndDestroy?: unknown }) | undefined;
    assert.ok(raw, 'ws no longer exposes _socket: write batching, prebuilt frames and resets need another way in');
    assert.equal(typeof raw.cork, 'function');
    assert.equal(typeof raw.uncork, 'function');
    assert.equal(typeof raw.resetAndDestroy, 'function');
  });

  it("ws's bufferedAmount counts what waits in the TCP socket's own buffer (corked bytes included)", () => {
    const raw = underlyingSocket(server)!;
    raw.cork();
    try {
      server.send('x'.repeat(1000));
      assert.ok(server.bufferedAmount >= 1000, `bufferedAmount ${server.bufferedAmount}: the slow-consumer check would miss corked bytes`);
    } finally {
      raw.uncork();
    }
  });

  it('a prebuilt frame is byte for byte what ws frames for the same text, at each length encoding', () => {
    // ws's Sender is exported by its ES module wrapper, though @types/ws does not declare it.
    const sender = (wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } }).Sender;
    for (const length of [0, 125, 126, 65_535, 65_536, 70_000]) {
      const text = 'é'.repeat(Math.floor(length / 2)) + 'a'.repeat(length % 2);
      const data = Buffer.from(text);
      const framed = Buffer.concat(sender.frame(data, { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false }));
      assert.ok(prebuildTextFrame(text).bytes.equals(framed), `frames differ for a ${data.length}-byte payload`);
    }
  });

  it("ws delivers a prebuilt frame written to the socket as an ordinary message, in order with ws's own sends", async () => {
    const received: string[] = [];
    const done = new Promise<void>((resolve) =>
      client.on('message', (data: Buffer) => {
        if (data[0] === 0x78 /* x: the previous test's message */) return;
        received.push(data.toString());
        if (received.length === 3) resolve();
      }),
    );
    server.send('one');
    underlyingSocket(server)!.write(prebuildTextFrame('two').bytes);
    server.send('three');
    await done;
    assert.deepEqual(received, ['one', 'two', 'three']);
  });

  it("Nest's metadata keys the direct dispatch path reads keep their names", () => {
    assert.equal(MESSAGE_METADATA, 'message');
    assert.equal(PIPES_METADATA, '__pipes__');
  });
});

describe('the ioredis internals the Redis broker relies on', () => {
  it('a cluster with sharded subscribers refreshes its slot map from one listener of its subscriber group, which the broker spaces out', () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, shardedSubscribers: true });
    try {
      const emitter = (cluster as unknown as { subscriberGroupEmitter?: EventEmitter }).subscriberGroupEmitter;
      assert.ok(emitter, 'subscriberGroupEmitter');
      assert.equal(emitter.listeners('-node').length, 1);
    } finally {
      cluster.disconnect();
    }
  });
});
