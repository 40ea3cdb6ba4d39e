import {
  type ArgumentMetadata,
  type CallHandler,
  type CanActivate,
  createParamDecorator,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  type PipeTransform,
  Scope,
  UseGuards,
  UseInterceptors,
  UsePipes,
} from '@nestjs/common';
import { APP_GUARD, BaseExceptionFilter } from '@nestjs/core';
import { ConnectedSocket, MessageBody, SubscribeMessage } from '@nestjs/websockets';
import { IsString, MaxLength, Validate, ValidatorConstraint, type ValidatorConstraintInterface } from 'class-validator';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { map, type Observable, of } from 'rxjs';
import type WebSocket from 'ws';
import { RealtimeGateway, RealtimeModule, RealtimeValidationPipe } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { nestMajor } from './support/nest-version.js';
import { until } from './support/until.js';
import { TestClient } from './support/ws-client.js';

/** Whether the caller runs inside the adapter's own frame handling: no await between them. */
function calledFromAdapter(): boolean {
  return /FrameDispatcher\.onFrame/.test(new Error().stack ?? '');
}

class NoteDto {
  @IsString()
  @MaxLength(10)
  text!: string;
}

/** Called as each validation of {@link Eventually} settles: a test awaits it instead of sleeping. */
const eventuallySettled: (() => void)[] = [];

@ValidatorConstraint({ name: 'eventually', async: true })
class Eventually implements ValidatorConstraintInterface {
  validate(value: unknown): Promise<boolean> {
    // Settles on a later turn of the event loop: after every synchronous rule, and after
    // the reply to a frame whose other parameter failed at once.
    const result = new Promise<boolean>((resolve) => setImmediate(() => resolve(value === 'ok')));
    void result.then(() => eventuallySettled.splice(0).forEach((settled) => settled()));
    return result;
  }

  defaultMessage(): string {
    return '$property must turn out to be ok';
  }
}

/** A DTO with an asynchronous rule: its validation is a promise. */
class LaterDto {
  @Validate(Eventually)
  word!: string;
}

/** The application's own subclass of the validation pipe: Nest builds it, with its injections. */
@Injectable()
class OwnValidationPipe extends RealtimeValidationPipe {}

class WrapInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(map((value) => ({ wrapped: value })));
  }
}

const sockets = new Set<WebSocket>();

@RealtimeGateway('/plain', { public: true })
class PlainGateway {
  @SubscribeMessage('how')
  how(): { direct: boolean } {
    return { direct: calledFromAdapter() };
  }

  @SubscribeMessage('note')
  note(
    @MessageBody() body: NoteDto,
    @ConnectedSocket() socket: WebSocket,
  ): { text: string; dto: boolean; socket: boolean; direct: boolean } {
    return { text: body.text, dto: body instanceof NoteDto, socket: sockets.has(socket), direct: calledFromAdapter() };
  }

  // Nest records parameter decorators last to first: `a`'s async validation starts before `b`'s.
  @SubscribeMessage('pair')
  pair(@MessageBody('b') b: NoteDto, @MessageBody('a') a: LaterDto): string {
    return `${a.word} ${b.text}`;
  }

  @SubscribeMessage('stream')
  stream(): Observable<{ direct: boolean }> {
    return of({ direct: false }, { direct: calledFromAdapter() });
  }

  @SubscribeMessage('intercepted')
  @UseInterceptors(WrapInterceptor)
  intercepted(): { direct: boolean } {
    return { direct: calledFromAdapter() };
  }

  // Two handlers of one event: Nest keeps the first, which takes Nest's path; the second is never called.
  @SubscribeMessage('twice')
  @UseInterceptors(WrapInterceptor)
  twiceFirst(): { which: string } {
    return { which: 'first' };
  }

  @SubscribeMessage('twice')
  twiceSecond(): { which: string } {
    return { which: 'second' };
  }

  @SubscribeMessage('own-pipe')
  @UsePipes(OwnValidationPipe)
  ownPipe(@MessageBody() body: NoteDto): { text: string; direct: boolean } {
    return { text: body.text, direct: calledFromAdapter() };
  }

