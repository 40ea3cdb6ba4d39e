import { CloseCode } from '../protocol/close-codes.js';
import {
  AUTH_EVENT,
  ERROR_EVENT,
  MAX_EVENT_LENGTH,
  MAX_ID_LENGTH,
  PING_EVENT,
  PONG_EVENT,
  PROTOCOL_V1,
  PROTOCOL_V1_MSGPACK,
} from '../protocol/envelope.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { JsonSchema, JsonValue } from './contract.decorators.js';
import type { ContractSchemas } from './contract-schemas.js';
import type { GatewayContract, HandlerContract } from './gateway-contract.js';

/** An AsyncAPI 3.0 document, as plain JSON. */
export type AsyncApiDocument = { readonly asyncapi: '3.0.0' } & { readonly [key: string]: JsonValue };

/** A server of the document: where clients connect. */
export interface AsyncApiServer {
  /** `host[:port]`, e.g. `chat.example.com` or `localhost:3000`. */
  readonly host: string;
  /** `wss` (TLS) or `ws`. */
  readonly protocol: 'ws' | 'wss';
  readonly description?: string;
}

/** What the document says about itself (`RealtimeContract.asyncApi()`). */
export interface AsyncApiInfo {
  /** Default `Realtime API`. */
  readonly title?: string;
  /** The API's version (not the protocol's). Default `1.0.0`. */
  readonly version?: string;
  readonly description?: string;
  /** Where clients connect, by name. Default: none listed. */
  readonly servers?: Readonly<Record<string, AsyncApiServer>>;
}

/**
 * How connections authenticate, for the security schemes and the `auth` event: JWT (its
 * schemes, and `auth` with a token), the application's own authenticator (`auth` only when
 * it can refresh), or none (every gateway is public).
 */
export type ContractAuthentication = 'jwt' | 'custom' | 'custom-refresh' | 'none';

const WHAT_CLOSE_CODES_MEAN: Readonly<Record<number, string>> = {
  [CloseCode.NORMAL]: 'normal closure: stop',
  [CloseCode.GOING_AWAY]: 'server going away (shutdown, drain): reconnect with backoff',
  [CloseCode.POLICY_VIOLATION]: 'policy violation (invalid-frame flood, rate abuse): stop and report',
  [CloseCode.MESSAGE_TOO_BIG]: 'message over the payload limit: stop and report',
  [CloseCode.INTERNAL_ERROR]: 'internal error: reconnect with backoff',
  [CloseCode.SERVICE_RESTART]: 'service restart: reconnect with backoff',
  [CloseCode.TRY_AGAIN_LATER]: 'overload: reconnect with a longer backoff',
  [CloseCode.TOKEN_EXPIRED]: 'token expired: refresh the token, then reconnect',
  [CloseCode.FORBIDDEN]: 'forbidden (kicked, token revoked): stop',
  [CloseCode.SLOW_CONSUMER]: 'slow consumer (outbound buffer over its limit): reconnect with backoff',
};

const JWT_SCHEMES: Readonly<Record<string, JsonSchema>> = {
  jwtHeader: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      "The token in the handshake's `Authorization: Bearer <jwt>` header (Node and server-side clients). A bad token is refused with HTTP 401 before any WebSocket exists.",
  },
  jwtSubprotocol: {
    type: 'httpApiKey',
    in: 'header',
    name: 'Sec-WebSocket-Protocol',
    description: `The token as a subprotocol entry \`bearer.<jwt>\`, offered next to \`${PROTOCOL_V1}\` (browsers cannot set headers). The server never selects it.`,
  },
  jwtQuery: {
    type: 'httpApiKey',
    in: 'query',
    name: 'access_token',
    description: 'The token as the `access_token` query parameter.',
  },
};

/**
 * The AsyncAPI 3.0 document of `gateways`: a channel per gateway path; per handler a
 * `receive` operation with its request and its reply (or error frame); per declared push a
 * `send` operation; the reserved `ping` and `auth`; the error frame and its codes; the JWT
 * security schemes; the close codes as `x-close-codes`.
 */
