import WebSocket from 'ws';
import type { PrebuiltFrame } from '../prebuilt-frame.js';
import { corkForThisTurn, resetConnection, uncorkNow, underlyingSocket } from './write-batching.js';
import type { RealtimeTransport } from '../transport.interface.js';

/** Text frames, also when the data is a Buffer (a broadcast encoded once). */
const TEXT_FRAME = { binary: false } as const;

/**
 * The `ws` transport: text frames through `ws`, broadcasts written as prebuilt bytes
 * straight to the TCP socket under it (corked for the turn, so the pushes of several
 * broadcasts reach a member in one write), and resets for cut sockets.
 */
export const wsTransport: RealtimeTransport<WebSocket> = {
  isOpen: (socket) => socket.readyState === WebSocket.OPEN,
  bufferedAmount: (socket) => socket.bufferedAmount,
  send(socket, text) {
    socket.send(text, TEXT_FRAME);
  },
  sendPrebuilt(socket, frame: PrebuiltFrame) {
    // ws queues nothing of its own here (no permessage-deflate), so the order of frames holds.
    const raw = underlyingSocket(socket);
    if (raw) {
      corkForThisTurn(raw);
      raw.write(frame.bytes);
    } else {
      socket.send(frame.payload, TEXT_FRAME);
    }
  },
  flushHeld(socket) {
    const raw = underlyingSocket(socket);
    return raw !== undefined && uncorkNow(raw);
  },
  ping(socket, payload) {
    socket.ping(payload);
  },
  close(socket, code, reason) {
    socket.close(code, reason);
  },
  reset: resetConnection,
};
