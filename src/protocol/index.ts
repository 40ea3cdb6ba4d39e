export { CloseCode } from './close-codes.js';
export { ErrorCode, isErrorCode, isRealtimeErrorCode } from './error-codes.js';
export type { RealtimeErrorCode } from './error-codes.js';
export {
  AUTH_EVENT,
  BEARER_PROTOCOL_PREFIX,
  DEFAULT_MAX_DEPTH,
  ERROR_EVENT,
  MAX_EVENT_LENGTH,
  MAX_ID_LENGTH,
  PING_EVENT,
  PONG_EVENT,
  PRESENCE_EVENT,
  PROTOCOL_V1,
  PROTOCOL_V1_MSGPACK,
  encodeError,
  encodeReply,
  isMessageId,
  parseBinaryFrame,
  parseFrame,
} from './envelope.js';
export type {
  ErrorFrame,
  ErrorPayload,
  MessageId,
  ParsedFrame,
  PresenceData,
  ReplyFrame,
  RequestFrame,
  ValidationErrorDetail,
} from './envelope.js';
