/** A bound Nest message handler: `(data, context) => Promise<result>`. */
export type BoundHandler = (data: unknown, context: unknown) => unknown;

/** Calls a handler the way Nest would: `(client, payload)` in, the method's result (or throw) out. */
export type DirectHandler = (client: object, payload: unknown) => unknown;

/**
 * What `Connection.handlerFor` gives for an event only the connection's `direct` table
 * handles: the dispatcher calls the direct handler instead, so this one is never called.
 */
export const DIRECT_ONLY: BoundHandler = () => {
  throw new Error('a direct handler is called through the direct table');
};
