/**
 * A gateway's contract as types, as `asyncApiTypes()` generates it from the server's
 * AsyncAPI document: what each request takes and what its reply carries, and what each
 * push carries. `RealtimeClient<ChatContract>` then type-checks `request()` and `on()`.
 *
 * @example
 * ```ts
 * type ChatContract = {
 *   requests: { send: { data: { room: string; text: string }; reply: { offset?: number } } };
 *   pushes: { message: { room: string; from: string; text: string } };
 * };
 * const chat = new RealtimeClient<ChatContract>(url);
 * const { offset } = await chat.request('send', { room: 'general', text: 'hi' });
 * ```
 */
export type TypedContract = {
  /** By event: its `data` (optional when the request takes none) and its reply's `data`. */
  requests: Record<string, { data?: unknown; reply: unknown }>;
  /** By event: the push's `data`. */
  pushes: Record<string, unknown>;
};

/** The options of a request. */
export type RequestOptions = { timeoutMs?: number };

/**
 * The events `on()` takes, with their data: a contract's pushes (and `raw`, the text of a
 * raw-text answer), or an event map (`EventMap`) as it is.
 */
export type PushesOf<C> = C extends TypedContract ? C['pushes'] & { raw: string } : C;

/** The events a client may request by its contract; none for an event map (`EventMap`): any event goes, untyped. */
export type RequestEvent<C> = C extends TypedContract ? keyof C['requests'] & string : never;

/** The arguments after the event of a contract's request: its data (optional when it takes none), then options. */
export type RequestArgs<C, E extends RequestEvent<C>> = C extends TypedContract
  ? C['requests'][E] extends { data: infer D }
    ? [data: D, options?: RequestOptions]
    : [data?: C['requests'][E]['data'], options?: RequestOptions]
  : never;

/** What the reply to a contract's request carries. */
export type ReplyOf<C, E extends RequestEvent<C>> = C extends TypedContract ? C['requests'][E]['reply'] : never;

/** An event of an untyped request: any string, unless the client has a contract (then only its requests). */
export type UntypedEvent<C> = C extends TypedContract ? never : string;
