import { Decoder, Encoder } from '@msgpack/msgpack';

/**
 * The MessagePack encoding of the protocol (1.2), shared by the server and the client SDK.
 * Frames are maps with the same fields as the JSON envelope, and carry what JSON carries
 * (a value is first made what `JSON.stringify` would make of it: `toJSON()` called, dates
 * as ISO strings, functions and symbols left out, `NaN` as null), plus bytes: a `Buffer`,
 * any typed array or `ArrayBuffer` travels as MessagePack `bin` and arrives as a
 * `Uint8Array` (a `Buffer` on the server).
 */

/** Longest frame a decoder reads: nothing in it can be longer than the frame itself. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

// No depth limit of its own, as JSON.stringify has none (the library's default, 100, refused
// data that JSON carries: a MessagePack member would miss a push every JSON member got).
const encoder = new Encoder({ ignoreUndefined: true, maxDepth: Number.MAX_SAFE_INTEGER });
const decoder = new Decoder({
  maxStrLength: MAX_FRAME_BYTES,
  maxBinLength: MAX_FRAME_BYTES,
  maxArrayLength: MAX_FRAME_BYTES,
  maxMapLength: MAX_FRAME_BYTES,
  maxExtLength: MAX_FRAME_BYTES,
});

/**
 * `value` as MessagePack (see {@link packable}), in a buffer that is only valid until the
 * next call: copy it (into a frame) before encoding anything else.
 * @throws a TypeError for a `BigInt` or a cycle, as `JSON.stringify` does.
 */
export function packShared(value: unknown): Uint8Array {
  return encoder.encodeSharedRef(prepared(value));
}

/** `value` as MessagePack (see {@link packable}), in a buffer of its own. */
export function pack(value: unknown): Uint8Array {
  return encoder.encode(prepared(value));
}

/** `value` as MessagePack (see {@link packable}), in an `ArrayBuffer` of its own: what every WebSocket's `send()` takes. */
export function packToArrayBuffer(value: unknown): ArrayBuffer {
  const bytes = encoder.encode(prepared(value));
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
}

/**
 * The value of one MessagePack message. Its structure is checked first, in one pass over
 * the bytes: every length it declares (strings, bytes, and the elements of all arrays and
 * maps still open) must fit in what is left of it, so that a small hostile frame cannot
 * make the decoder reserve memory it does not hold. A map's `__proto__` key is refused (the
 * decoder throws), so no frame reaches an object's prototype.
 * @throws a `RangeError` or `DecodeError` for anything that is not exactly one valid message.
 */
export function unpack(bytes: Uint8Array): unknown {
  checkStructure(bytes);
  return decoder.decode(bytes);
}

/**
 * `value` as JSON sees it, bytes kept: what `JSON.parse(JSON.stringify(value))` gives, except
 * that a `Uint8Array` (a `Buffer`), another typed array, a `DataView` or an `ArrayBuffer`
 * becomes a `Uint8Array` copy of its bytes. A new value: later changes to `value` do not
 * reach it.
 * @throws a TypeError for a `BigInt` or a cycle, as `JSON.stringify` does.
 */
export function packable(value: unknown): unknown {
  const made = normalize(value, '', new Set());
  if (typeof made === 'object' && made !== null) {
    madeByPackable.add(made);
  }
  return made;
}

/** What {@link packable} made: packed as it is, not walked again (a push, a queued client frame). */
const madeByPackable = new WeakSet<object>();

function prepared(value: unknown): unknown {
  return typeof value === 'object' && value !== null && madeByPackable.has(value) ? value : packable(value);
}

function normalize(value: unknown, key: string, ancestors: Set<object>): unknown {
  switch (typeof value) {
    case 'string':
      // MessagePack strings are UTF-8: a lone surrogate (JSON escapes it) becomes U+FFFD, as a strict decoder needs.
      return wellFormed(value);
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value + 0 : null; // + 0: -0 is 0, as in JSON
    case 'bigint':
      throw new TypeError('Do not know how to serialize a BigInt');
    case 'object':
      break;
    default:
      return undefined; // undefined, a function, a symbol: left out, as in JSON
  }
  if (value === null) {
    return null;
  }
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength));
  }
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value.slice(0));
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    return normalize(toJSON.call(value, key), key, ancestors);
  }
  if (ancestors.has(value)) {
    throw new TypeError('Converting circular structure to MessagePack');
  }
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      return value.map((item, index) => normalize(item, String(index), ancestors) ?? null);
    }
    const copy: Record<string, unknown> = {};
    for (const name of Object.keys(value)) {
      const item = normalize((value as Record<string, unknown>)[name], name, ancestors);
      if (item !== undefined) {
        copy[wellFormed(name)] = item;
      }
    }
    return copy;
  } finally {
    ancestors.delete(value);
  }
}

/**
 * Walks the headers of one MessagePack message without building anything; throws when it
 * is not exactly one well-formed value, or declares more than its bytes can hold.
 */
