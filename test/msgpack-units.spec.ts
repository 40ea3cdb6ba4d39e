import { ExtData } from '@msgpack/msgpack';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeIncoming, encoderFor, frameOf, preparerFor } from '../src/client/client-codec.js';
import { Outbox } from '../src/client/outbox.js';
import { PROTOCOL_V1, PROTOCOL_V1_MSGPACK } from '../src/protocol/envelope.js';
import { binaryRequestIdOf } from '../src/protocol/envelope.js';
import { jsonLoses, pack, packable, unpack } from '../src/protocol/msgpack.js';
import { FakeClock } from './support/fake-clock.js';
import { ConsoleLogger, Logger } from '@nestjs/common';
import { PACKED_MARK, PushFrame } from '../src/transport/push-frame.js';

/** A value with every MessagePack type and length class: each header the structure check walks. */
function everyType(): Record<string, unknown> {
  return {
    nil: null,
    yes: true,
    no: false,
    fixint: 7,
    negative: -5,
    u8: 200,
    u16: 60_000,
    u32: 4_000_000_000,
    u64: 2 ** 53,
    i8: -100,
    i16: -30_000,
    i32: -2_000_000_000,
    i64: -(2 ** 40),
    float: 1.5,
    fixstr: 'short',
    str8: 'a'.repeat(200),
    str16: 'b'.repeat(60_000),
    str32: 'c'.repeat(70_000),
    bin8: new Uint8Array(200),
    bin16: new Uint8Array(60_000),
    bin32: new Uint8Array(70_000),
    array16: Array.from({ length: 20 }, (_, i) => i),
    array32: Array.from({ length: 70_000 }, () => 0),
    map16: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    map32: Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, 0])),
  };
}

describe('MessagePack: the structure check before decoding', () => {
  it('reads every type and length class back as it was written', () => {
    const value = everyType();
    assert.deepEqual(unpack(pack(value)), value);
    // Extensions, which only a client sends (packable makes plain maps of them): written by hand.
    const extensions = [1, 2, 4, 8, 16, 3, 300, 70_000].map((size) => new ExtData(5, new Uint8Array(size)));
    const encoded = Buffer.concat([Buffer.from([0x98]), ...extensions.map(extBytes)]);
    assert.deepEqual(
      (unpack(encoded) as ExtData[]).map((ext) => [ext.type, (ext.data as Uint8Array).length]),
      extensions.map((ext) => [5, (ext.data as Uint8Array).length]),
    );
  });

  it('refuses every truncation of a message, and anything after it', () => {
    const whole = pack({ a: [1, 'two', new Uint8Array([3])], b: { c: 1.5, d: -70_000 } });
    for (let length = 0; length < whole.length; length++) {
      assert.throws(() => unpack(whole.subarray(0, length)), RangeError, `a message cut to ${length} bytes`);
    }
    assert.throws(() => unpack(Buffer.concat([whole, Buffer.from([0xc0])])), /more than one message/);
    assert.throws(() => unpack(Buffer.from([0xc1])), /0xc1 is never used/);
  });

  it('refuses declared sizes the bytes cannot hold, counted over every open container', () => {
    const nested = Buffer.from([0x92, 0x92, 0x92, 0x01, 0x01, 0x01]); // [[[1, 1], 1], ?]: one element short
    assert.throws(() => unpack(nested), /declares more than it holds/);
    assert.throws(() => unpack(Buffer.from([0xdc, 0x00, 0x03, 0x01, 0x02])), /declares more than it holds/);
    assert.throws(() => unpack(Buffer.from([0xde, 0x00, 0x01, 0xa1])), /declares more than it holds/);
    assert.throws(() => unpack(Buffer.from([0xdb, 0x00, 0x00, 0x00, 0x05, 0x61])), /declares more than it holds/);
    assert.throws(() => unpack(Buffer.from([0xc9, 0x00, 0x00, 0x01])), /ends inside a header/);
  });

  it('refuses a string that is not valid UTF-8, short or long, value or key, as a JSON text frame would be', () => {
    const str = (bytes: number[]): number[] => [0xd9, bytes.length, ...bytes]; // str 8, whatever the length
    const long = (bytes: number[]): number[] => str([...Array<number>(240).fill(0x61), ...bytes]);
    for (const bad of [
      [0xff, 0xfe],
      [0xc0, 0x80],
      [0xc1, 0xa5],
      [0xed, 0xa0, 0x80],
      [0xe2, 0x82],
    ]) {
      for (const message of [str(bad), long(bad), [0x81, ...str(bad), 0x01], [0x91, 0xa0 + bad.length, ...bad]]) {
        assert.throws(() => unpack(Uint8Array.from(message)), /a string is not valid UTF-8/, Buffer.from(message).toString('hex'));
      }
    }
    assert.equal(unpack(Uint8Array.from(str([0xe2, 0x82, 0xac, 0x61]))), '€a');
    assert.deepEqual(unpack(Uint8Array.from([0x81, 0xa1, 0x6b, 0xa2, 0xc3, 0xa9])), { k: 'é' });
  });

  it('reads the id of a binary frame, and only a valid one', () => {
    assert.equal(binaryRequestIdOf(pack({ event: 'e', id: 'a1' })), 'a1');
    assert.equal(binaryRequestIdOf(pack({ event: 'e', id: {} })), undefined);
    assert.equal(binaryRequestIdOf(pack([1])), undefined);
    assert.equal(binaryRequestIdOf(Buffer.from([0xc1])), undefined);
  });
});

