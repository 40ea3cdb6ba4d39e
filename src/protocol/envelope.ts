import type { RealtimeErrorCode } from './error-codes.js';
import { unpack } from './msgpack.js';

/** The subprotocol a client offers (and the server selects) for protocol v1, in JSON text frames. */
export const PROTOCOL_V1 = 'realtime.v1';
/**
 * The subprotocol of the MessagePack encoding (protocol 1.2): the same envelope in binary
 * frames, with bytes inside `data`. A client offers it next to {@link PROTOCOL_V1}, and a
 * server that knows it selects it.
 */
export const PROTOCOL_V1_MSGPACK = 'realtime.v1.msgpack';
/** Prefix of the `Sec-WebSocket-Protocol` entry that carries a token from a browser. */
export const BEARER_PROTOCOL_PREFIX = 'bearer.';
/** Longest accepted request `id`, in characters. */
export const MAX_ID_LENGTH = 64;
/** Longest accepted `event` name, in characters. */
export const MAX_EVENT_LENGTH = 128;
/** Default limit of object/array nesting in one frame (the envelope is level 1). */
export const DEFAULT_MAX_DEPTH = 32;

/** Event of every error frame. */
export const ERROR_EVENT = 'error';
/** Reserved event: application-level ping, answered with {@link PONG_EVENT}. */
export const PING_EVENT = 'ping';
/** Event of the answer to {@link PING_EVENT}; `data.t` is the server's epoch time in ms. */
export const PONG_EVENT = 'pong';
/** Reserved event: in-band token refresh with `data: {"token": ...}`. */
export const AUTH_EVENT = 'auth';
/** Event of presence pushes (protocol 1.2, when the server turns them on); their `data` is a {@link PresenceData}. */
export const PRESENCE_EVENT = 'presence';

/** The `data` of a presence push: one user who joined the room, or one who left it. */
export type PresenceData = { readonly joined: string; readonly left?: never } | { readonly left: string; readonly joined?: never };

/** A request id: a string of 1 to 64 characters or a number of magnitude at most 2^53 - 1. */
export type MessageId = string | number;

/** A client-to-server request frame, or the client's reply to a server request (with `sid`). */
export interface RequestFrame<T = unknown> {
  /** Name of the handler to run; in a reply, the request's event, or `error` for a failure. */
  event: string;
  /** The handler's input; in a reply, its result (or `{code, message}` for a failure). */
  data?: T;
  /** When present, exactly one reply (success or error) carries it back. */
  id?: MessageId;
  /** Set in a reply to the server's request of that `sid` (protocol 1.2); never with `id`. */
  sid?: number;
}

/** A server-to-client reply, a push when it has no `id`, or a request when it has a `sid`. */
export interface ReplyFrame<T = unknown> {
  /** The request's event (or the event a handler chose with a `WsResponse`). */
  event: string;
  /** The request's id, when it had one. */
  id?: MessageId;
  /** The handler's result; `null` when it returned nothing. */
  data: T;
  /** The room a push was sent to. */
  room?: string;
  /** Set in a request from the server (protocol 1.2): the client answers with the same `sid`. */
  sid?: number;
}

/** One failing property of a `VALIDATION_FAILED` error. */
export interface ValidationErrorDetail {
  /** The property's name. */
  property: string;
  /** Failed rules and their messages, e.g. `{"isString": "message must be a string"}`. */
  constraints?: Record<string, string>;
  /** Failures of nested properties. */
  children?: ValidationErrorDetail[];
}

/** Payload of an error frame. */
export interface ErrorPayload {
  /** A protocol error code, or the application's own (see `RealtimeErrorCode`). */
  code: RealtimeErrorCode;
  /** A human-readable explanation, safe to show; never a stack trace. */
  message: string;
  /** Structured details, e.g. validation failures. */
  details?: ValidationErrorDetail[] | unknown[];
}

/** An error frame. */
export interface ErrorFrame {
  /** Always `"error"`. */
  event: typeof ERROR_EVENT;
  /** The failed request's id, when it had a valid one. */
  id?: MessageId;
  /** In a client's failure reply to a server request (protocol 1.2): that request's `sid`. */
  sid?: number;
  /** What went wrong. */
  data: ErrorPayload;
}

/** Result of {@link parseFrame}. */
export type ParsedFrame =
  { kind: 'request'; frame: RequestFrame } | { kind: 'raw'; text: string } | { kind: 'invalid'; id?: MessageId; message: string };

/**
 * Whether `id` is a valid request id: a string of 1 to 64 characters, or a finite number no
 * larger in magnitude than 2^53 - 1 (past it, `9007199254740993` is read as `...992`, and a
 * reply would carry an id its client never sent).
 */
export function isMessageId(id: unknown): id is MessageId {
  return (
    (typeof id === 'string' && id.length > 0 && id.length <= MAX_ID_LENGTH) ||
    (typeof id === 'number' && Math.abs(id) <= Number.MAX_SAFE_INTEGER)
  );
}

/**
 * Parses one text frame. Frames whose first non-blank character is not `{` are
 * `raw`; JSON frames are checked against the v1 envelope, limited to `maxDepth`
 * levels of nesting, and cleaned of `__proto__`, `constructor` and `prototype`
 * keys so that no payload can reach an object's prototype downstream.
 */
