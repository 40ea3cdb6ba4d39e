import { BEARER_PROTOCOL_PREFIX, PROTOCOL_V1, PROTOCOL_V1_MSGPACK } from '../protocol/envelope.js';
import { packable, packToArrayBuffer, unpack } from '../protocol/msgpack.js';
import type { ClientEncoding, IncomingFrame } from './client-options.js';
import { RealtimeClientError } from './client-error.js';
import type { ClientEvents } from './client-events.js';

/**
 * @internal A frame made ready when it is sent or queued, so that later changes to its data
 * do not reach it, and data the encoding cannot carry fails at once: JSON text, or for
 * MessagePack a copy of the frame as MessagePack will carry it.
 */
export type PreparedFrame = string | object;

/** @internal How one connection writes a frame (prepared or not): as the subprotocol the server selected says. */
export type FrameEncoder = (frame: PreparedFrame) => string | ArrayBuffer;

const encodeJson: FrameEncoder = (frame) => (typeof frame === 'string' ? frame : JSON.stringify(frame));
const encodeMsgpack: FrameEncoder = (frame) => packToArrayBuffer(typeof frame === 'string' ? JSON.parse(frame) : frame);

/** @internal How frames are prepared for the encoding the client asks for. */
export function preparerFor(encoding: ClientEncoding): (frame: object) => PreparedFrame {
  return encoding === 'msgpack' ? (packable as (frame: object) => object) : (frame) => JSON.stringify(frame);
}

/** @internal The subprotocols to offer: MessagePack first when asked for, with JSON for a server that does not know it. */
export function protocolsFor(encoding: ClientEncoding, token: string | undefined): string[] {
  const protocols = encoding === 'msgpack' ? [PROTOCOL_V1_MSGPACK, PROTOCOL_V1] : [PROTOCOL_V1];
  return token ? [...protocols, BEARER_PROTOCOL_PREFIX + token] : protocols;
}

/** @internal The encoder of a connection whose handshake selected `protocol`. */
export function encoderFor(protocol: string): FrameEncoder {
  return protocol === PROTOCOL_V1_MSGPACK ? encodeMsgpack : encodeJson;
}

/** @internal Checks an encoding option. */
export function checkEncoding(encoding: unknown): ClientEncoding {
  if (encoding === undefined || encoding === 'json' || encoding === 'msgpack') {
    return encoding ?? 'json';
  }
  throw new TypeError(`RealtimeClient: encoding is 'json' or 'msgpack', got ${JSON.stringify(encoding)}`);
}

/** @internal An incoming message: a frame, a text that is no JSON (`raw`), or binary data that is no MessagePack (`invalid`: why). */
export type Incoming = { readonly frame: IncomingFrame } | { readonly raw: string } | { readonly invalid: string };

/** @internal Reads one incoming message: text is JSON, binary is MessagePack. */
export function decodeIncoming(data: unknown): Incoming {
  if (typeof data === 'string') {
    try {
      return { frame: JSON.parse(data) as IncomingFrame };
    } catch {
      return { raw: data };
    }
  }
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? data : undefined;
  if (!bytes) {
    return { invalid: `a message of an unknown kind (${Object.prototype.toString.call(data)})` };
  }
  try {
    return { frame: unpack(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as IncomingFrame };
  } catch (error) {
    return { invalid: `a binary frame that is not valid MessagePack (${error instanceof Error ? error.message : String(error)})` };
  }
}

/**
 * @internal The frame of an incoming message. A text that is no JSON goes to `events` as a
 * `raw` event, binary data that is no MessagePack as a `BAD_REQUEST` error; undefined then.
 */
export function frameOf(data: unknown, events: Pick<ClientEvents, 'dispatch' | 'error'>): IncomingFrame | undefined {
  const incoming = decodeIncoming(data);
  if ('raw' in incoming) {
    events.dispatch({ event: 'raw', data: incoming.raw });
    return undefined;
  }
  if ('invalid' in incoming) {
    events.error(new RealtimeClientError('BAD_REQUEST', `the server sent ${incoming.invalid}`));
    return undefined;
  }
  return incoming.frame;
}