describe('MessagePack: what is packed (packable)', () => {
  it('is what JSON makes of a value, bytes kept as copies', () => {
    const bytes = new Uint8Array([1, 2]);
    const value = {
      price: { toJSON: (key: string) => `${key}: 1.10` },
      at: new Date(0),
      bad: new Date(Number.NaN),
      numbers: [Number.NaN, Number.POSITIVE_INFINITY, -0, 3],
      holes: [undefined, () => 1, Symbol('s')],
      skip: undefined,
      fn: () => 1,
      bytes,
      f64: new Float64Array([1]),
      view: new DataView(new ArrayBuffer(2)),
      buffer: new ArrayBuffer(3),
      node: Buffer.from([9]),
    };
    const packed = packable(value) as Record<string, unknown>;
    assert.deepEqual(Object.keys(packed), ['price', 'at', 'bad', 'numbers', 'holes', 'bytes', 'f64', 'view', 'buffer', 'node']);
    assert.equal(packed.price, 'price: 1.10');
    assert.equal(packed.at, '1970-01-01T00:00:00.000Z');
    assert.equal(packed.bad, null);
    assert.deepEqual(packed.numbers, [null, null, 0, 3]);
    assert.deepEqual(packed.holes, [null, null, null]);
    for (const key of ['bytes', 'f64', 'view', 'buffer', 'node']) {
      assert.ok(packed[key] instanceof Uint8Array && !Buffer.isBuffer(packed[key]), key);
    }
    assert.deepEqual([...(packed.f64 as Uint8Array)], [0, 0, 0, 0, 0, 0, 240, 63]);
    assert.equal((packed.buffer as Uint8Array).length, 3);
    bytes[0] = 7;
    assert.equal((packed.bytes as Uint8Array)[0], 1, 'a copy: later changes do not reach it');
  });

  it('packs a lone surrogate, value or key, as U+FFFD: UTF-8 cannot carry it (JSON escapes it)', () => {
    const bytes = pack({ text: 'hi \ud83d', ['k\udc00']: 1, pair: '\ud83d\ude00' });
    // unpack reads strings strictly: lone surrogates written as UTF-8 (ED A0 BD) would be refused.
    assert.deepEqual(unpack(bytes), { text: 'hi \ufffd', ['k\ufffd']: 1, pair: '\ud83d\ude00' });
  });

  it('throws where JSON.stringify throws: a BigInt, a cycle', () => {
    assert.throws(() => packable({ n: 1n }), /BigInt/);
    const cycle: Record<string, unknown> = {};
    cycle.self = { back: cycle };
    assert.throws(() => packable(cycle), /circular/);
    // The same object twice, not inside itself, is no cycle.
    const shared = { x: 1 };
    assert.deepEqual(packable([shared, shared]), [{ x: 1 }, { x: 1 }]);
  });

  it('tells whether JSON would lose bytes, at any depth up to its limit', () => {
    assert.equal(jsonLoses({ a: [{ b: new Uint8Array(1) }] }), true);
    assert.equal(jsonLoses({ a: [new ArrayBuffer(1)] }), true);
    assert.equal(jsonLoses({ a: new Date(0), b: 'x', c: [1, null] }), false);
    assert.equal(jsonLoses([[new Uint8Array(1)]], 1), false, 'past its depth limit');
  });
});