export function parseFrame(text: string, maxDepth: number = DEFAULT_MAX_DEPTH): ParsedFrame {
  if (firstNonBlank(text) !== 0x7b /* { */) {
    return { kind: 'raw', text };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', message: 'frame is not valid JSON' };
  }
  // A '{' start guarantees an object, so only the envelope's fields remain to check.
  return checkEnvelope(value as Record<string, unknown>, maxDepth);
}

/**
 * Parses one binary frame of the MessagePack encoding ({@link PROTOCOL_V1_MSGPACK}): a map,
 * checked as {@link parseFrame} checks a JSON object. There are no raw binary frames.
 */
export function parseBinaryFrame(bytes: Uint8Array, maxDepth: number = DEFAULT_MAX_DEPTH): ParsedFrame {
  const value = unpackMap(bytes);
  if (typeof value === 'string') {
    return { kind: 'invalid', message: value };
  }
  return checkEnvelope(value, maxDepth);
}

/** The map of a binary frame, or why it is not one. */
function unpackMap(bytes: Uint8Array): Record<string, unknown> | string {
  let value: unknown;
  try {
    value = unpack(bytes);
  } catch (error) {
    return `frame is not valid MessagePack: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || ArrayBuffer.isView(value) || value instanceof Date) {
    return 'frame must be a MessagePack map';
  }
  return value as Record<string, unknown>;
}

/** Checks a decoded frame against the v1 envelope (see {@link parseFrame}). */
function checkEnvelope(frame: Record<string, unknown>, maxDepth: number): ParsedFrame {
  const id = frame.id;
  if (id !== undefined && !isMessageId(id)) {
    return {
      kind: 'invalid',
      message: `"id" must be a string of 1 to ${MAX_ID_LENGTH} characters or a number of magnitude at most 2^53 - 1`,
    };
  }
  const sid = frame.sid;
  if (sid !== undefined && (!Number.isSafeInteger(sid) || (sid as number) < 1 || id !== undefined)) {
    return {
      kind: 'invalid',
      id,
      message:
        id === undefined ? '"sid" must be a whole number of at least 1' : 'a frame carries "id" (a request) or "sid" (a reply), not both',
    };
  }
  if (!sanitize(frame, 1, maxDepth)) {
    return { kind: 'invalid', id, message: `frame is nested deeper than ${maxDepth} levels` };
  }
  const event = frame.event;
  if (typeof event !== 'string' || event.length === 0 || event.length > MAX_EVENT_LENGTH) {
    return {
      kind: 'invalid',
      id,
      message: `"event" must be a string of 1 to ${MAX_EVENT_LENGTH} characters`,
    };
  }
  return { kind: 'request', frame: frame as unknown as RequestFrame };
}

/**
 * The valid request id of a text frame, if it has one, and nothing else of it: for a
 * refusal that must carry the id but spares the frame the rest (a rate limit).
 */
export function requestIdOf(text: string): MessageId | undefined {
  if (firstNonBlank(text) !== 0x7b /* { */) {
    return undefined;
  }
  try {
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return isMessageId(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The valid request id of a binary frame, if it has one (see {@link requestIdOf}). */
export function binaryRequestIdOf(bytes: Uint8Array): MessageId | undefined {
  const value = unpackMap(bytes);
  return typeof value !== 'string' && isMessageId(value.id) ? value.id : undefined;
}

/** A reply (or, without `id`, a push) as an object, in the envelope's key order. */
export function replyFrame(event: string, id: MessageId | undefined, data: unknown): ReplyFrame {
  return id === undefined ? { event, data: data ?? null } : { event, id, data: data ?? null };
}

/** An error frame as an object. */
export function errorFrame(id: MessageId | undefined, code: RealtimeErrorCode, message: string, details?: readonly unknown[]): ErrorFrame {
  const data: ErrorPayload = details === undefined ? { code, message } : { code, message, details: [...details] };
  return id === undefined ? { event: ERROR_EVENT, data } : { event: ERROR_EVENT, id, data };
}

/** Serializes a reply (or, without `id`, a push) as JSON. */
export function encodeReply(event: string, id: MessageId | undefined, data: unknown): string {
  return JSON.stringify(replyFrame(event, id, data));
}

/** Serializes an error frame as JSON. */
export function encodeError(id: MessageId | undefined, code: RealtimeErrorCode, message: string, details?: readonly unknown[]): string {
  return JSON.stringify(errorFrame(id, code, message, details));
}

function firstNonBlank(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // space, \t, \n, \r: JSON's own whitespace
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) {
      return c;
    }
  }
  return -1;
}

/** Walks a decoded value: false when deeper than `max`; deletes prototype-polluting keys. Bytes and dates are leaves. */
function sanitize(value: unknown, depth: number, max: number): boolean {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Date) {
    return true;
  }
  if (depth > max) {
    return false;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!sanitize(value[i], depth + 1, max)) {
        return false;
      }
    }
    return true;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
      delete record[key];
    } else if (!sanitize(record[key], depth + 1, max)) {
      return false;
    }
  }
  return true;
}
