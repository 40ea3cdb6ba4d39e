/** The part of the WebSocket API the client uses: the browser's `WebSocket` and `ws`'s both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected. */
  readonly protocol: string;
  /** How binary messages are handed over; the client asks for `arraybuffer`. */
  binaryType?: string;
  /** Sends a text frame (a string) or a binary one (an `ArrayBuffer`, in the MessagePack encoding). */
  send(data: string | ArrayBuffer): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** `WebSocket.OPEN` */
export const OPEN = 1;

/** Whether `url` is a URL at all (a port past 65535 or an unclosed `[` is not; the WebSocket would throw at every attempt). */
function parses(url: string): boolean {
  try {
    new URL(url);
    return true;
  } catch {
    return false;
  }
}

/** @internal The WebSocket implementation to use for `url`: the one given, or the platform's. */
export function webSocketFor(url: string, given: WebSocketConstructor | undefined): WebSocketConstructor {
  const Impl = given ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Impl) {
    throw new TypeError('RealtimeClient needs a WebSocket implementation: pass { WebSocket } (e.g. from the ws package)');
  }
  if (!/^wss?:\/\//i.test(url) || !parses(url)) {
    throw new TypeError(`RealtimeClient needs a ws:// or wss:// URL, got ${url}`);
  }
  return Impl;
}
