import zlib from 'node:zlib';
import type { CompressionSettings } from '../options/compression.js';
import { allocateFrame, type PrebuiltFrame } from './prebuilt-frame.js';

/** What RFC 7692 §7.2.1 says to take off the end of a message's deflate output. */
const SYNC_FLUSH_TAIL = Buffer.from([0x00, 0x00, 0xff, 0xff]);

/**
 * A frame's compressed forms, kept on the frame, one per window: a broadcast is compressed
 * once for all its recipients, and once more for each other window its recipients allow.
 */
const compressed = new WeakMap<PrebuiltFrame, Map<number, PrebuiltFrame | null>>();

/**
 * The frame compressed as one permessage-deflate message (RSV1 set), with a window of at most
 * `windowBits`; null when compressing does not make it smaller. Each message is compressed on
 * its own, with no context from earlier ones (the server negotiates
 * `server_no_context_takeover`), so the same bytes are valid for every connection that allows
 * that window, and no compressor is kept per connection. The result is kept on the frame.
 */
export function deflateFrame(frame: PrebuiltFrame, settings: CompressionSettings, windowBits: number): PrebuiltFrame | null {
  let kept = compressed.get(frame);
  const known = kept?.get(windowBits);
  if (known !== undefined) {
    return known;
  }
  const made = deflateMessage(frame.payload, settings, windowBits, frame.binary);
  if (!kept) {
    compressed.set(frame, (kept = new Map()));
  }
  kept.set(windowBits, made);
  return made;
}

/**
 * `payload` (a text message's UTF-8 bytes, or a binary message's bytes when `binary`) as one
 * compressed frame, with a window of at most `windowBits`; null when compressing does not
 * make it smaller. Nothing is kept: for a message sent to one connection.
 */
export function deflateMessage(payload: Buffer, settings: CompressionSettings, windowBits: number, binary: boolean): PrebuiltFrame | null {
  const output = zlib.deflateRawSync(payload, {
    level: settings.level,
    memLevel: settings.memLevel,
    windowBits,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const body = output.subarray(output.length - 4).equals(SYNC_FLUSH_TAIL) ? output.subarray(0, output.length - 4) : output;
  const length = body.length;
  if (length >= payload.length) {
    return null;
  }
  const { bytes, header } = allocateFrame(binary ? 0xc2 : 0xc1, length); // FIN, RSV1 (compressed), binary or text
  body.copy(bytes, header);
  // `payload` stays uncompressed: what a connection that cannot take raw bytes is sent.
  return { payload, bytes, binary };
}
