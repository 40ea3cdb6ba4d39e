/**
 * Opt-in permessage-deflate (RFC 7692) for a gateway's outbound frames, and the inflating of
 * compressed inbound ones. The server compresses each message on its own (it negotiates
 * `server_no_context_takeover`), so it keeps no compression state per connection, and a
 * broadcast is compressed once for all its recipients.
 */
export interface RealtimeCompressionOptions {
  /** Messages of at least this many bytes are compressed; smaller ones go as they are. Default 1024. */
  threshold?: number;
  /** zlib level, 1 (fastest) to 9 (smallest). Default 1. */
  level?: number;
  /**
   * zlib window, 9 to 15 (512 bytes to 32 KiB): larger finds more repeats, and takes
   * more memory while a message is compressed. A client that asks for a smaller one gets it.
   * Default 15.
   */
  windowBits?: number;
  /** zlib memory level, 1 to 9: the compressor's working memory. Default 8. */
  memLevel?: number;
  /**
   * Compressed inbound messages inflated at once. `ws` keeps one such limit for the whole
   * process, set by the first server (or client) that negotiates compression: give every
   * gateway the same value. Default 10.
   */
  inflateConcurrency?: number;
}

/** Compression settings with their defaults applied. */
export interface CompressionSettings {
  readonly threshold: number;
  readonly level: number;
  readonly windowBits: number;
  readonly memLevel: number;
  readonly inflateConcurrency: number;
}

/** The smallest window a raw deflate stream can use (zlib cannot compress with 8 bits). */
export const MIN_WINDOW_BITS = 9;

const DEFAULT_COMPRESSION: CompressionSettings = Object.freeze({
  threshold: 1024,
  level: 1,
  windowBits: 15,
  memLevel: 8,
  inflateConcurrency: 10,
});

/** Allowed ranges, inclusive. */
const RANGES: { readonly [Name in keyof CompressionSettings]: readonly [number, number] } = {
  threshold: [0, Number.MAX_SAFE_INTEGER],
  level: [1, 9],
  windowBits: [MIN_WINDOW_BITS, 15],
  memLevel: [1, 9],
  inflateConcurrency: [1, 1_000_000],
};

/**
 * `compression` (of the module, or of a gateway over the module's) with its defaults
 * applied; undefined when it is off. `true` means the defaults. A bad value is a clear
 * error at startup.
 */
export function resolveCompression(
  where: string,
  value: RealtimeCompressionOptions | boolean | undefined,
  inherited: CompressionSettings | undefined,
): CompressionSettings | undefined {
  if (value === undefined) {
    return inherited;
  }
  if (value === false) {
    return undefined;
  }
  if (value !== true && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new TypeError(`Realtime option ${where} must be true, false or an object, got ${JSON.stringify(value)}`);
  }
  const given = value === true ? {} : value;
  const settings = { ...DEFAULT_COMPRESSION, ...dropUndefined(given) };
  for (const name of Object.keys(given) as (keyof CompressionSettings)[]) {
    if (!(name in RANGES)) {
      throw new TypeError(`Realtime option ${where} has no "${name}" (it takes ${Object.keys(RANGES).join(', ')})`);
    }
  }
  for (const [name, [min, max]] of Object.entries(RANGES) as [keyof CompressionSettings, readonly [number, number]][]) {
    const v = settings[name];
    if (!Number.isSafeInteger(v) || v < min || v > max) {
      throw new TypeError(`Realtime option ${where}.${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  }
  return Object.freeze(settings);
}

function dropUndefined(options: RealtimeCompressionOptions): Partial<CompressionSettings> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<CompressionSettings>;
}
