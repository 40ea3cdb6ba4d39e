import { PACKED_MARK } from '../transport/push-frame.js';

/**
 * What instances tell each other through the broker, and on which channel. The wire
 * format is compact on purpose (it travels once per publish): `<origin><kind><body>`,
 * where `origin` is the publishing instance's id (36 characters), `kind` one character
 * (`m` a frame to deliver, `x` a frame to deliver to all but one local connection of the
 * origin, its body `<ticket>:<frame>`, `n` and `y` the same for a frame that carries bytes
 * (its MessagePack wire form: an instance that cannot read one skips it), `k` a kick with
 * its close reason, `p` on a room channel: the room's presence changed, no body), `body`
 * the rest.
 */

/** The channel every instance subscribes to: broadcasts to everyone. */
export const ALL_CHANNEL = 'a';
const ROOM_CHANNEL = 'r:';
const USER_CHANNEL = 'u:';
const ORIGIN_LENGTH = 36;
const MESSAGE = 'm';
const MESSAGE_EXCEPT = 'x';
const PACKED_MESSAGE = 'n';
const PACKED_MESSAGE_EXCEPT = 'y';
const KICK = 'k';
const PRESENCE = 'p';

/** Who a cluster message is for. */
export type ClusterTarget =
  { readonly to: 'all' } | { readonly to: 'room'; readonly room: string } | { readonly to: 'user'; readonly sub: string };

/** A cluster message: a frame to deliver to the target's local connections, or a kick of a user's. */
export type ClusterMessage =
  | {
      readonly type: 'message';
      readonly origin: string;
      readonly frame: string;
      /** Names, on the origin only, a local connection that should not get it (the sender). */
      readonly except?: number;
    }
  | { readonly type: 'kick'; readonly origin: string; readonly reason: string }
  | { readonly type: 'presence'; readonly origin: string };

/** The channel of a room's messages. */
export function roomChannel(room: string): string {
  return ROOM_CHANNEL + room;
}

/** The channel of a user's messages and kicks. */
export function userChannel(sub: string): string {
  return USER_CHANNEL + sub;
}

/** The target of a broker channel; undefined for a channel that is not ours. */
export function targetOf(channel: string): ClusterTarget | undefined {
  if (channel.startsWith(USER_CHANNEL)) {
    return { to: 'user', sub: channel.slice(USER_CHANNEL.length) };
  }
  if (channel.startsWith(ROOM_CHANNEL)) {
    return { to: 'room', room: channel.slice(ROOM_CHANNEL.length) };
  }
  return channel === ALL_CHANNEL ? { to: 'all' } : undefined;
}

/** The payload of a cluster message. */
export function encodeClusterMessage(message: ClusterMessage): string {
  if (message.type === 'kick') {
    return message.origin + KICK + message.reason;
  }
  if (message.type === 'presence') {
    return message.origin + PRESENCE;
  }
  const packed = message.frame.startsWith(PACKED_MARK);
  return message.except === undefined
    ? message.origin + (packed ? PACKED_MESSAGE : MESSAGE) + message.frame
    : `${message.origin}${packed ? PACKED_MESSAGE_EXCEPT : MESSAGE_EXCEPT}${message.except}:${message.frame}`;
}

/** The origin of a payload, without decoding the rest (an instance skips its own messages). */
export function isFrom(payload: string, origin: string): boolean {
  return payload.startsWith(origin);
}

/** The cluster message of a payload; undefined when it is not one. */
export function decodeClusterMessage(payload: string): ClusterMessage | undefined {
  const origin = payload.slice(0, ORIGIN_LENGTH);
  const kind = payload.charAt(ORIGIN_LENGTH);
  const body = payload.slice(ORIGIN_LENGTH + 1);
  if (kind === MESSAGE || kind === PACKED_MESSAGE) {
    return { type: 'message', origin, frame: body };
  }
  if (kind === MESSAGE_EXCEPT || kind === PACKED_MESSAGE_EXCEPT) {
    const colon = body.indexOf(':');
    return { type: 'message', origin, frame: body.slice(colon + 1), except: Number(body.slice(0, colon)) };
  }
  if (kind === PRESENCE) {
    return { type: 'presence', origin };
  }
  return kind === KICK ? { type: 'kick', origin, reason: body } : undefined;
}
