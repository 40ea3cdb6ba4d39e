import { CONNECTION_SLOT, type ConnectionSlot } from '../transport/transport.interface.js';
import type { Connection } from './connection.js';

/** The connections of sockets without a slot of their own (see {@link CONNECTION_SLOT}). */
const connections = new WeakMap<object, Connection>();

/**
 * @internal The plugin's state of a connected client (the `ws` socket), if it has any;
 * undefined for anything else, `null` and `undefined` included (a guard may be asked about
 * the client of a context that has none).
 */
export function connectionOf(client: object | null | undefined): Connection | undefined {
  if (typeof client !== 'object' || client === null) {
    return undefined;
  }
  const own = (client as Partial<ConnectionSlot>)[CONNECTION_SLOT];
  return own !== undefined ? (own as Connection) : connections.get(client);
}

/** @internal Forgets the connection of `client`: its socket's later events find none. */
export function forgetConnection(client: object): void {
  if (CONNECTION_SLOT in client) {
    (client as ConnectionSlot)[CONNECTION_SLOT] = undefined;
  } else {
    connections.delete(client);
  }
}

/** @internal Makes `connection` the one {@link connectionOf} finds for `socket`. */
export function registerConnection(socket: object, connection: Connection): void {
  if (CONNECTION_SLOT in socket) {
    (socket as ConnectionSlot)[CONNECTION_SLOT] = connection;
  } else {
    connections.set(socket, connection);
  }
}
