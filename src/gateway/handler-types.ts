/** A bound Nest message handler: `(data, context) => Promise<result>`. */
export type BoundHandler = (data: unknown, context: unknown) => unknown;

/** Calls a handler the way Nest would: `(client, payload)` in, the method's result (or throw) out. */
export type DirectHandler = (client: object, payload: unknown) => unknown;