function checkStructure(bytes: Uint8Array): void {
  const length = bytes.length;
  let position = 0;
  /** Reads an unsigned big-endian integer of `size` bytes. */
  const read = (size: number): number => {
    if (position + size > length) {
      throw new RangeError('the message ends inside a header');
    }
    let n = 0;
    for (let i = 0; i < size; i++) {
      n = n * 256 + bytes[position++]!;
    }
    return n;
  };
  let pending = 1; // values still to read: the message itself, then the elements of open arrays and maps
  while (pending > 0) {
    const type = read(1);
    pending--;
    let skip = 0;
    let items = 0;
    if (type <= 0x7f || type >= 0xe0) {
      // a fixint
    } else if (type <= 0x8f) {
      items = (type & 0x0f) * 2;
    } else if (type <= 0x9f) {
      items = type & 0x0f;
    } else if (type <= 0xbf) {
      skip = type & 0x1f;
    } else {
      [skip, items] = sizesOf(type, read);
    }
    if ((type >= 0xa0 && type <= 0xbf) || (type >= 0xd9 && type <= 0xdb)) {
      checkUtf8(bytes, position, Math.min(position + skip, length));
    }
    position += skip;
    pending += items;
    if (position > length || pending > length - position) {
      throw new RangeError('the message declares more than it holds');
    }
  }
  if (position !== length) {
    throw new RangeError('the frame holds more than one message');
  }
}

/** ES2024's string methods (Node 20, browsers since 2023); where they are missing a string goes as it is. */
interface MaybeWellFormed {
  isWellFormed?(): boolean;
  toWellFormed(): string;
}

/** `text` with every lone surrogate replaced by U+FFFD, as UTF-8 can carry it. */
function wellFormed(text: string): string {
  const methods = text as unknown as MaybeWellFormed;
  return methods.isWellFormed?.() === false ? methods.toWellFormed() : text;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** Node's native check (`buffer.isUtf8`, without importing `node:buffer`: this file is in the browser SDK too); undefined elsewhere. */
const nativeIsUtf8 = (
  (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process?.getBuiltinModule?.('node:buffer') as
    { isUtf8?(bytes: Uint8Array): boolean } | undefined
)?.isUtf8;

/**
 * Throws unless `bytes[start, end)` is valid UTF-8, as a JSON text frame must be: the
 * decoder reads short strings leniently (`c0 80` as NUL, lone surrogates kept), long ones
 * with U+FFFD, so the same bad bytes would mean different things by length. A short ASCII
 * string (a key, an event name: most of them) is checked here; anything else natively in
 * Node, elsewhere by a strict decoder.
 */
function checkUtf8(bytes: Uint8Array, start: number, end: number): void {
  if (end - start <= SHORT_STRING) {
    let i = start;
    while (i < end && bytes[i]! < 0x80) {
      i++;
    }
    if (i === end) {
      return;
    }
  }
  const text = bytes.subarray(start, end);
  if (nativeIsUtf8) {
    if (!nativeIsUtf8(text)) {
      throw new RangeError('a string is not valid UTF-8');
    }
    return;
  }
  try {
    strictUtf8.decode(text);
  } catch {
    throw new RangeError('a string is not valid UTF-8');
  }
}

/** Up to this many bytes, a string is first looked at in JavaScript: cheaper than a native call when it is ASCII. */
const SHORT_STRING = 32;

/** The bytes to skip and the elements to read after a header byte of 0xc0 to 0xdf. */
function sizesOf(type: number, read: (size: number) => number): [skip: number, items: number] {
  switch (type) {
    case 0xc0: // nil
    case 0xc2: // false
    case 0xc3: // true
      return [0, 0];
    case 0xc4: // bin 8
    case 0xd9: // str 8
      return [read(1), 0];
    case 0xc5:
    case 0xda:
      return [read(2), 0];
    case 0xc6:
    case 0xdb:
      return [read(4), 0];
    case 0xc7: // ext 8: its type byte, then its data
      return [read(1) + 1, 0];
    case 0xc8:
      return [read(2) + 1, 0];
    case 0xc9:
      return [read(4) + 1, 0];
    case 0xcc: // uint 8
    case 0xd0: // int 8
      return [1, 0];
    case 0xcd:
    case 0xd1:
      return [2, 0];
    case 0xca: // float 32
    case 0xce:
    case 0xd2:
      return [4, 0];
    case 0xcb: // float 64
    case 0xcf:
    case 0xd3:
      return [8, 0];
    case 0xd4: // fixext 1, 2, 4, 8, 16: a type byte and the data
      return [2, 0];
    case 0xd5:
      return [3, 0];
    case 0xd6:
      return [5, 0];
    case 0xd7:
      return [9, 0];
    case 0xd8:
      return [17, 0];
    case 0xdc: // array 16, 32
      return [0, read(2)];
    case 0xdd:
      return [0, read(4)];
    case 0xde: // map 16, 32: keys and values
      return [0, read(2) * 2];
    case 0xdf:
      return [0, read(4) * 2];
    default:
      throw new RangeError(`byte 0x${type.toString(16)} is never used`);
  }
}

/**
 * Whether JSON would lose something of `value` that MessagePack keeps: bytes (`Uint8Array`s
 * and other `ArrayBuffer` views, `ArrayBuffer`s), at any depth up to `maxDepth`.
 */
export function jsonLoses(value: unknown, maxDepth = 100): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return true;
  }
  if (maxDepth === 0) {
    return false;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (jsonLoses(value[i], maxDepth - 1)) {
        return true;
      }
    }
    return false;
  }
  for (const key in value) {
    if (jsonLoses((value as Record<string, unknown>)[key], maxDepth - 1)) {
      return true;
    }
  }
  return false;
}
