import { Logger } from '@nestjs/common';
import { jsonLoses, pack, packable, packShared, unpack } from '../protocol/msgpack.js';
import { type PrebuiltFrame, prebuildBinaryFrame, prebuildTextFrame } from './prebuilt-frame.js';

/** The first character of a push's wire form when it is MessagePack (in base64); a JSON one starts with `{`. */
export const PACKED_MARK = '~';

/**
 * One server push (a broadcast, a room message, a presence event) for any number of
 * recipients, built once in each encoding a recipient needs: a JSON text frame, a
 * MessagePack binary frame, or both, each framed once for all.
 *
 * Its wire form is what instances tell each other and what room history keeps: the JSON
 * text when JSON carries the push whole, or, when its data holds bytes, the MessagePack
 * encoding in base64 behind a `~`. Every encoding of a push is made from the same value
 * (what JSON makes of the data, bytes kept: see `packable`), so a member gets the same push
 * from this instance, from another one, or from history: a MessagePack member the bytes,
 * a JSON member a byte array as `{"type":"Buffer","data":[...]}` (as Node renders a Buffer).
 */
export class PushFrame {
  private text: PrebuiltFrame | undefined;
  /** The MessagePack frame; null once it could not be made (told once, not tried again per recipient). */
  private binary: PrebuiltFrame | null | undefined;

  private constructor(
    /** The push as instances pass it on and history keeps it (without offset). */
    readonly wire: string,
    /** Its offset in its room, written first in every encoding. */
    private readonly offset: number | undefined,
    /** The frame as an object, once it has been decoded (or made here, with bytes). */
    private value: Record<string, unknown> | undefined,
  ) {}

  /**
   * A push of `frame` (`{event, room?, data}`), encoded now for the wire.
   * @throws what `JSON.stringify` (or MessagePack) throws for data it cannot carry.
   */
  static of(frame: Record<string, unknown>): PushFrame {
    if (!jsonLoses(frame.data)) {
      return new PushFrame(JSON.stringify(frame), undefined, undefined);
    }
    const value = packable(frame) as Record<string, unknown>;
    return new PushFrame(PACKED_MARK + Buffer.from(pack(value)).toString('base64'), undefined, value);
  }

  /** A push received in its wire form (from the broker or history), with its offset in its room when it has one. */
  static fromWire(wire: string, offset?: number): PushFrame {
    return new PushFrame(wire, offset, undefined);
  }

  /** The push as a JSON text frame. */
  textFrame(): PrebuiltFrame {
    return (this.text ??= prebuildTextFrame(this.json()));
  }

  /**
   * The push as a MessagePack binary frame; undefined when its data cannot be packed (nested
   * beyond what the stack allows, say), logged once: a fan-out goes on to the other members.
   */
  binaryFrame(): PrebuiltFrame | undefined {
    if (this.binary === undefined) {
      try {
        this.binary = prebuildBinaryFrame(packShared(this.object()));
      } catch (error) {
        this.binary = null;
        const event = (this.value as { event?: unknown } | undefined)?.event;
        logger.error(`a push (event ${JSON.stringify(event)}) could not be encoded as MessagePack: ${(error as Error).message}`);
      }
    }
    return this.binary ?? undefined;
  }

  private json(): string {
    const { wire, offset } = this;
    if (wire.charCodeAt(0) === 0x7b /* { */) {
      // Spliced, not encoded again: `{"offset":N,...}`.
      return offset === undefined ? wire : `{"offset":${offset},${wire.slice(1)}`;
    }
    return JSON.stringify(this.object(), bytesAsBuffers);
  }

  /** The frame as an object, with its offset first. */
  private object(): Record<string, unknown> {
    const value = (this.value ??= decodeWire(this.wire));
    return this.offset === undefined ? value : { offset: this.offset, ...value };
  }
}

const logger = new Logger('RealtimeHub');

function decodeWire(wire: string): Record<string, unknown> {
  return (wire.charCodeAt(0) === 0x7b ? JSON.parse(wire) : unpack(Buffer.from(wire.slice(PACKED_MARK.length), 'base64'))) as Record<
    string,
    unknown
  >;
}

/** A JSON replacer: every byte array as JSON renders a Buffer (a Buffer's own `toJSON` has run before). */
function bytesAsBuffers(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? { type: 'Buffer', data: Array.from(value) } : value;
}