export function asyncApiDocument(
  gateways: readonly GatewayContract[],
  schemas: ContractSchemas,
  authentication: ContractAuthentication,
  info: AsyncApiInfo = {},
): AsyncApiDocument {
  const envelope = envelopeSchemas(schemas);
  const channels: Record<string, JsonValue> = {};
  const operations: Record<string, JsonValue> = {};
  const taken = new Set<string>();
  const operationIds = new Set<string>();
  for (const gateway of [...gateways].sort((a, b) => a.path.localeCompare(b.path))) {
    const channel = uniqueKey(gateway.path === '/' ? 'root' : gateway.path.slice(1), taken);
    const security = gateway.public || authentication !== 'jwt' ? undefined : Object.keys(JWT_SCHEMES).map(schemeRef);
    const messages: Record<string, JsonValue> = { error: { $ref: '#/components/messages/error' } };
    const operationsHere = new Map<string, JsonValue>();
    // Message keys of this channel: the reserved ones, then one per event (with its `.reply`
    // or `.push`), never two alike, whatever the events' names.
    const keys = new Set(['error', 'ping', 'pong', 'auth', 'auth.reply', 'raw', 'raw.reply']);
    const keyFor = (event: string): string => {
      const base = messageKey(event);
      let key = base;
      for (let n = 2; keys.has(key) || keys.has(`${key}.reply`) || keys.has(`${key}.push`); n++) {
        key = `${base}-${n}`;
      }
      keys.add(key).add(`${key}.reply`).add(`${key}.push`);
      return key;
    };
    const add = (key: string, message: JsonValue, reply?: string[]): void => {
      messages[key] = message;
      if (reply) {
        operationsHere.set(key, {
          action: 'receive',
          channel: { $ref: `#/channels/${channel}` },
          messages: [messageRef(channel, key)],
          reply: { channel: { $ref: `#/channels/${channel}` }, messages: [...reply, 'error'].map((name) => messageRef(channel, name)) },
          ...(security ? { security } : {}),
        });
      }
    };
    for (const handler of gateway.handlers) {
      if (handler.event === undefined) {
        add('raw', rawMessage('A raw text frame: one whose first non-blank character is not `{` (JSON connections only).'));
        add('raw.reply', rawMessage("The raw-text handler's answer, as it returned it."));
        operationsHere.set('raw', {
          action: 'receive',
          channel: { $ref: `#/channels/${channel}` },
          messages: [messageRef(channel, 'raw')],
          reply: { channel: { $ref: `#/channels/${channel}` }, messages: ['raw.reply', 'error'].map((name) => messageRef(channel, name)) },
          ...(security ? { security } : {}),
        });
        continue;
      }
      if (handler.event === PING_EVENT || handler.event === AUTH_EVENT) {
        continue; // answered by the protocol itself: the handler never runs
      }
      const key = keyFor(handler.event);
      add(`${key}.reply`, replyMessage(handler, schemas, envelope));
      add(key, requestMessage(handler, schemas, envelope), [`${key}.reply`]);
    }
    for (const push of gateway.pushes) {
      const key = `${keyFor(push.event)}.push`;
      messages[key] = pushMessage(push.event, schemas.of(push.type), push.description);
      operationsHere.set(key, {
        action: 'send',
        channel: { $ref: `#/channels/${channel}` },
        messages: [messageRef(channel, key)],
        ...(security ? { security } : {}),
      });
    }
    add(
      'pong',
      reservedReply(
        PONG_EVENT,
        { type: 'object', required: ['t'], properties: { t: { type: 'integer', description: "the server's epoch time in ms" } } },
        envelope,
      ),
    );
    add('ping', reservedRequest(PING_EVENT, 'Application-level ping, answered with `pong`.', undefined, envelope), ['pong']);
    if (authentication === 'jwt' || authentication === 'custom-refresh') {
      const exp = {
        type: 'object',
        required: ['exp'],
        properties: {
          exp: {
            type: ['integer', 'null'],
            description: `the new ${authentication === 'jwt' ? "token's" : "credentials'"} expiry, in epoch seconds`,
          },
        },
      };
      add('auth.reply', reservedReply(AUTH_EVENT, exp, envelope));
      const credentials: JsonSchema =
        authentication === 'jwt'
          ? { type: 'object', required: ['token'], properties: { token: { type: 'string' } } }
          : { description: "the new credentials, as the application's authenticator takes them" };
      const summary =
        authentication === 'jwt'
          ? 'In-band token refresh: the connection goes on with the new token.'
          : 'In-band refresh: the connection goes on with the new credentials.';
      add('auth', reservedRequest(AUTH_EVENT, summary, credentials, envelope), ['auth.reply']);
    }
    channels[channel] = {
      address: gateway.path,
      title: gateway.name,
      description: channelDescription(gateway),
      messages,
      bindings: { ws: { method: 'GET', bindingVersion: '0.1.0' } },
    };
    for (const [key, operation] of operationsHere) {
      operations[uniqueKey(`${channel}.${key}`, operationIds)] = operation;
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: info.title ?? 'Realtime API',
      version: info.version ?? '1.0.0',
      description:
        info.description ??
        `WebSocket gateways speaking protocol v1.2 (subprotocol \`${PROTOCOL_V1}\`, JSON text frames, or \`${PROTOCOL_V1_MSGPACK}\`, the same frames in MessagePack).`,
    },
    ...(info.servers ? { servers: info.servers as unknown as JsonValue } : {}),
    defaultContentType: 'application/json',
    channels,
    operations,
    components: {
      schemas: schemas.components(),
      messages: {
        error: {
          name: ERROR_EVENT,
          title: 'Error frame',
          summary: 'The answer to a request that failed, with its id when it had a valid one; without id, to a frame that had none.',
          payload: envelope.errorFrame,
        },
      },
      ...(authentication === 'jwt' ? { securitySchemes: JWT_SCHEMES } : {}),
    },
    'x-subprotocols': [PROTOCOL_V1, PROTOCOL_V1_MSGPACK],
    'x-close-codes': Object.fromEntries(Object.values(CloseCode).map((code) => [String(code), WHAT_CLOSE_CODES_MEAN[code] ?? ''])),
  };
}

