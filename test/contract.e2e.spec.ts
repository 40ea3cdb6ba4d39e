import { Parser } from '@asyncapi/parser';
import { type INestApplication, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { type AsyncApiDocument, asyncApiTypes, Emits, RealtimeContract, RealtimeModule, Replies } from '../src/index.js';
import { describeGateway } from '../src/contract/gateway-contract.js';
import { AppModule } from '../sample-app/src/app.module.js';
import { loadConfig } from '../sample-app/src/config.js';
import { sampleContractInfo } from '../sample-app/src/contract.controller.js';
import { ApiKeyAuthenticator } from './fixtures/api-key-authenticator.js';
import ts from 'typescript';
import {
  AdminGateway,
  ClashGateway,
  NamedGateway,
  NestedNamedGateway,
  NotesGateway,
  StockGateway,
  TwoFactorGateway,
} from './fixtures/contract-gateways.js';
import { startApp, type RunningApp } from './support/app.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

type Json = Record<string, unknown>;

/** The document's errors, as the official AsyncAPI parser reports them (severity 0), and the parsed document. */
async function parse(document: unknown): Promise<{ errors: string[]; parsed: boolean }> {
  const { document: parsed, diagnostics } = await new Parser().parse(JSON.stringify(document));
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
  return { errors, parsed: parsed !== undefined };
}

/** The errors of TypeScript `source` (one module of its own), compiled strictly. */
function compileErrors(source: string): string[] {
  const file = 'generated-contract.ts';
  const options: ts.CompilerOptions = { strict: true, noEmit: true, skipLibCheck: true, types: [], target: ts.ScriptTarget.ES2022 };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language) => (name === file ? ts.createSourceFile(file, source, language) : read(name, language));
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
}

/** Follows a local `$ref` (`#/a/b`) in `document`. */
function resolve(document: Json, ref: string): Json {
  return ref
    .slice(2)
    .split('/')
    .reduce<Json>((node, key) => node[key] as Json, document);
}

function at(document: Json, ...path: string[]): Json {
  return path.reduce<Json>((node, key) => {
    assert.ok(node && key in node, `no ${path.join('.')} in the document`);
    return node[key] as Json;
  }, document);
}

