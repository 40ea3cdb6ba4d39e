/**
 * A server-to-client frame (text, or binary in the MessagePack encoding) built once and written as is to every recipient of a
 * broadcast. Server frames are not masked (RFC 6455 §5.1), so the bytes are the same for
 * every connection: a room of 10,000 costs one encoding and one frame header, and each
 * recipient one plain socket write instead of `ws`'s per-send framing and `writev`.
 */
export interface PrebuiltFrame {
  /** The payload (a text frame's UTF-8), for a connection that cannot take raw bytes. */
  readonly payload: Buffer;
  /** Header and payload: a complete, final, unmasked frame. */
  readonly bytes: Buffer;
  /** A binary frame (opcode 2), not a text one. */
  readonly binary: boolean;
}

/**
 * A frame whose payload is a view of its bytes, made when first asked for: almost every
 * frame is written as bytes, and a view is a `Buffer` object of its own.
 */
class FramedBytes implements PrebuiltFrame {
  private view: Buffer | undefined;

  constructor(
    readonly bytes: Buffer,
    private readonly header: number,
    readonly binary: boolean,
  ) {}

  get payload(): Buffer {
    return (this.view ??= this.bytes.subarray(this.header));
  }
}

/** Frames `text` (a string, or its UTF-8 bytes) as one final unmasked text frame (FIN + opcode 1). */
export function prebuildTextFrame(text: string | Buffer): PrebuiltFrame {
  const length = typeof text === 'string' ? Buffer.byteLength(text) : text.length;
  const { bytes, header } = allocateFrame(0x81, length);
  if (typeof text === 'string') {
    bytes.write(text, header, 'utf8');
  } else {
    text.copy(bytes, header);
  }
  return new FramedBytes(bytes, header, false);
}

/** Frames `payload` as one final unmasked binary frame (FIN + opcode 2). */
export function prebuildBinaryFrame(payload: Uint8Array): PrebuiltFrame {
  const { bytes, header } = allocateFrame(0x82, payload.length);
  bytes.set(payload, header);
  return new FramedBytes(bytes, header, true);
}

/**
 * A buffer for one unmasked server frame of `length` payload bytes, its header written:
 * `first` is the frame's first byte (FIN, RSV bits and opcode), then the length in 7, 16
 * or 64 bits (RFC 6455 §5.2). The payload goes from `header` on.
 */
export function allocateFrame(first: number, length: number): { bytes: Buffer; header: number } {
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const bytes = Buffer.allocUnsafe(header + length);
  bytes[0] = first;
  if (length < 126) {
    bytes[1] = length;
  } else if (length < 65_536) {
    bytes[1] = 126;
    bytes.writeUInt16BE(length, 2);
  } else {
    bytes[1] = 127;
    bytes.writeBigUInt64BE(BigInt(length), 2);
  }
  return { bytes, header };
}