interface Envelope {
  readonly messageId: JsonSchema;
  readonly errorFrame: JsonSchema;
}

/** The envelope's shared schemas: a request id, the error frame and its codes. */
function envelopeSchemas(schemas: ContractSchemas): Envelope {
  const messageId = schemas.define('MessageId', {
    description: 'A request id: exactly one reply (or error frame) carries it back.',
    oneOf: [{ type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH }, { type: 'number' }],
  });
  const code = schemas.define('ErrorCode', {
    description: "A protocol error code, or one of the application's own (`[A-Z][A-Z0-9_]{1,63}`, such as `ROOM_FULL`).",
    anyOf: [{ enum: Object.values(ErrorCode) }, { type: 'string', pattern: '^[A-Z][A-Z0-9_]{1,63}$' }],
  });
  const errorFrame = schemas.define('ErrorFrame', {
    type: 'object',
    required: ['event', 'data'],
    properties: {
      event: { const: ERROR_EVENT },
      id: messageId,
      data: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code,
          message: { type: 'string' },
          details: { type: 'array', description: 'For VALIDATION_FAILED: `{property, constraints?, children?}` per failing property.' },
        },
      },
    },
  });
  return { messageId, errorFrame };
}

function requestMessage(handler: HandlerContract, schemas: ContractSchemas, envelope: Envelope): JsonValue {
  return {
    name: handler.event!,
    title: `${handler.event} request`,
    summary: `Handled by ${handler.method}(). With an id, exactly one reply or error frame carries it back.`,
    payload: {
      type: 'object',
      required: handler.takesData ? ['event', 'data'] : ['event'],
      properties: { event: { const: handler.event! }, id: envelope.messageId, data: schemas.of(handler.request) },
    },
  };
}

function replyMessage(handler: HandlerContract, schemas: ContractSchemas, envelope: Envelope): JsonValue {
  return {
    name: handler.event!,
    title: `${handler.event} reply`,
    ...(handler.replyDescription ? { summary: handler.replyDescription } : {}),
    payload: {
      type: 'object',
      required: ['event', 'data'],
      properties: { event: { const: handler.event! }, id: envelope.messageId, data: schemas.of(handler.reply) },
    },
  };
}

function pushMessage(event: string, data: JsonSchema, description: string | undefined): JsonValue {
  return {
    name: event,
    title: `${event} push`,
    ...(description ? { summary: description } : {}),
    payload: {
      type: 'object',
      required: ['event', 'data'],
      properties: {
        offset: { type: 'integer', minimum: 1, description: "a room message's offset in its room, while room history is on" },
        event: { const: event },
        room: { type: 'string', description: 'the room, for a room message' },
        data,
      },
    },
  };
}

function reservedRequest(event: string, summary: string, data: JsonSchema | undefined, envelope: Envelope): JsonValue {
  return {
    name: event,
    summary,
    payload: {
      type: 'object',
      required: data === undefined ? ['event'] : ['event', 'data'],
      properties: { event: { const: event }, id: envelope.messageId, data: data ?? {} },
    },
  };
}

function reservedReply(event: string, data: JsonSchema, envelope: Envelope): JsonValue {
  return {
    name: event,
    payload: { type: 'object', required: ['event', 'data'], properties: { event: { const: event }, id: envelope.messageId, data } },
  };
}

function rawMessage(summary: string): JsonValue {
  return { name: 'raw', summary, contentType: 'text/plain', payload: { type: 'string' } };
}

function channelDescription(gateway: GatewayContract): string {
  const who = gateway.public
    ? 'Public: connections need no token (a token that is given must be valid).'
    : 'Connections authenticate at the handshake.';
  const roles = gateway.roles.length > 0 ? ` The token's roles must include ${gateway.roles.join(', ')}.` : '';
  return `The ${gateway.name} gateway. ${who}${roles}`;
}

function messageRef(channel: string, message: string): JsonValue {
  return { $ref: `#/channels/${channel}/messages/${message}` };
}

function schemeRef(name: string): JsonValue {
  return { $ref: `#/components/securitySchemes/${name}` };
}

/** An event as a message key (letters, digits, `.`, `-`, `_`): other characters become `_`. */
function messageKey(event: string): string {
  return event.slice(0, MAX_EVENT_LENGTH).replace(/[^A-Za-z0-9._-]/g, '_');
}

function uniqueKey(wanted: string, taken: Set<string>): string {
  const base = messageKey(wanted) || 'root';
  let key = base;
  for (let n = 2; taken.has(key); n++) {
    key = `${base}-${n}`;
  }
  taken.add(key);
  return key;
}