  @SubscribeMessage('field')
  field(@MessageBody('text') text: unknown): { text: unknown; direct: boolean } {
    return { text, direct: calledFromAdapter() };
  }

  @SubscribeMessage('undecorated')
  undecorated(socket: unknown, payload: unknown, third: unknown): { payload: unknown; socket: boolean; third: string; direct: boolean } {
    return { payload, socket: sockets.has(socket as WebSocket), third: typeof third, direct: calledFromAdapter() };
  }

  @SubscribeMessage('later')
  async later(@MessageBody() body: NoteDto): Promise<{ text: string; direct: boolean }> {
    const direct = calledFromAdapter();
    // Answers on a later turn of the event loop, not in the frame's own.
    await new Promise((resolve) => setImmediate(resolve));
    return { text: body.text.toUpperCase(), direct };
  }

  @SubscribeMessage('throws')
  throws(): never {
    throw new Error('secret detail');
  }

  handleConnection(socket: WebSocket): void {
    sockets.add(socket);
  }
}

class DenyGuard implements CanActivate {
  canActivate(): boolean {
    return false;
  }
}

class ShoutPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    return metadata.type === 'body' && typeof value === 'object' && value !== null
      ? { ...value, text: String((value as { text: unknown }).text).toUpperCase() }
      : value;
  }
}

const Shouted = createParamDecorator((_data: unknown, context: ExecutionContext) =>
  String(context.switchToWs().getData<{ text: string }>().text).toUpperCase(),
);

@RealtimeGateway('/enhanced', { public: true })
@UseGuards(DenyGuard)
class GuardedGateway {
  @SubscribeMessage('how')
  how(): { direct: boolean } {
    return { direct: calledFromAdapter() };
  }
}

@RealtimeGateway('/custom', { public: true })
class CustomParamGateway {
  @SubscribeMessage('shout')
  shout(@Shouted() text: string): { text: string; direct: boolean } {
    return { text, direct: calledFromAdapter() };
  }
}

@Injectable({ scope: Scope.REQUEST })
class PerMessage {
  static made = 0;
  readonly n = ++PerMessage.made;
}

@RealtimeGateway('/scoped', { public: true })
class ScopedGateway {
  constructor(private readonly perMessage: PerMessage) {}

  @SubscribeMessage('n')
  n(): { n: number; direct: boolean } {
    return { n: this.perMessage.n, direct: calledFromAdapter() };
  }
}

/** The gateways of the shared path whose `handleDisconnect` ran, in order. */
const sharedDisconnects: string[] = [];

@RealtimeGateway('/shared', { public: true })
class SharedA {
  handleDisconnect(): void {
    sharedDisconnects.push('A');
  }

  @SubscribeMessage('a')
  a(): string {
    return 'A';
  }

  @SubscribeMessage('how')
  how(): { from: string; direct: boolean } {
    return { from: 'A', direct: calledFromAdapter() };
  }
}

@RealtimeGateway('/shared', { public: true })
class SharedB {
  handleDisconnect(): void {
    sharedDisconnects.push('B');
  }

  @SubscribeMessage('b')
  b(): string {
    return 'B';
  }

  @SubscribeMessage('how')
  how(): { from: string; direct: boolean } {
    return { from: 'B', direct: calledFromAdapter() };
  }
}

