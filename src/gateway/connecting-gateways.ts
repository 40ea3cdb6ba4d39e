/**
 * Which gateway instance a client being connected belongs to, between its
 * `handleConnection` and Nest binding its handlers. Nest does both in one synchronous call
 * for each gateway in turn, so one slot holds it, not a map entry per connection. (A
 * request-scoped gateway's instance is made later, after the binding: its note finds no
 * taker, and the next connection's replaces it.)
 */
let notedClient: object | undefined;
let notedInstance: object | undefined;

/**
 * @internal Noted by a {@link RealtimeGateway}'s `handleConnection`, which Nest calls just
 * before it binds that gateway's handlers to the client: which instance they belong to.
 */
export function noteConnectingGateway(client: object, instance: object): void {
  notedClient = client;
  notedInstance = instance;
}

/** @internal The gateway instance noted for `client`, forgotten as it is read. */
export function takeConnectingGateway(client: object): object | undefined {
  const instance = notedClient === client ? notedInstance : undefined;
  notedClient = undefined;
  notedInstance = undefined;
  return instance;
}
