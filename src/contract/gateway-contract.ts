import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { GATEWAY_OPTIONS, MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { WsParamtype } from '@nestjs/websockets/enums/ws-paramtype.enum.js';
import type { RealtimeGatewayOptions } from '../realtime-options.interface.js';
import { RAW_TEXT_MESSAGE, REALTIME_GATEWAY_OPTIONS } from '../realtime.constants.js';
import { messageHandlers } from '../validation/message-validation.decorator.js';
import { type ContractType, type EmittedPush, emittedBy, type JsonSchema, repliesOf } from './contract.decorators.js';

/** One `@SubscribeMessage` handler (or the raw-text one) as the contract sees it. */
export interface HandlerContract {
  /** Its event; the raw-text handler's is undefined. */
  readonly event: string | undefined;
  /** The method's name. */
  readonly method: string;
  /** What its `@MessageBody()` is; undefined: anything. */
  readonly request: ContractType | undefined;
  /** It reads its message's `data` (it has a body parameter): the request must carry some. */
  readonly takesData: boolean;
  /** What its reply's `data` is (`@Replies`); undefined: anything. */
  readonly reply: ContractType | undefined;
  readonly replyDescription: string | undefined;
}

/** A realtime gateway as the contract sees it. */
export interface GatewayContract {
  readonly path: string;
  /** The class's name. */
  readonly name: string;
  /** Connections need no token. */
  readonly public: boolean;
  readonly roles: readonly string[];
  readonly handlers: readonly HandlerContract[];
  readonly pushes: readonly EmittedPush[];
}

/** The parameter metadata Nest keeps per handler: `"<paramtype>:<index>"` → its index and data. */
type ParamMetadata = Record<string, { index: number; data?: unknown }>;

const PRIMITIVES = new Map<unknown, JsonSchema>([
  [String, { type: 'string' }],
  [Number, { type: 'number' }],
  [Boolean, { type: 'boolean' }],
  [Array, { type: 'array' }],
  // What JSON (and MessagePack, which carries what JSON does) makes of a date.
  [Date, { type: 'string', format: 'date-time' }],
]);

/** The contract of a `@RealtimeGateway` class; undefined for any other class. */
export function describeGateway(type: Function): GatewayContract | undefined {
  const options = Reflect.getMetadata(GATEWAY_OPTIONS, type) as
    { path?: string; [REALTIME_GATEWAY_OPTIONS]?: RealtimeGatewayOptions } | undefined;
  const realtime = options?.[REALTIME_GATEWAY_OPTIONS];
  if (!realtime || typeof options.path !== 'string') {
    return undefined;
  }
  const prototype = type.prototype as object;
  const handlers: HandlerContract[] = [];
  for (const [method, handler] of messageHandlers(prototype)) {
    const event = Reflect.getMetadata(MESSAGE_METADATA, handler) as string;
    const reply = repliesOf(handler);
    const body = bodyOf(type, prototype, method);
    handlers.push({
      event: event === RAW_TEXT_MESSAGE ? undefined : event,
      method,
      request: body.type,
      takesData: body.present,
      reply: reply?.type,
      replyDescription: reply?.description,
    });
  }
  return {
    path: options.path,
    name: type.name,
    public: realtime.public === true,
    roles: realtime.roles ?? [],
    handlers,
    pushes: emittedBy(type),
  };
}

/**
 * What the handler's `@MessageBody()` parameters declare: the whole body's type (a class, a
 * primitive's schema), or an object of the properties taken one by one
 * (`@MessageBody('title') title: string`); undefined when nothing says. `present`: the
 * handler has a body parameter at all.
 */
function bodyOf(type: Function, prototype: object, method: string): { type: ContractType | undefined; present: boolean } {
  const params = Reflect.getMetadata(ROUTE_ARGS_METADATA, type, method) as ParamMetadata | undefined;
  const declared = (Reflect.getMetadata('design:paramtypes', prototype, method) as unknown[] | undefined) ?? [];
  // Without parameter decorators Nest passes (socket, payload).
  const payloads = params
    ? Object.entries(params)
        .filter(([key]) => key.startsWith(`${WsParamtype.PAYLOAD}:`))
        .map(([, param]) => param)
    : declared.length > 1
      ? [{ index: 1 }]
      : [];
  if (payloads.length === 0) {
    return { type: undefined, present: false };
  }
  const whole = payloads.find((param) => param.data === undefined);
  if (whole) {
    return { type: schemaOf(declared[whole.index]), present: true };
  }
  const properties: Record<string, JsonSchema> = {};
  for (const param of payloads) {
    const schema = schemaOf(declared[param.index]);
    properties[String(param.data)] = schema === undefined || typeof schema === 'function' ? {} : schema;
  }
  return { type: { type: 'object', required: Object.keys(properties), properties }, present: true };
}

/** A declared parameter type as the contract says it: a class, a primitive's schema, or undefined (anything). */
function schemaOf(declared: unknown): ContractType | undefined {
  if (typeof declared !== 'function' || declared === Object) {
    return undefined;
  }
  return PRIMITIVES.get(declared) ?? (declared as ContractType);
}
