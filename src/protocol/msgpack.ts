import { Decoder, Encoder } from '@msgpack/msgpack';

/**
 * The MessagePack encoding of the protocol (1.2), shared by the server and the client SDK.
 * Frames are maps with the same fields as the JSON envelope; `data` may hold bytes (a
 * `Buffer` or any `Uint8Array`), which arrive as `Uint8Array`s. As in JSON, keys whose
 * value is `undefined` are left out; a `Date` travels as the standard timestamp extension.
 */

/** Longest frame a decoder reads: nothing in it can be longer than the frame itself. */
const MAX_FRAME_BYTES = 64 * 1024 * 1024;

const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder({
  maxStrLength: MAX_FRAME_BYTES,
  maxBinLength: MAX_FRAME_BYTES,
  maxArrayLength: MAX_FRAME_BYTES,
  maxMapLength: MAX_FRAME_BYTES,
  maxExtLength: MAX_FRAME_BYTES,
});

/**
 * `value` as MessagePack, in a buffer that is only valid until the next call: copy it (into
 * a frame) before encoding anything else.
 * @throws for what MessagePack cannot carry (a `BigInt`, a symbol, a function) or nesting past 100 levels.
 */
export function packShared(value: unknown): Uint8Array {
  return encoder.encodeSharedRef(value);
}

/** `value` as MessagePack, in a buffer of its own. */
export function pack(value: unknown): Uint8Array {
  return encoder.encode(value);
}

/** `value` as MessagePack, in an `ArrayBuffer` of its own: what every WebSocket's `send()` takes. */
export function packToArrayBuffer(value: unknown): ArrayBuffer {
  const bytes = encoder.encode(value);
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes.buffer : bytes.slice().buffer;
}

/**
 * The value of one MessagePack message. A map's `__proto__` key is refused (the decoder
 * throws), so no frame reaches an object's prototype.
 * @throws a `DecodeError` (or `RangeError`) for anything that is not exactly one valid message.
 */
export function unpack(bytes: Uint8Array): unknown {
  return decoder.decode(bytes);
}

/**
 * Whether JSON would lose something of `value` that MessagePack keeps: bytes (`Uint8Array`s
 * and other `ArrayBuffer` views, `ArrayBuffer`s) or dates, at any depth up to `maxDepth`.
 */
export function jsonLoses(value: unknown, maxDepth = 100): boolean {
  if (typeof value !== 'object' || value === null) {
    return false;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date) {
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
