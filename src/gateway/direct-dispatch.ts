import type { ArgumentMetadata, PipeTransform } from '@nestjs/common';
import {
  CUSTOM_ROUTE_ARGS_METADATA,
  EXCEPTION_FILTERS_METADATA,
  GUARDS_METADATA,
  INTERCEPTORS_METADATA,
  PIPES_METADATA,
  ROUTE_ARGS_METADATA,
} from '@nestjs/common/constants.js';
import type { ApplicationConfig } from '@nestjs/core';
import { MESSAGE_METADATA } from '@nestjs/websockets/constants.js';
import { RAW_TEXT_MESSAGE } from '../realtime.constants.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { isConfiguredPipe, messageHandlers } from '../validation/message-validation.decorator.js';
import { RealtimeValidationPipe } from '../validation/realtime-validation.pipe.js';
import type { DirectHandler } from './handler-types.js';
import { RealtimeExceptionFilter } from './realtime-exception.filter.js';

/**
 * The plugin's own dispatch path. Nest runs every WebSocket message through an async
 * pipeline (proxy, guards, interceptors, each parameter's pipes, filters): about ten
 * promises per message even when a handler has nothing but `@RealtimeGateway`'s own
 * validation pipe and exception filter. For such a handler the adapter does the same
 * work itself, synchronously when the handler and its DTO are: it extracts the
 * `@MessageBody()` / `@ConnectedSocket()` arguments as Nest does, runs the validation
 * pipe, calls the method, and answers errors as the filter would.
 *
 * A handler takes Nest's path as before when anything else could take part: a guard,
 * an interceptor, another pipe or filter (on the handler, its class or global, static or
 * request-scoped), a custom parameter decorator, a pipe on a parameter, or a gateway
 * that is not a static singleton.
 */

const SOCKET = 0;
const PAYLOAD = 3;
const ACK = 13;

/** Nest's arguments of a handler without parameter decorators: (socket, payload, ack). */
const DEFAULT_PARAMS: Record<string, ParamMetadata> = {
  [`${ACK}:2`]: { index: 2, data: undefined, pipes: [] },
  [`${PAYLOAD}:1`]: { index: 1, data: undefined, pipes: [] },
  [`${SOCKET}:0`]: { index: 0, data: undefined, pipes: [] },
};

interface ParamMetadata {
  index: number;
  data?: string | number;
  pipes?: unknown[];
}

interface Param {
  readonly index: number;
  readonly type: number;
  readonly data: string | number | undefined;
  /** For `@MessageBody()`: what the validation pipe is given. */
  readonly metadata: ArgumentMetadata | undefined;
}

const tables = new WeakMap<object, ReadonlyMap<string, DirectHandler>>();

/**
 * The direct handlers of a gateway instance, by event: only those of its handlers that
 * need nothing but what {@link RealtimeGateway} gives them. Worked out once per instance.
 */
export function directHandlersOf(
  instance: object,
  config: ApplicationConfig,
  options: RealtimeModuleOptions | undefined,
): ReadonlyMap<string, DirectHandler> {
  let table = tables.get(instance);
  if (!table) {
    table = hasGlobalEnhancers(config) ? new Map() : buildTable(instance, options);
    tables.set(instance, table);
  }
  return table;
}

/** Global guards, interceptors or pipes (NestJS 12 applies them to gateways); global filters never run for gateways. */
function hasGlobalEnhancers(config: ApplicationConfig): boolean {
  return [
    config.getGlobalGuards(),
    config.getGlobalInterceptors(),
    config.getGlobalPipes(),
    config.getGlobalRequestGuards(),
    config.getGlobalRequestInterceptors(),
    config.getGlobalRequestPipes(),
  ].some((enhancers) => enhancers.length > 0);
}

function buildTable(instance: object, options: RealtimeModuleOptions | undefined): Map<string, DirectHandler> {
  const table = new Map<string, DirectHandler>();
  const type = instance.constructor;
  if (!onlyRealtimeFilter(type) || has(GUARDS_METADATA, type) || has(INTERCEPTORS_METADATA, type) || has(PIPES_METADATA, type)) {
    return table;
  }
  const seen = new Set<string>();
  for (const [name, method] of messageHandlers(Object.getPrototypeOf(instance) as object)) {
    const event = Reflect.getMetadata(MESSAGE_METADATA, method) as string;
    // Nest's map keeps the first handler of an event: a later one is never called directly
    // either. Raw text always takes Nest's path: a JSON frame naming its event must not reach it.
    if (seen.has(event) || event === RAW_TEXT_MESSAGE) {
      continue;
    }
    seen.add(event);
    const direct = directHandler(instance, name, method, options);
    if (direct) {
      table.set(event, direct);
    }
  }
  return table;
}

