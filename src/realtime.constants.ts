/** Key under which {@link RealtimeGateway} stores its options in Nest's gateway metadata. */
export const REALTIME_GATEWAY_OPTIONS = 'realtime';

/**
 * The message name under which raw-text handlers are registered. It is never
 * matched against a client's `event`, so a JSON frame cannot reach a raw handler.
 */
export const RAW_TEXT_MESSAGE = '<raw text>';
