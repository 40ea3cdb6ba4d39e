import WebSocket from 'ws';
import { CONNECTION_SLOT, type ConnectionSlot, type TransportEvents } from '../transport.interface.js';

/**
 * The WebSocket class of the plugin's `ws` servers: `ws`'s own, whose `emit` hands the
 * events the core needs (frames, close, errors, pongs, and the client's pings when asked)
 * straight to the transport's {@link TransportEvents}, with no listener added per socket.
 * Five listeners made `ws`'s listener table of every connection about 100 bytes larger,
 * and each event a lookup in it. Listeners the application adds get every event too:
 * frames, errors, pings and pongs after the core, the close before the core's close
 * handling (which ends with Nest's handleDisconnect).
 */
export class RealtimeWebSocket extends WebSocket implements ConnectionSlot {
  /** @internal The core's state of this connection (see {@link CONNECTION_SLOT}). */
  [CONNECTION_SLOT]: unknown = undefined;
  /** @internal Where this socket's events go, once the transport listens to it. */
  transportEvents: TransportEvents<WebSocket> | undefined = undefined;
  /** @internal Whether the client's pings are told too (heartbeats are on). */
  tellsPings = false;

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const events = this.transportEvents;
    if (events === undefined) {
      return super.emit(event, ...args);
    }
    if (event === 'close') {
      // The listeners first: `ws`'s server forgets the client (its `clients`, its own
      // close), then the application's run. Then the core's handling, which ends with
      // Nest's handleDisconnect, and runs even when a listener throws.
      try {
        return super.emit(event, ...args);
      } finally {
        events.close(this, args[0] as number, args[1] as Buffer);
      }
    }
    if (!tell(this, events, event, args)) {
      return super.emit(event, ...args);
    }
    // Told to the core; to the application's own listeners too, if it has any (an 'error'
    // without a listener would throw, and the core has handled it).
    return this.listenerCount(event) === 0 || super.emit(event, ...args);
  }
}

/** Hands one `ws` event to `events`; false for an event the core does not take. */
function tell(socket: RealtimeWebSocket, events: TransportEvents<WebSocket>, event: string | symbol, args: unknown[]): boolean {
  switch (event) {
    case 'message':
      events.message(socket, args[0] as Buffer, args[1] as boolean);
      return true;
    case 'error': {
      const error = args[0] as Error & { code?: string };
      events.error(socket, error, error.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH');
      return true;
    }
    case 'pong':
      events.pong(socket, args[0] as Buffer);
      return true;
    case 'ping':
      if (socket.tellsPings) {
        events.ping(socket);
        return true;
      }
      return false;
    default:
      return false;
  }
}