function directHandler(
  instance: object,
  name: string,
  method: Function,
  options: RealtimeModuleOptions | undefined,
): DirectHandler | undefined {
  if (has(GUARDS_METADATA, method) || has(INTERCEPTORS_METADATA, method) || has(EXCEPTION_FILTERS_METADATA, method)) {
    return undefined;
  }
  const pipe = validationPipe(method, options);
  const params = paramsOf(instance, name);
  if (!pipe || !params) {
    return undefined;
  }
  const length = params.reduce((max, param) => Math.max(max, param.index + 1), 0);
  return (client, payload) => {
    const args: unknown[] = new Array<unknown>(length).fill(undefined);
    let pending: Promise<unknown>[] | undefined;
    try {
      for (const param of params) {
        let value: unknown =
          param.type === SOCKET
            ? client
            : param.type === PAYLOAD
              ? param.data
                ? (payload as Record<string | number, unknown> | null | undefined)?.[param.data]
                : payload
              : undefined; // ACK: the protocol has no ack callbacks; Nest finds none either.
        if (param.metadata) {
          value = pipe.transform(value, param.metadata);
          if (isThenable(value)) {
            const index = param.index;
            (pending ??= []).push(Promise.resolve(value).then((resolved) => (args[index] = resolved)));
            continue;
          }
        }
        args[param.index] = value;
      }
    } catch (error) {
      // A later parameter failed at once: an earlier one's validation still running must not
      // become an unhandled rejection.
      pending?.forEach((work) => work.catch(ignore));
      throw error;
    }
    if (pending) {
      return Promise.all(pending).then(() => method.apply(instance, args) as unknown);
    }
    return method.apply(instance, args) as unknown;
  };
}

/** The parameters Nest would extract, or undefined when one of them needs Nest itself. */
function paramsOf(instance: object, name: string): Param[] | undefined {
  const metadata =
    (Reflect.getMetadata(ROUTE_ARGS_METADATA, instance.constructor, name) as Record<string, ParamMetadata> | undefined) ?? DEFAULT_PARAMS;
  const paramtypes = (Reflect.getMetadata('design:paramtypes', instance, name) as unknown[] | undefined) ?? [];
  const params: Param[] = [];
  for (const [key, { index, data, pipes }] of Object.entries(metadata)) {
    const type = Number(key.split(':')[0]);
    if (key.includes(CUSTOM_ROUTE_ARGS_METADATA) || (pipes?.length ?? 0) > 0 || ![SOCKET, PAYLOAD, ACK].includes(type)) {
      return undefined;
    }
    const metatype = paramtypes[index] as ArgumentMetadata['metatype'];
    params.push({
      index,
      type,
      data: data as string | number | undefined,
      // Nest gives every parameter to the pipes; the validation pipe acts on the body only.
      metadata: type === PAYLOAD ? { type: 'body', metatype, data: data as string | undefined } : undefined,
    });
  }
  return params;
}

/**
 * The handler's one pipe, when it is the validation pipe `@RealtimeGateway` gave it (not a
 * subclass of the application's own, which may want injected dependencies); else undefined.
 */
function validationPipe(method: Function, options: RealtimeModuleOptions | undefined): PipeTransform | undefined {
  const pipes = (Reflect.getMetadata(PIPES_METADATA, method) as unknown[] | undefined) ?? [];
  const [pipe] = pipes;
  if (pipes.length !== 1 || typeof pipe !== 'function' || !(pipe === RealtimeValidationPipe || isConfiguredPipe(pipe))) {
    return undefined;
  }
  // What Nest's injector would build: the pipe class with the module's options.
  return new (pipe as typeof RealtimeValidationPipe)(options);
}

function onlyRealtimeFilter(type: Function): boolean {
  const filters = (Reflect.getMetadata(EXCEPTION_FILTERS_METADATA, type) as unknown[] | undefined) ?? [];
  return filters.length === 1 && filters[0] instanceof RealtimeExceptionFilter;
}

function has(key: string, target: Function): boolean {
  return ((Reflect.getMetadata(key, target) as unknown[] | undefined)?.length ?? 0) > 0;
}

function ignore(): void {
  // Its failure is answered through the first error instead.
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
