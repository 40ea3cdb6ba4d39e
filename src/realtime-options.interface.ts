/** Options of {@link RealtimeModule}: defaults for every gateway of the application. */
export interface RealtimeModuleOptions {
  /** Largest accepted frame in bytes; a bigger one closes the connection with 1009. Default 64 KiB. */
  maxPayload?: number;
  /** Deepest accepted object/array nesting of a JSON frame (the envelope is level 1). Default 32. */
  maxDepth?: number;
  /**
   * Invalid frames (BAD_REQUEST, UNKNOWN_EVENT) a connection may send within `windowMs`
   * before it is closed with 1008. Default `{ limit: 100, windowMs: 10000 }`.
   */
  invalidFrames?: { limit: number; windowMs: number };
  /**
   * How long `app.close()` waits for clients to answer the 1001 close frame before
   * it terminates them, in ms. Default 30000.
   */
  shutdownTimeoutMs?: number;
}

/** Per-gateway options, given to {@link RealtimeGateway}; they override the module's. */
export interface RealtimeGatewayOptions {
  /** Largest accepted frame in bytes for this gateway. */
  maxPayload?: number;
  /** Deepest accepted JSON nesting for this gateway. */
  maxDepth?: number;
  /** Invalid-frame limit for this gateway. */
  invalidFrames?: { limit: number; windowMs: number };
}
