import type { PrebuiltFrame } from './prebuilt-frame.js';

/**
 * The key of a socket's own place for the core's state of its connection. A transport's
 * socket class that declares it (initialised, so that it sits in the object) saves the
 * core a `WeakMap` entry per connection (about 45 bytes) and a `WeakMap` lookup per event;
 * the core looks up sockets without one in a `WeakMap`.
 */
export const CONNECTION_SLOT: unique symbol = Symbol('realtime.connection');

/** A socket with a place of its own for the core's state of its connection (see {@link CONNECTION_SLOT}). */
export interface ConnectionSlot {
  /** The core's state of the connection; undefined until the core registers it and once it is forgotten. */
  [CONNECTION_SLOT]: unknown;
}

/**
 * What a transport tells the core about its sockets. One object per gateway server, shared
 * by all its sockets (each method gets the socket), so listening allocates nothing per
 * connection.
 */
export interface TransportEvents<Socket extends object = object> {
  /** A whole inbound frame: text, or binary when `isBinary`. */
  message(socket: Socket, data: Buffer, isBinary: boolean): void;
  /** The connection is closed, with the close frame's code and reason (1006 and empty without one). */
  close(socket: Socket, code: number, reason: Buffer): void;
  /**
   * The transport failed the connection and closes it itself with the fitting code;
   * `tooBig` when an inbound frame was over the size limit.
   */
  error(socket: Socket, error: Error, tooBig: boolean): void;
  /** A protocol ping from the client. */
  ping(socket: Socket): void;
  /** A protocol pong, with the payload of the ping it answers. */
  pong(socket: Socket, payload: Buffer): void;
}

/**
 * What the core asks of a transport, for one client socket. A transport is one shared,
 * stateless object whose methods take the socket, so nothing is allocated per connection;
 * the socket is whatever object the transport's server hands to Nest as the client (a
 * `ws` WebSocket for the default transport). Another transport (uWebSockets.js, say),
 * binary frames or compression fit behind it without the core knowing.
 */
export interface RealtimeTransport<Socket extends object = object> {
  /**
   * Starts telling `events` about a socket just accepted: its frames, close, errors,
   * pongs, and the client's pings when `pings`. Where the transport batches writes, the
   * replies to the frames of one inbound chunk leave in one write.
   */
  listen(socket: Socket, events: TransportEvents<Socket>, pings: boolean): void;
  /** Open and not closing: frames may be sent, and inbound ones are dispatched. */
  isOpen(socket: Socket): boolean;
  /** Bytes waiting in this process to be written to the client. */
  bufferedAmount(socket: Socket): number;
  /** The subprotocol the handshake selected (`''` for none): it names the connection's encoding. */
  protocol(socket: Socket): string;
  /**
   * The largest compression window (in bits) the client allows the server, when the
   * connection negotiated permessage-deflate; undefined otherwise. Frames compressed with
   * such a window are sent with {@link sendPrebuilt}.
   */
  deflateWindow(socket: Socket): number | undefined;
  /**
   * Sends a frame the core built whole (header included): a broadcast's, built once and
   * shared by every recipient, or one connection's own (a reply, compressed or not). The
   * transport writes its bytes as they are where it can (else sends its payload as a text
   * or binary frame), in the order they come.
   */
  sendPrebuilt(socket: Socket, frame: PrebuiltFrame): void;
  /**
   * Writes out now what this turn's batching still holds for the socket; true when it held
   * anything (a client is not judged slow for bytes the server held back).
   */
  flushHeld(socket: Socket): boolean;
  /** Sends a protocol ping; its pong comes back with the same payload. */
  ping(socket: Socket, payload?: string): void;
  /** Starts the close handshake. */
  close(socket: Socket, code: number, reason: string): void;
  /** Drops the connection at once, and what is still buffered for it. */
  reset(socket: Socket): void;
}
