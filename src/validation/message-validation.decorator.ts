import { SetMetadata, UsePipes, ValidationPipe } from '@nestjs/common';
import { PIPES_METADATA } from '@nestjs/common/constants.js';
import { MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { RealtimeValidationPipe } from './realtime-validation.pipe.js';
import type { RealtimeValidationSetting } from './validation-options.interface.js';

const MESSAGE_VALIDATION_METADATA = 'realtime:message-validation';

/**
 * Validation settings for one handler, over the gateway's and the module's; `false`
 * turns validation off for it.
 *
 * @example
 * ```ts
 * @SubscribeMessage('rename')
 * @MessageValidation({ groups: ['rename'] })
 * rename(@MessageBody() body: ProfileDto) { ... }
 * ```
 */
export function MessageValidation(setting: RealtimeValidationSetting): MethodDecorator {
  return SetMetadata(MESSAGE_VALIDATION_METADATA, setting);
}

/**
 * @internal Gives every message handler of `gateway` the validation pipe, with the
 * gateway's and the handler's settings baked into a subclass when there are any.
 * Handlers that already use Nest's `ValidationPipe` keep it alone.
 */
export function applyValidationPipes(gateway: Function, gatewaySetting: RealtimeValidationSetting | undefined): void {
  if (usesNestValidation(gateway)) {
    return;
  }
  const prototype = gateway.prototype as object;
  for (const [name, found, foundDescriptor, owner] of messageHandlers(prototype)) {
    // An inherited handler's pipes would be its base's, shared with every gateway that extends it.
    const [handler, descriptor] = owner === prototype ? [found, foundDescriptor] : ownHandler(prototype, name, found, foundDescriptor);
    if (usesNestValidation(handler) || usesRealtimeValidation(handler)) {
      continue;
    }
    const handlerSetting = Reflect.getMetadata(MESSAGE_VALIDATION_METADATA, handler) as RealtimeValidationSetting | undefined;
    const layers = [gatewaySetting, handlerSetting].filter((layer) => layer !== undefined);
    const pipe = layers.length === 0 ? RealtimeValidationPipe : configuredPipe(`${gateway.name}.${name}`, layers);
    UsePipes(pipe)(prototype, name, descriptor);
  }
}

/**
 * Gives `prototype` a handler of its own that calls an inherited one, with the inherited
 * one's metadata (its event, guards, interceptors, filters, the application's own pipes
 * and settings, its own validation pipes included), less the validation pipe another
 * gateway's decorator gave it: each gateway validates with its own settings.
 */
function ownHandler(prototype: object, name: string, inherited: Function, descriptor: PropertyDescriptor): [Function, PropertyDescriptor] {
  const own = {
    [name](this: unknown, ...args: unknown[]): unknown {
      return inherited.apply(this, args) as unknown;
    },
  }[name]!;
  for (const key of Reflect.getOwnMetadataKeys(inherited) as unknown[]) {
    const value: unknown = Reflect.getOwnMetadata(key, inherited);
    Reflect.defineMetadata(key, key === PIPES_METADATA ? (value as unknown[]).filter((pipe) => !madeByGateway(pipe)) : value, own);
  }
  const ownDescriptor = { ...descriptor, value: own };
  Object.defineProperty(prototype, name, ownDescriptor);
  return [own, ownDescriptor];
}

const configuredPipes = new WeakSet<Function>();

/** @internal Whether `pipe` is a validation pipe class `@RealtimeGateway` made for a handler. */
export function isConfiguredPipe(pipe: Function): boolean {
  return configuredPipes.has(pipe);
}

function configuredPipe(name: string, layers: readonly RealtimeValidationSetting[]): typeof RealtimeValidationPipe {
  // A class, not an instance, so that Nest's injector gives it the module options.
  const pipe = class extends RealtimeValidationPipe {
    static override readonly layers = layers;
  };
  Object.defineProperty(pipe, 'name', { value: `RealtimeValidationPipe(${name})` });
  configuredPipes.add(pipe);
  return pipe;
}

/** @internal The message handlers of a gateway prototype, its own and inherited: name, method, descriptor, and the prototype that has it. */
export function* messageHandlers(prototype: object): Generator<[string, Function, PropertyDescriptor, object]> {
  const seen = new Set<string>();
  for (let proto = prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor' || seen.has(name)) {
        continue;
      }
      seen.add(name);
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      const handler: unknown = descriptor?.value;
      if (typeof handler === 'function' && Reflect.hasMetadata(MESSAGE_METADATA, handler)) {
        yield [name, handler, descriptor!, proto];
      }
    }
  }
}

function pipesOf(target: Function): unknown[] {
  return (Reflect.getMetadata(PIPES_METADATA, target) as unknown[] | undefined) ?? [];
}

function usesNestValidation(target: Function): boolean {
  return pipesOf(target).some(
    (pipe) =>
      pipe instanceof ValidationPipe ||
      (typeof pipe === 'function' && (pipe === ValidationPipe || pipe.prototype instanceof ValidationPipe)),
  );
}

function usesRealtimeValidation(target: Function): boolean {
  return pipesOf(target).some(isRealtimePipe);
}

/** A validation pipe a gateway decorator gives its handlers; one of the application's own (a subclass it made) is not. */
function madeByGateway(pipe: unknown): boolean {
  return pipe === RealtimeValidationPipe || (typeof pipe === 'function' && isConfiguredPipe(pipe));
}

function isRealtimePipe(pipe: unknown): boolean {
  return typeof pipe === 'function' && (pipe === RealtimeValidationPipe || pipe.prototype instanceof RealtimeValidationPipe);
}