describe('a push frame that cannot be packed', () => {
  it('gives no MessagePack frame, told once: a fan-out skips the member and goes on to the others', () => {
    const lines: string[] = [];
    Logger.overrideLogger({ log: () => undefined, warn: () => undefined, error: (line: string) => lines.push(line) });
    try {
      // A wire form that does not decode (as data nested past the stack would not pack).
      const push = PushFrame.fromWire(`${PACKED_MARK}${Buffer.from([0xc1]).toString('base64')}`, 7);
      assert.equal(push.binaryFrame(), undefined);
      assert.equal(push.binaryFrame(), undefined);
      assert.equal(lines.length, 1, lines.join('\n'));
      assert.match(lines[0]!, /a push \(event undefined\) could not be encoded as MessagePack: /);
      // One that packs is built once, for every recipient.
      const fine = PushFrame.of({ event: 'ok', data: { n: 1 } });
      assert.equal(fine.binaryFrame(), fine.binaryFrame());
      assert.notEqual(fine.binaryFrame(), undefined);
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
    }
  });
});

describe('the client codec', () => {
  it('reads text as JSON (else raw), binary as MessagePack (else invalid), and nothing else', () => {
    assert.deepEqual(decodeIncoming('{"event":"e"}'), { frame: { event: 'e' } });
    assert.deepEqual(decodeIncoming('hello'), { raw: 'hello' });
    assert.deepEqual(decodeIncoming(pack({ event: 'e' }).buffer), { frame: { event: 'e' } });
    assert.deepEqual(decodeIncoming(Buffer.from(pack({ event: 'e' }))), { frame: { event: 'e' } });
    assert.match((decodeIncoming(new Uint8Array([0xc1])) as { invalid: string }).invalid, /not valid MessagePack \(byte 0xc1/);
    assert.match((decodeIncoming(42) as { invalid: string }).invalid, /unknown kind \(\[object Number\]\)/);
  });

  it('hands raw text and unreadable binary data to the listeners, never as a frame', () => {
    const dispatched: unknown[] = [];
    const errors: { code: string; message: string }[] = [];
    const events = {
      dispatch: (frame: unknown) => dispatched.push(frame),
      error: (error: { code: string; message: string }) => errors.push(error),
    };
    assert.equal(frameOf('not json', events as never), undefined);
    assert.equal(frameOf(new Uint8Array([0x91]), events as never), undefined);
    assert.deepEqual(dispatched, [{ event: 'raw', data: 'not json' }]);
    assert.equal(errors[0]!.code, 'BAD_REQUEST');
    assert.match(errors[0]!.message, /^the server sent a binary frame that is not valid MessagePack/);
  });

  it('prepares frames for the encoding asked for, and writes them in the connection’s', () => {
    const json = preparerFor('json')({ event: 'e', data: { b: new Uint8Array([1]) } });
    assert.equal(typeof json, 'string');
    const packed = preparerFor('msgpack')({ event: 'e', data: { b: new Uint8Array([1]) } });
    assert.equal(typeof packed, 'object');
    // A frame prepared as JSON that goes out on a MessagePack connection, and the other way round.
    assert.deepEqual(unpack(new Uint8Array(encoderFor(PROTOCOL_V1_MSGPACK)(json) as ArrayBuffer)), { event: 'e', data: { b: { 0: 1 } } });
    assert.equal(encoderFor(PROTOCOL_V1)(packed), '{"event":"e","data":{"b":{"0":1}}}');
  });

  it("fails a queued request whose frame cannot be written, and reports a queued send's", async () => {
    const outbox = new Outbox(new FakeClock(), 10);
    const failedSends: unknown[] = [];
    const request = outbox.request(
      'e',
      1,
      1000,
      (frame) => JSON.stringify(frame),
      (frame, id) => {
        outbox.enqueue(frame, id); // not connected: queued
        return false;
      },
    );
    outbox.enqueue('{"event":"s"}');
    outbox.flush(
      () => {
        throw new TypeError('cannot write');
      },
      (error) => failedSends.push(error),
    );
    await assert.rejects(request, /cannot write/);
    assert.equal(failedSends.length, 1);
  });
});

/** An extension's MessagePack bytes, written by hand (the encoder only writes what packable gives it). */
function extBytes(ext: ExtData): Buffer {
  const data = Buffer.from(ext.data as Uint8Array);
  const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
  if (fixed[data.length] !== undefined) {
    return Buffer.concat([Buffer.from([fixed[data.length]!, ext.type]), data]);
  }
  if (data.length < 256) {
    return Buffer.concat([Buffer.from([0xc7, data.length, ext.type]), data]);
  }
  if (data.length < 65_536) {
    const header = Buffer.from([0xc8, 0, 0, ext.type]);
    header.writeUInt16BE(data.length, 1);
    return Buffer.concat([header, data]);
  }
  const header = Buffer.from([0xc9, 0, 0, 0, 0, ext.type]);
  header.writeUInt32BE(data.length, 1);
  return Buffer.concat([header, data]);
}
