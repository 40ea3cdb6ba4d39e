/** Which gateway instance a client being connected belongs to, between its `handleConnection` and Nest binding its handlers. */

const connectingGateways = new WeakMap<object, object>();

/**
 * @internal Noted by a {@link RealtimeGateway}'s `handleConnection`, which Nest calls just
 * before it binds that gateway's handlers to the client: which instance they belong to.
 */
export function noteConnectingGateway(client: object, instance: object): void {
  connectingGateways.set(client, instance);
}

/** @internal The gateway instance noted for `client`, forgotten as it is read. */
export function takeConnectingGateway(client: object): object | undefined {
  const instance = connectingGateways.get(client);
  connectingGateways.delete(client);
  return instance;
}