describe('the realtime contract (AsyncAPI 3.0)', () => {
  describe('of the sample app', () => {
    let app: INestApplication;
    let served: Json;

    before(async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [AppModule.register(loadConfig({ JWT_SECRET: 'contract-test-secret-0123456789abcdef0123' }))],
      }).compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.listen(0, '127.0.0.1');
      const response = await request(app.getHttpServer()).get('/asyncapi.json').expect(200).expect('content-type', /json/);
      served = response.body as Json;
    });

    after(() => app?.close());

    it('serves GET /asyncapi.json, valid for the official parser with zero errors, naming the host it was asked on', async () => {
      const { errors, parsed } = await parse(served);
      assert.deepEqual(errors, []);
      assert.equal(parsed, true);
      assert.equal(served.asyncapi, '3.0.0');
      const { port } = app.getHttpServer().address() as { port: number };
      assert.deepEqual(at(served, 'servers', 'sample'), { host: `127.0.0.1:${port}`, protocol: 'ws', description: 'This server.' });
    });

    it('has a channel per gateway and an operation per handler, with its request, reply and error frame', () => {
      assert.deepEqual(
        Object.fromEntries(Object.entries(at(served, 'channels')).map(([key, channel]) => [key, (channel as Json).address])),
        { chat: '/chat', echo: '/echo' },
      );
      assert.deepEqual(Object.keys(at(served, 'operations')).sort(), [
        'chat.auth',
        'chat.join',
        'chat.leave',
        'chat.message.push',
        'chat.ping',
        'chat.send',
        'echo.auth',
        'echo.echo',
        'echo.ping',
        'echo.raw',
      ]);
      const join = at(served, 'operations', 'chat.join');
      assert.equal(join.action, 'receive');
      assert.deepEqual(join.messages, [{ $ref: '#/channels/chat/messages/join' }]);
      assert.deepEqual((join.reply as Json).messages, [
        { $ref: '#/channels/chat/messages/join.reply' },
        { $ref: '#/channels/chat/messages/error' },
      ]);
      // The request's data is the handler's DTO, the reply's the @Replies class.
      const request = resolve(served, (join.messages as { $ref: string }[])[0]!.$ref);
      assert.deepEqual(at(request, 'payload', 'properties', 'data'), { $ref: '#/components/schemas/JoinDto' });
      assert.deepEqual(at(resolve(served, '#/channels/chat/messages/join.reply'), 'payload', 'properties', 'data'), {
        $ref: '#/components/schemas/JoinReply',
      });
      // The raw-text handler: text both ways.
      const raw = resolve(served, '#/channels/echo/messages/raw');
      assert.equal(raw.contentType, 'text/plain');
      assert.deepEqual(raw.payload, { type: 'string' });
      // The push declared with @Emits, which the application sends.
      assert.equal(at(served, 'operations', 'chat.message.push').action, 'send');
      assert.deepEqual(at(resolve(served, '#/channels/chat/messages/message.push'), 'payload', 'properties', 'data'), {
        $ref: '#/components/schemas/ChatMessage',
      });
    });

    it("makes the DTOs' schemas from their class-validator rules, inherited and nested ones included", () => {
      const schemas = at(served, 'components', 'schemas');
      assert.deepEqual(schemas.EchoDto, {
        type: 'object',
        properties: { message: { type: 'string', minLength: 1, maxLength: 1000 } },
        required: ['message'],
      });
      const join = schemas.JoinDto as Json;
      assert.deepEqual(join.required, ['room']);
      assert.deepEqual(at(join, 'properties', 'room'), { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,128}$' });
      assert.deepEqual(at(join, 'properties', 'since'), { $ref: '#/components/schemas/SinceDto' });
      assert.deepEqual(at(schemas, 'SinceDto', 'properties', 'offset'), { type: 'integer', minimum: 0 });
      assert.deepEqual(at(schemas, 'JoinReply', 'properties', 'members'), { type: 'array', items: { type: 'string' } });
      // Only what the contract uses: no class of another part of the process.
      assert.equal('NoteDto' in schemas, false);
    });

    it('describes the error frame and its codes, the JWT schemes and the close codes', () => {
      const codes = at(served, 'components', 'schemas', 'ErrorCode');
      assert.deepEqual((codes.anyOf as Json[])[0], {
        enum: [
          'BAD_REQUEST',
          'UNKNOWN_EVENT',
          'VALIDATION_FAILED',
          'UNAUTHORIZED',
          'FORBIDDEN',
          'NOT_FOUND',
          'CONFLICT',
          'RATE_LIMITED',
          'UNAVAILABLE',
          'INTERNAL',
        ],
      });
      assert.deepEqual(Object.keys(at(served, 'components', 'securitySchemes')), ['jwtHeader', 'jwtSubprotocol', 'jwtQuery']);
      assert.deepEqual(at(served, 'components', 'securitySchemes', 'jwtQuery'), {
        type: 'httpApiKey',
        in: 'query',
        name: 'access_token',
        description: 'The token as the `access_token` query parameter.',
      });
      assert.equal((at(served, 'operations', 'echo.echo').security as unknown[]).length, 3);
      const close = at(served, 'x-close-codes');
      assert.equal(close['4001'], 'token expired: refresh the token, then reconnect');
      assert.equal(Object.keys(close).length, 10);
    });

    it('is what sample-app/asyncapi.json and sample-app/contract.ts hold (npm run asyncapi writes them)', async () => {
      const written = JSON.parse(readFileSync(new URL('../../sample-app/asyncapi.json', import.meta.url), 'utf8')) as Json;
      const config = loadConfig({});
      const fresh = await app.get(RealtimeContract).asyncApi(sampleContractInfo(`localhost:${config.port}`, false));
      assert.deepEqual(written, JSON.parse(JSON.stringify(fresh)), 'sample-app/asyncapi.json is out of date: run npm run asyncapi');
      const types = readFileSync(new URL('../../sample-app/contract.ts', import.meta.url), 'utf8');
      assert.equal(types, asyncApiTypes(fresh), 'sample-app/contract.ts is out of date: run npm run asyncapi');
    });
  });

  describe('of other gateways', () => {
    let running: RunningApp;
    let document: AsyncApiDocument;

    before(async () => {
      running = await startApp({
        imports: [RealtimeModule.forRoot({ auth: { secret: 'contract-fixture-secret-0123456789abcdef' } })],
        providers: [NotesGateway, AdminGateway, TwoFactorGateway],
      });
      document = await running.app.get(RealtimeContract).asyncApi({ title: 'Notes', version: '0.3.0' });
    });

    after(() => running?.close());

    it('is valid for the official parser', async () => {
      assert.deepEqual((await parse(document)).errors, []);
      assert.deepEqual(at(document, 'info'), {
        title: 'Notes',
        version: '0.3.0',
        description: (at(document, 'info') as Json).description,
      });
      assert.equal('servers' in document, false);
    });

    it('reads every kind of body: a DTO, a primitive, a part of it, none, a handler without decorators', () => {
      const data = (key: string): unknown => at(resolve(document, `#/channels/notes/messages/${key}`), 'payload', 'properties', 'data');
      assert.deepEqual(data('note_add'), { $ref: '#/components/schemas/NoteDto' });
      assert.deepEqual(data('shout'), { type: 'string' });
      assert.deepEqual(data('pick'), { type: 'object', required: ['title'], properties: { title: { type: 'string' } } });
      assert.deepEqual(data('bare'), { $ref: '#/components/schemas/NoteDto' });
      assert.deepEqual(data('note_add.reply'), {
        type: 'object',
        required: ['id'],
        properties: { id: { type: 'string', format: 'uuid' } },
      });
      assert.equal(at(resolve(document, '#/channels/notes/messages/note_add.reply'), 'summary'), 'the new note');
    });

    it('keeps event names whole in messages, declares pushes with or without a type, and marks public gateways', () => {
      const added = resolve(document, '#/channels/notes/messages/note_added.push');
      assert.equal(added.name, 'note:added');
      assert.equal(added.summary, 'a note someone added');
      assert.deepEqual(at(added, 'payload', 'properties', 'event'), { const: 'note:added' });
      assert.deepEqual(at(resolve(document, '#/channels/notes/messages/tick.push'), 'payload', 'properties', 'data'), {});
      // Public: no security on its operations; the authenticated one has the three schemes and says its roles.
      assert.equal('security' in at(document, 'operations', 'notes.note_add'), false);
      assert.equal((at(document, 'operations', 'admin.stats').security as unknown[]).length, 3);
      assert.match(String(at(document, 'channels', 'admin').description), /roles must include admin, ops/);
      assert.match(String(at(document, 'channels', 'notes').description), /Public/);
    });

    it('gives each gateway a contract type for the typed client', () => {
      const types = asyncApiTypes(document);
      const has = (...lines: string[]): void => assert.ok(types.includes(lines.join('\n')), `no ${lines.join(' / ')} in:\n${types}`);
      has('export type NoteDto = {', '  title: string;', '  stars: number;', '};');
      has(
        'export type NotesContract = {',
        '  requests: {',
        "    'note:add': {",
        '      data: NoteDto;',
        '      reply: {',
        '        id: string;',
      );
      has('    shout: {', '      data: string;');
      has('    pick: {', '      data: {', '        title: string;', '      };');
      has('  pushes: {', "    'note:added': NoteDto;", '    tick: unknown;', '  };');
      has('export type AdminContract = {', '  requests: {', '    stats: {', '      data?: unknown;', '      reply: unknown;');
      has('  pushes: Record<never, never>;', '};');
      // The raw-text handler is not an envelope: not a request of the contract.
      assert.doesNotMatch(types, /raw/);
    });

    it('turns every JSON Schema form class-validator rules give into TypeScript', () => {
      const types = asyncApiTypes({
        asyncapi: '3.0.0',
        info: { title: 'Forms', version: '1' },
        components: {
          schemas: {
            Forms: {
              type: 'object',
              required: ['kind', 'quote'],
              properties: {
                kind: { enum: ['a', "it's", 2] },
                quote: { const: 'say "hi"\n' },
                maybe: { type: ['string', 'null'] },
                list: { type: 'array' },
                tags: { type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'integer' }] } },
                map: { type: 'object', additionalProperties: { type: 'boolean' } },
                open: { type: 'object', additionalProperties: true },
                empty: { type: 'object' },
                'odd-name': { $ref: '#/elsewhere/Thing' },
                other: { type: 'bogus' },
              },
            },
          },
        },
      });
      assert.equal(
        types.split('\n').slice(2).join('\n'),
        [
          'export type Forms = {',
          "  kind: 'a' | 'it\\'s' | 2;",
          '  quote: \'say "hi"\\n\';',
          '  maybe?: string | null;',
          '  list?: unknown[];',
          '  tags?: Array<string | number>;',
          '  map?: {',
          '    [key: string]: boolean;',
          '  };',
          '  open?: {',
          '    [key: string]: unknown;',
          '  };',
          '  empty?: Record<string, unknown>;',
          "  'odd-name'?: unknown;",
          '  other?: unknown;',
          '};',
          '',
        ].join('\n'),
      );
    });

    it('keeps every event apart, whatever its name, and types compile for any path', () => {
      const operations = Object.keys(at(document, 'operations')).filter((key) => key.startsWith('2fa.'));
      assert.deepEqual(operations.sort(), ['2fa.a_b', '2fa.a_b-2', '2fa.auth', '2fa.ping', '2fa.x', '2fa.x-2.push', '2fa.x.reply-2']);
      const event = (key: string): unknown => at(resolve(document, `#/channels/2fa/messages/${key}`), 'payload', 'properties', 'event');
      assert.deepEqual(
        [event('x'), event('x.reply-2'), event('a_b'), event('a_b-2'), event('x-2.push')],
        [{ const: 'x' }, { const: 'x.reply' }, { const: 'a:b' }, { const: 'a_b' }, { const: 'x' }],
      );
      // The user's own `ping` never runs: the protocol's is in the contract.
      assert.match(String(at(resolve(document, '#/channels/2fa/messages/ping'), 'summary')), /Application-level ping/);
      const types = asyncApiTypes(document);
      assert.match(types, /export type _2faContract = \{/);
      assert.deepEqual(compileErrors(types), []);
    });

    it('refuses two classes of one name, and a class named like an envelope schema', async () => {
      const clash = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [ClashGateway] });
      const named = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [NamedGateway] });
      const nested = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [NestedNamedGateway] });
      try {
        await assert.rejects(
          clash.app.get(RealtimeContract).asyncApi(),
          /names two different things "CreateDto" \(two classes\): rename the class/,
        );
        await assert.rejects(named.app.get(RealtimeContract).asyncApi(), /"MessageId" \(a schema of the protocol's envelope\)/);
        // Nested in another class, too: the reference would otherwise point at the envelope's schema.
        await assert.rejects(nested.app.get(RealtimeContract).asyncApi(), /"MessageId" \(a schema of the protocol's envelope\)/);
      } finally {
        await Promise.all([clash.close(), named.close(), nested.close()]);
      }
    });

    it('refuses a type that is neither a class nor a JSON Schema, naming the decorator', () => {
      assert.throws(() => Replies(undefined as never), /@Replies\(\) needs a class or a JSON Schema object, got undefined/);
      assert.throws(() => Emits('e', 'Dto' as never), /@Emits\(\) needs a class or a JSON Schema object, got Dto/);
    });

    it('leaves out classes that are not realtime gateways', () => {
      assert.equal(describeGateway(StockGateway), undefined);
      assert.equal(describeGateway(NoteDtoHolder), undefined);
    });
  });

  it('has no JWT schemes and no in-band auth for an application with its own authenticator', async () => {
    const running = await startApp({
      imports: [RealtimeModule.forRoot({ authenticator: new ApiKeyAuthenticator(new Map()) })],
      providers: [AdminGateway],
    });
    try {
      const document = await running.app.get(RealtimeContract).asyncApi();
      assert.deepEqual((await parse(document)).errors, []);
      assert.equal('securitySchemes' in at(document, 'components'), false);
      assert.equal('admin.auth' in at(document, 'operations'), false);
      assert.equal('security' in at(document, 'operations', 'admin.stats'), false);
    } finally {
      await running.close();
    }
  });

  it('has in-band auth for an authenticator that can refresh, and neither schemes nor auth without any authentication', async () => {
    const refreshing = Object.assign(new ApiKeyAuthenticator(new Map()), {
      refresh: () => Promise.resolve({ principal: { sub: 'a' } }),
    });
    let running = await startApp({ imports: [RealtimeModule.forRoot({ authenticator: refreshing })], providers: [AdminGateway] });
    try {
      const document = await running.app.get(RealtimeContract).asyncApi();
      assert.deepEqual((await parse(document)).errors, []);
      assert.equal('securitySchemes' in at(document, 'components'), false);
      assert.deepEqual(at(document, 'operations', 'admin.auth', 'reply', 'messages'), [
        { $ref: '#/channels/admin/messages/auth.reply' },
        { $ref: '#/channels/admin/messages/error' },
      ]);
    } finally {
      await running.close();
    }
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [NotesGateway] });
    try {
      const document = await running.app.get(RealtimeContract).asyncApi();
      assert.deepEqual((await parse(document)).errors, []);
      assert.equal('securitySchemes' in at(document, 'components'), false);
      assert.equal('notes.auth' in at(document, 'operations'), false);
    } finally {
      await running.close();
    }
  });
});

/** Not a gateway at all. */
class NoteDtoHolder {}
