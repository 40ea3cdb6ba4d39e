import type { Type } from '@nestjs/common';

/** A JSON value, as the contract document holds it. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** A JSON Schema (draft 2020-12 / AsyncAPI Schema), as a plain object. */
export type JsonSchema = { readonly [key: string]: JsonValue };

/**
 * What a message carries, in the contract: a class, whose class-validator rules become its
 * schema (as for a DTO), or a JSON Schema written out.
 */
export type ContractType = Type<unknown> | JsonSchema;

/** A push a gateway declares with {@link Emits}. */
export interface EmittedPush {
  /** The push's event. */
  readonly event: string;
  /** Its `data`; undefined: anything. */
  readonly type: ContractType | undefined;
  /** What it is for, in the contract. */
  readonly description: string | undefined;
}

/** Options of {@link Emits} and {@link Replies}. */
export interface ContractOptions {
  /** What the message is for, in the contract. */
  description?: string;
}

const EMITS = Symbol('realtime:emits');
const REPLIES = Symbol('realtime:replies');

/**
 * Declares a push the gateway sends (with `RealtimeHub.emitToRoom`, `emitToUser`,
 * `emitToAll`): its event and what its `data` holds, for the gateway's contract (the
 * AsyncAPI document of `RealtimeContract`, and the types of a typed client). Repeat it for
 * each push event.
 *
 * @example
 * ```ts
 * @RealtimeGateway('/chat')
 * @Emits('message', ChatMessage, { description: 'a message sent to a room the client is in' })
 * export class ChatGateway { … }
 * ```
 */
export function Emits(event: string, type?: ContractType, options: ContractOptions = {}): ClassDecorator {
  if (typeof event !== 'string' || event.length === 0) {
    throw new TypeError(`@Emits() needs an event name, got ${JSON.stringify(event)}`);
  }
  if (type !== undefined) {
    checkType('@Emits()', type);
  }
  return (target) => {
    // Decorators apply from the bottom up: each goes first, so the list keeps the source's order.
    const own = emittedBy(target).filter((push) => push.event !== event);
    Reflect.defineMetadata(EMITS, [{ event, type, description: options.description }, ...own], target);
  };
}

/**
 * Declares what a handler's reply carries in its `data`, for the gateway's contract:
 * TypeScript erases a handler's return type, so without it the contract says "anything".
 *
 * @example
 * ```ts
 * @SubscribeMessage('echo')
 * @Replies(EchoReply)
 * echo(@MessageBody() body: EchoDto): EchoReply { … }
 * ```
 */
export function Replies(type: ContractType, options: ContractOptions = {}): MethodDecorator {
  checkType('@Replies()', type);
  return (_target, _name, descriptor) => {
    Reflect.defineMetadata(REPLIES, { type, description: options.description }, descriptor.value as object);
  };
}

/** @internal The pushes declared on a gateway class (and the classes it extends). */
export function emittedBy(target: Function): readonly EmittedPush[] {
  return (Reflect.getMetadata(EMITS, target) as EmittedPush[] | undefined) ?? [];
}

/** @internal The reply declared on a handler. */
export function repliesOf(handler: Function): { type: ContractType; description: string | undefined } | undefined {
  return Reflect.getMetadata(REPLIES, handler) as { type: ContractType; description: string | undefined } | undefined;
}

/** A contract type is a class or a JSON Schema object; anything else (an import cycle's `undefined`, say) is a mistake to name. */
function checkType(where: string, type: unknown): void {
  if (typeof type !== 'function' && (typeof type !== 'object' || type === null || Array.isArray(type))) {
    throw new TypeError(
      `${where} needs a class or a JSON Schema object, got ${String(type)} (an import cycle can make a class undefined here)`,
    );
  }
}
