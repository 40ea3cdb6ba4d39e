// Client SDK public API (`nestjs-realtime/client`): no Nest, no Node built-ins; runs in
// browsers with their WebSocket and in Node with the `ws` package's.
export { RealtimeClient } from './realtime-client.js';
export type { ConnectionState, StateChange, StateReason } from './client-state.js';
export type {
  ClientEncoding,
  ClientRoomOptions,
  EventMap,
  IncomingFrame,
  ReconnectContext,
  RealtimeClientOptions,
  TokenProvider,
  TokenReason,
} from './client-options.js';
export type { ClientClock } from './clock.js';
export type { PushesOf, ReplyOf, RequestArgs, RequestEvent, RequestOptions, TypedContract, UntypedEvent } from './client-contract.js';
export type { RoomRejoin } from './room-tracker.js';
export type { ServerRequestHandler } from './request-handlers.js';
export { RealtimeClientError, ClientErrorCode } from './client-error.js';
export { backoffDelay, resolveBackoff } from './backoff.js';
export type { BackoffOptions, ResolvedBackoff } from './backoff.js';
export type { WebSocketConstructor, WebSocketLike } from './websocket-like.js';
export { CloseCode } from '../protocol/close-codes.js';
export { ErrorCode } from '../protocol/error-codes.js';
export type { RealtimeErrorCode } from '../protocol/error-codes.js';
export type { PresenceData, ValidationErrorDetail } from '../protocol/envelope.js';
export { PRESENCE_EVENT, PROTOCOL_V1, PROTOCOL_V1_MSGPACK } from '../protocol/envelope.js';
