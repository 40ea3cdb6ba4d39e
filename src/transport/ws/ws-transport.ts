import WebSocket from 'ws';
import type { PrebuiltFrame } from '../prebuilt-frame.js';
import { frameParserOf, skipEndsOnceFinished } from './finished-ends.js';
import { corkForThisTurn, resetConnection, uncorkNow, underlyingSocket } from './write-batching.js';
import type { RealtimeTransport } from '../transport.interface.js';
import { RealtimeWebSocket } from './realtime-websocket.js';

/**
 * A prebuilt frame's payload sent through `ws` (only where the TCP socket cannot be reached),
 * never compressed by `ws`: with permessage-deflate the adapter compresses itself (see
 * `deflateFrame`), so `ws` never holds a frame back while it compresses one, and frames
 * written straight to the TCP socket keep their order.
 */
const TEXT_FRAME = { binary: false, compress: false } as const;
/** The same for a binary frame (the MessagePack encoding). */
const BINARY_FRAME = { binary: true, compress: false } as const;

/** A ping frame with no payload (FIN, opcode 0x9, length 0), as a server sends it: unmasked. */
const EMPTY_PING = Buffer.from([0x89, 0x00]);

/** What `ws` keeps of the extensions it negotiated (not public API: read defensively). */
interface NegotiatedExtensions {
  _extensions?: { 'permessage-deflate'?: { params?: { server_max_window_bits?: unknown } } };
}

/** The window a compressor may use when the client set no `server_max_window_bits`. */
const DEFAULT_WINDOW_BITS = 15;

/**
 * The `ws` transport: `ws` for the handshake, reading frames, pings and closes; every frame
 * the core sends (replies and broadcasts alike) written as prebuilt bytes straight to the
 * TCP socket under it (corked for the turn, so the replies and pushes of one turn reach a
 * client in one write), and resets for cut sockets.
 */
export const wsTransport: RealtimeTransport<WebSocket> = {
  listen(socket, events, pings) {
    if (!(socket instanceof RealtimeWebSocket)) {
      throw new TypeError('the ws transport serves the sockets of servers made with WebSocket: RealtimeWebSocket');
    }
    // Pongs also without heartbeats: a pong is how a client proves it reads.
    socket.transportEvents = events;
    socket.tellsPings = pings;
    skipEndsOnceFinished(underlyingSocket(socket));
    skipEndsOnceFinished(frameParserOf(socket));
  },
  isOpen: (socket) => socket.readyState === WebSocket.OPEN,
  bufferedAmount: (socket) => socket.bufferedAmount,
  deflateWindow(socket) {
    const params = (socket as NegotiatedExtensions)._extensions?.['permessage-deflate']?.params;
    if (!params) {
      return undefined;
    }
    const bits = params.server_max_window_bits;
    return typeof bits === 'number' ? bits : DEFAULT_WINDOW_BITS;
  },
  sendPrebuilt(socket, frame: PrebuiltFrame) {
    // ws queues nothing of its own here (it never compresses: see TEXT_FRAME), so the order of frames holds.
    const raw = underlyingSocket(socket);
    if (raw) {
      corkForThisTurn(raw);
      raw.write(frame.bytes);
    } else {
      socket.send(frame.payload, frame.binary ? BINARY_FRAME : TEXT_FRAME);
    }
  },
  protocol: (socket) => socket.protocol,
  flushHeld(socket) {
    const raw = underlyingSocket(socket);
    return raw !== undefined && uncorkNow(raw);
  },
  ping(socket, payload) {
    const raw = payload === undefined ? underlyingSocket(socket) : undefined;
    if (raw) {
      // The heartbeat's ping, the same two bytes for every connection, in one write.
      raw.write(EMPTY_PING);
    } else {
      socket.ping(payload);
    }
  },
  close(socket, code, reason) {
    socket.close(code, reason);
  },
  reset: resetConnection,
};