describe("the adapter's direct dispatch path", () => {
  let running: RunningApp | undefined;
  const clients: TestClient[] = [];

  async function connect(path: string): Promise<TestClient> {
    const client = await TestClient.connect(running!.wsUrl(path));
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await running?.close();
    running = undefined;
  });

  it('calls a handler that has only what @RealtimeGateway gives it without Nest’s async pipeline, with Nest’s arguments', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway] });
    const client = await connect('/plain');
    assert.deepEqual((await client.request({ event: 'how', id: 1 })).data, { direct: true });
    assert.deepEqual((await client.request({ event: 'note', id: 2, data: { text: 'hi' } })).data, {
      text: 'hi',
      dto: true,
      socket: true,
      direct: true,
    });
    assert.deepEqual((await client.request({ event: 'field', id: 3, data: { text: 'x' } })).data, { text: 'x', direct: true });
    assert.deepEqual((await client.request({ event: 'field', id: 4, data: 'not an object' })).data, { direct: true });
    assert.deepEqual((await client.request({ event: 'undecorated', id: 5, data: [1] })).data, {
      payload: [1],
      socket: true,
      third: 'undefined',
      direct: true,
    });
    assert.deepEqual(await client.request({ event: 'later', id: 6, data: { text: 'abc' } }), {
      event: 'later',
      id: 6,
      data: { text: 'ABC', direct: true },
    });
    assert.deepEqual((await client.request({ event: 'stream', id: 7 })).data, { direct: true });
    assert.equal((await client.request({ event: 'pair', id: 8, data: { a: { word: 'ok' }, b: { text: 'fine' } } })).data, 'ok fine');
  });

  it('answers a handler whose asynchronous and synchronous validations both fail once, without an unhandled rejection', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway] });
    const client = await connect('/plain');
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown): void => void rejections.push(reason);
    process.on('unhandledRejection', onRejection);
    try {
      const settled = new Promise<void>((resolve) => eventuallySettled.push(resolve));
      const reply = await client.request({ event: 'pair', id: 'p', data: { a: { word: 'no' }, b: { text: 42 } } });
      assert.equal(reply.id, 'p');
      assert.equal((reply.data as { code: string }).code, 'VALIDATION_FAILED');
      // Once the async rule has failed too, a turn later: an unhandled rejection is reported by then.
      await settled;
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(rejections, []);
      assert.equal((await client.request({ event: 'how', id: 'after' })).id, 'after');
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });

  it('leaves to Nest a handler with an interceptor of its own, or a validation pipe subclass of the application', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway, OwnValidationPipe] });
    const client = await connect('/plain');
    assert.deepEqual((await client.request({ event: 'intercepted', id: 1 })).data, { wrapped: { direct: false } });
    assert.deepEqual((await client.request({ event: 'twice', id: 4 })).data, { wrapped: { which: 'first' } });
    assert.deepEqual((await client.request({ event: 'own-pipe', id: 2, data: { text: 'x' } })).data, { text: 'x', direct: false });
    assert.equal(
      ((await client.request({ event: 'own-pipe', id: 3, data: { text: 1 } })).data as { code: string }).code,
      'VALIDATION_FAILED',
    );
  });

  it('answers validation failures and thrown errors with error frames tied to the id, as the filter does', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway] });
    const client = await connect('/plain');
    const invalid = await client.request({ event: 'note', id: 'v', data: { text: 'far too long text', extra: 1 } });
    assert.equal(invalid.id, 'v');
    assert.equal((invalid.data as { code: string }).code, 'VALIDATION_FAILED');
    const properties = ((invalid.data as { details: { property: string }[] }).details ?? []).map((detail) => detail.property).sort();
    assert.deepEqual(properties, ['extra', 'text']);
    const thrown = await client.request({ event: 'throws', id: 't' });
    assert.deepEqual(thrown, { event: 'error', id: 't', data: { code: 'INTERNAL', message: 'internal error' } });
  });

  // NestJS 11 applies no global guard, interceptor or pipe to gateways (NestJS 12 does):
  // the handler still goes through Nest, which calls it without them.
  const globalsApply = nestMajor >= 12;

  it('leaves a handler to Nest when the application has a global guard, interceptor or pipe', async () => {
    const unguarded = { event: 'how', id: 1, data: { direct: false } };
    for (const [configure, expected] of [
      [
        (app: RunningApp['app']) => app.useGlobalGuards(new DenyGuard()),
        globalsApply ? { event: 'error', id: 1, data: { code: 'FORBIDDEN', message: 'Forbidden resource' } } : unguarded,
      ],
      [
        (app: RunningApp['app']) => app.useGlobalInterceptors(new WrapInterceptor()),
        globalsApply ? { event: 'how', id: 1, data: { wrapped: { direct: false } } } : unguarded,
      ],
    ] as const) {
      running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway] }, configure);
      const client = await connect('/plain');
      assert.deepEqual(await client.request({ event: 'how', id: 1 }), expected);
      client.close();
      await running.close();
      running = undefined;
    }
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway] }, (app) =>
      app.useGlobalPipes(new ShoutPipe()),
    );
    const client = await connect('/plain');
    assert.deepEqual((await client.request({ event: 'note', id: 2, data: { text: 'hi' } })).data, {
      text: globalsApply ? 'HI' : 'hi',
      dto: true,
      socket: true,
      direct: false,
    });
  });

  it('still calls a handler directly when the application has a global exception filter, which Nest never applies to gateways', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [PlainGateway] }, (app) =>
      app.useGlobalFilters(new BaseExceptionFilter()),
    );
    const client = await connect('/plain');
    assert.deepEqual(await client.request({ event: 'how', id: 1 }), { event: 'how', id: 1, data: { direct: true } });
    client.close();
  });

  it('leaves every handler to Nest when two gateways share a path, each answering its own events', async () => {
    // An event both handle goes to the gateway Nest connects first (the adapter keeps the
    // first handler bound for an event). NestJS 11 connects gateways in the order of the
    // module's providers; NestJS 12 connects the first one last, since it awaits the
    // adapter's initialisation, which the others then find done. Neither is called directly.
    for (const providers of [
      [SharedA, SharedB],
      [SharedB, SharedA],
    ]) {
      const connectedFirst = nestMajor >= 12 ? providers[1]! : providers[0]!;
      running = await startApp({ imports: [RealtimeModule.forRoot({})], providers });
      const client = await connect('/shared');
      assert.equal((await client.request({ event: 'a', id: 1 })).data, 'A');
      assert.equal((await client.request({ event: 'b', id: 2 })).data, 'B');
      assert.deepEqual(
        (await client.request({ event: 'how', id: 3 })).data,
        { from: connectedFirst === SharedA ? 'A' : 'B', direct: false },
        `providers ${providers.map((provider) => provider.name).join(', ')}`,
      );
      sharedDisconnects.length = 0;
      client.close();
      await until(() => sharedDisconnects.length === 2, 'both gateways to see the disconnect');
      assert.deepEqual([...sharedDisconnects].sort(), ['A', 'B']);
      await running.close();
      running = undefined;
    }
  });

  it('leaves a handler to Nest under an APP_GUARD provider, a class guard, a custom parameter decorator or a request scope', async () => {
    running = await startApp({
      imports: [RealtimeModule.forRoot({})],
      providers: [GuardedGateway, CustomParamGateway, ScopedGateway, PerMessage],
    });
    const guarded = await connect('/enhanced');
    assert.equal(((await guarded.request({ event: 'how', id: 1 })).data as { code: string }).code, 'FORBIDDEN');
    const custom = await connect('/custom');
    assert.deepEqual((await custom.request({ event: 'shout', id: 2, data: { text: 'hey' } })).data, { text: 'HEY', direct: false });
    if (nestMajor < 12) {
      // NestJS 11 has no request-scoped gateways: it calls a gateway it never built.
      const answer = await (await connect('/scoped')).request({ event: 'n', id: 3 });
      assert.deepEqual(answer.data, { code: 'INTERNAL', message: 'internal error' });
    } else {
      const first = (await (await connect('/scoped')).request({ event: 'n', id: 3 })).data as { n: number; direct: boolean };
      const second = (await (await connect('/scoped')).request({ event: 'n', id: 4 })).data as { n: number; direct: boolean };
      assert.equal(first.direct, false);
      assert.notEqual(first.n, second.n, 'request-scoped instances of their own, as Nest makes them');
    }
    await running.close();
    running = await startApp({
      imports: [RealtimeModule.forRoot({})],
      providers: [PlainGateway, { provide: APP_GUARD, useClass: DenyGuard }],
    });
    const plain = await connect('/plain');
    assert.deepEqual(
      (await plain.request({ event: 'how', id: 5 })).data,
      globalsApply ? { code: 'FORBIDDEN', message: 'Forbidden resource' } : { direct: false },
    );
  });
});
