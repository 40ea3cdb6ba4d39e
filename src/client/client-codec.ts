import { BEARER_PROTOCOL_PREFIX, PROTOCOL_V1, PROTOCOL_V1_MSGPACK } from '../protocol/envelope.js';
import { packToArrayBuffer, unpack } from '../protocol/msgpack.js';
import type { ClientEncoding, IncomingFrame } from './client-options.js';

/** @internal How one connection writes a frame: as the subprotocol the server selected says. */
export type FrameEncoder = (frame: object) => string | ArrayBuffer;

const encodeJson: FrameEncoder = (frame) => JSON.stringify(frame);

/** @internal The subprotocols to offer: MessagePack first when asked for, with JSON for a server that does not know it. */
export function protocolsFor(encoding: ClientEncoding, token: string | undefined): string[] {
  const protocols = encoding === 'msgpack' ? [PROTOCOL_V1_MSGPACK, PROTOCOL_V1] : [PROTOCOL_V1];
  return token ? [...protocols, BEARER_PROTOCOL_PREFIX + token] : protocols;
}

/** @internal The encoder of a connection whose handshake selected `protocol`. */
export function encoderFor(protocol: string): FrameEncoder {
  return protocol === PROTOCOL_V1_MSGPACK ? packToArrayBuffer : encodeJson;
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
