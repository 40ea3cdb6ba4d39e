// Server public API. Everything a NestJS application needs is exported here by name.
export { RealtimeModule } from './realtime.module.js';
export { REALTIME_MODULE_OPTIONS } from './realtime.module-definition.js';
export type {
  RealtimeGatewayOptions,
  RealtimeHeartbeatOptions,
  RealtimeHistoryOptions,
  RealtimeModuleOptions,
  RealtimeShutdownOptions,
} from './realtime-options.interface.js';
export { ClientReplyError, RealtimeError } from './realtime.errors.js';
export type { ServerRequestOptions } from './gateway/server-requests.js';
export type { RealtimeCompressionOptions } from './options/compression.js';
export type { RealtimePresenceOptions } from './rooms/presence-options.js';
export type { HandshakeInfo, JwtAlgorithm, JwtKey, JwtTokenHeader, RealtimeAuthOptions } from './auth/auth-options.interface.js';
export { Principal, principalOf } from './auth/principal.js';
export type { RealtimePrincipal } from './auth/principal.interface.js';
export { AuthenticationError } from './auth/authenticator.interface.js';
export type { Authentication, RealtimeAuthenticator } from './auth/authenticator.interface.js';
export { JwtAuthenticator } from './auth/jwt-authenticator.js';
export { RequireRoles, RolesGuard } from './auth/require-roles.decorator.js';
export { RealtimeGateway, SubscribeRawText } from './gateway/realtime-gateway.decorator.js';
export { RealtimeWsAdapter } from './gateway/realtime-ws.adapter.js';
export type { GatewayServerOptions, HttpServerSource } from './gateway/realtime-ws.adapter.js';
export { REALTIME_GATEWAY_OPTIONS } from './realtime.constants.js';
export type { HeartbeatStats } from './heartbeat/heartbeat-registry.js';
export { RealtimeExceptionFilter } from './gateway/realtime-exception.filter.js';
export { MessageContext } from './gateway/message-context.js';
export { RealtimeHub } from './rooms/realtime-hub.js';
export { RealtimeContract } from './contract/realtime-contract.js';
export { Emits, Replies } from './contract/contract.decorators.js';
export type { ContractOptions, ContractType, EmittedPush, JsonSchema, JsonValue } from './contract/contract.decorators.js';
export type { AsyncApiDocument, AsyncApiInfo, AsyncApiServer } from './contract/asyncapi-document.js';
export { asyncApiTypes } from './contract/contract-types.js';
export type { GatewayContract, HandlerContract } from './contract/gateway-contract.js';
export { MAX_ROOM_LENGTH } from './rooms/room-name.js';
export type { EmitToRoomOptions, JoinOptions, RoomPosition } from './rooms/room-options.js';
export { MemoryBroker, MemoryBus } from './broker/memory-broker.js';
export type { MemoryBrokerOptions } from './broker/memory-broker.js';
export type {
  BrokerHealth,
  BrokerMessageListener,
  BrokerPubSub,
  BrokerState,
  HistoryEntry,
  HistoryPage,
  HistoryPolicy,
  PresenceStore,
  RealtimeBroker,
  StreamPosition,
} from './broker/broker.interface.js';
export { BrokerTimeoutError, BrokerUnavailableError } from './broker/broker-errors.js';
export { BrokerResilience } from './broker/broker-resilience.js';
export type { BrokerResilienceOptions, ResilientBackend } from './broker/broker-resilience.js';
export { RateLimit, RateLimitGuard } from './limits/rate-limit.decorator.js';
export type { RateLimit as RateLimitOptions } from './limits/token-bucket.js';
export type { FrameLimits, RealtimeLimits } from './limits/limits.js';
export type { LogThrottleSettings } from './limits/log-throttle.js';
export type { UpgradeRefusalCause } from './transport/ws/upgrade-response.js';
export { RealtimeMetrics } from './metrics/realtime-metrics.js';
export { HeartbeatInterceptor } from './heartbeat/heartbeat.interceptor.js';
export { MessageValidation } from './validation/message-validation.decorator.js';
export { RealtimeValidationPipe } from './validation/realtime-validation.pipe.js';
export { realtimeValidationExceptionFactory } from './validation/validation-details.js';
export type { RealtimeValidationOptions, RealtimeValidationSetting } from './validation/validation-options.interface.js';
export type { DisconnectCause, DisconnectReason, OnRealtimeDisconnect } from './gateway/disconnect-reason.js';
export {
  CloseCode,
  ErrorCode,
  PROTOCOL_V1,
  PROTOCOL_V1_MSGPACK,
  AUTH_EVENT,
  ERROR_EVENT,
  PING_EVENT,
  PONG_EVENT,
  PRESENCE_EVENT,
  MAX_ID_LENGTH,
  isErrorCode,
  isRealtimeErrorCode,
} from './protocol/index.js';
export type { RealtimeErrorCode } from './protocol/index.js';
export type {
  ErrorFrame,
  ErrorPayload,
  MessageId,
  PresenceData,
  ReplyFrame,
  RequestFrame,
  ValidationErrorDetail,
} from './protocol/index.js';
