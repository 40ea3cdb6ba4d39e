import { DEFAULT_MAX_DEPTH } from './protocol/envelope.js';

/** Default `maxPayload`: 64 KiB. */
export const DEFAULT_MAX_PAYLOAD = 64 * 1024;
/** Default invalid-frame limit per connection. */
export const DEFAULT_INVALID_FRAMES = { limit: 100, windowMs: 10_000 } as const;
/** Default heartbeat: ping after 25 s of silence, terminate after 10 s more (protocol §3). */
export const DEFAULT_HEARTBEAT = { intervalMs: 25_000, timeoutMs: 10_000 } as const;
/** Default shutdown deadline in ms. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 30_000;
export { DEFAULT_MAX_DEPTH };

/** Key under which {@link RealtimeGateway} stores its options in Nest's gateway metadata. */
export const REALTIME_GATEWAY_OPTIONS = 'realtime';

/**
 * The message name under which raw-text handlers are registered. It is never
 * matched against a client's `event`, so a JSON frame cannot reach a raw handler.
 */
export const RAW_TEXT_MESSAGE = '<raw text>';
