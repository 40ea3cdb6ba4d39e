import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { RealtimeModule, type RealtimeModuleOptions } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { TestClient } from './support/ws-client.js';
import {
  CheckedChildGateway,
  LooseProfilesGateway,
  OwnPipeGateway,
  StrictProfilesGateway,
  UncheckedGateway,
  ValidationGateway,
} from './fixtures/validation-gateways.js';

type Frame = Record<string, unknown>;
type ErrorData = { code: string; message: string; details?: Detail[] };
type Detail = { property: string; constraints?: Record<string, string>; children?: Detail[] };

function errorOf(frame: Frame): ErrorData {
  assert.equal(frame.event, 'error', `expected an error frame, got ${JSON.stringify(frame)}`);
  return frame.data as ErrorData;
}

const validProfile = { name: 'Ada', age: 36 };

describe('DTO validation of message handlers', () => {
  let running: RunningApp;
  const clients: TestClient[] = [];

  async function start(options: RealtimeModuleOptions = {}): Promise<void> {
    running = await startApp({
      // The interleaving test sends 2,000 frames at once: far over the default rate limit.
      imports: [RealtimeModule.forRoot({ limits: { messageRate: false, userMessageRate: false }, ...options })],
      providers: [ValidationGateway, UncheckedGateway, CheckedChildGateway, StrictProfilesGateway, LooseProfilesGateway, OwnPipeGateway],
    });
  }

  async function connect(path = '/v'): Promise<TestClient> {
    const client = await TestClient.connect(running.wsUrl(path));
    clients.push(client);
    return client;
  }

  /** The connection still answers: a valid request gets its reply. */
  async function assertAlive(client: TestClient): Promise<void> {
    const reply = await client.request({ event: 'profile', id: 'alive', data: validProfile });
    assert.equal(reply.id, 'alive');
    assert.equal(reply.event, 'profile');
  }

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    await running.close();
  });

  describe('with the default settings', () => {
    beforeEach(() => start());

    it('hands the handler a DTO instance, nested DTOs included', async () => {
      const client = await connect();
      const reply = await client.request({
        event: 'profile',
        id: 1,
        data: { ...validProfile, address: { city: 'London', zip: 'NW10' }, tags: ['a'] },
      });
      assert.deepEqual(reply, {
        event: 'profile',
        id: 1,
        data: {
          body: { ...validProfile, address: { city: 'London', zip: 'NW10' }, tags: ['a'] },
          className: 'ProfileDto',
          addressClass: 'AddressDto',
        },
      });
    });

    it('refuses a wrong type with VALIDATION_FAILED, its id and the rule, and keeps the connection', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'profile', id: 7, data: { name: 'Ada', age: 'old' } }));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.match(error.message, /^validation failed: age: /);
      assert.deepEqual(error.details, [
        {
          property: 'age',
          constraints: {
            max: 'age must not be greater than 150',
            min: 'age must not be less than 0',
            isInt: 'age must be an integer number',
          },
        },
      ]);
      await assertAlive(client);
    });

    it('ties the error frame to the request id', async () => {
      const client = await connect();
      const frame = await client.request({ event: 'profile', id: 'req-42', data: { name: 'Ada' } });
      assert.equal(frame.id, 'req-42');
      assert.equal(errorOf(frame).code, 'VALIDATION_FAILED');
    });

    it('refuses a missing required property', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'profile', id: 1, data: { age: 3 } }));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        error.details?.map((detail) => detail.property),
        ['name'],
      );
      assert.ok(error.details?.[0]?.constraints?.isString);
    });

    it('refuses an extra property, naming it', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'profile', id: 1, data: { ...validProfile, admin: true } }));
      assert.deepEqual(error.details, [{ property: 'admin', constraints: { whitelistValidation: 'property admin should not exist' } }]);
    });

    it('answers a frame full of unknown keys with the first 50 details and a count of all, not one detail per key', async () => {
      const client = await connect();
      const data: Record<string, unknown> = { ...validProfile };
      for (let i = 0; i < 5000; i++) {
        data[`k${i}`] = 0;
      }
      const question = JSON.stringify({ event: 'profile', id: 'flood', data });
      const answer = await client.request(JSON.parse(question) as Frame);
      const error = errorOf(answer);
      assert.equal(answer.id, 'flood');
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(error.details?.length, 50);
      assert.deepEqual(error.details?.[0], { property: 'k0', constraints: { whitelistValidation: 'property k0 should not exist' } });
      assert.match(error.message, /\(and 4997 more\)$/);
      assert.ok(JSON.stringify(answer).length < question.length / 5, `an answer of ${JSON.stringify(answer).length} bytes`);
      await assertAlive(client);
    });

    it('reports errors of a nested DTO as children', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'profile', id: 1, data: { ...validProfile, address: { city: '', zip: 5 } } }));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.equal(error.details?.length, 1);
      const address = error.details![0]!;
      assert.equal(address.property, 'address');
      assert.equal(address.constraints, undefined);
      assert.deepEqual(
        address.children?.map((child) => child.property),
        ['city', 'zip'],
      );
      assert.deepEqual(Object.keys(address.children![1]!.constraints!).sort(), ['isLength', 'isString']);
      assert.match(error.message, /address\.city: /);
    });

    it('reports errors in an array of DTOs by index', async () => {
      const client = await connect();
      const error = errorOf(
        await client.request({
          event: 'order',
          id: 1,
          data: {
            items: [
              { sku: 'a', quantity: 1 },
              { sku: 'b', quantity: 0 },
              { sku: 'c', quantity: 2, extra: 1 },
            ],
          },
        }),
      );
      assert.deepEqual(error.details, [
        {
          property: 'items',
          children: [
            { property: '1', children: [{ property: 'quantity', constraints: { min: 'quantity must not be less than 1' } }] },
            { property: '2', children: [{ property: 'extra', constraints: { whitelistValidation: 'property extra should not exist' } }] },
          ],
        },
      ]);
      const ok = await client.request({
        event: 'order',
        id: 2,
        data: {
          items: [
            { sku: 'a', quantity: 1 },
            { sku: 'b', quantity: 2 },
          ],
        },
      });
      assert.deepEqual(ok.data, { count: 2, itemClasses: ['ItemDto'] });
    });

    it('bounds arrays and strings by the DTO', async () => {
      const client = await connect();
      const tooMany = errorOf(
        await client.request({ event: 'profile', id: 1, data: { ...validProfile, tags: ['a', 'b', 'c', 'd', 'e', 'f'] } }),
      );
      assert.ok(tooMany.details?.[0]?.constraints?.arrayMaxSize);
      const tooLong = errorOf(await client.request({ event: 'profile', id: 2, data: { name: 'x'.repeat(51), age: 1 } }));
      assert.ok(tooLong.details?.[0]?.constraints?.isLength);
      const noItems = errorOf(await client.request({ event: 'order', id: 3, data: { items: [] } }));
      assert.ok(noItems.details?.[0]?.constraints?.arrayMinSize);
    });

    it('refuses data that is not an object for a DTO', async () => {
      const client = await connect();
      for (const [id, data] of [
        [1, 'text'],
        [2, 12],
        [3, null],
        [4, [validProfile]],
        [5, undefined],
      ] as const) {
        const frame = await client.request({ event: 'profile', id, data });
        assert.equal(frame.id, id);
        const error = errorOf(frame);
        assert.equal(error.code, 'VALIDATION_FAILED');
        assert.match(error.message, /data must be a JSON object/);
      }
      await assertAlive(client);
    });

    it('strips __proto__ and constructor.prototype payloads; a fresh {} stays clean', async () => {
      const client = await connect();
      const payloads = [
        '{"event":"profile","id":1,"data":{"name":"Ada","age":36,"__proto__":{"polluted":"yes"}}}',
        '{"event":"profile","id":2,"data":{"name":"Ada","age":36,"constructor":{"prototype":{"polluted":"yes"}}}}',
        '{"event":"profile","id":3,"data":{"name":"Ada","age":36,"address":{"city":"x","zip":"12345","__proto__":{"polluted":"yes"}}}}',
        '{"event":"order","id":4,"data":{"items":[{"sku":"a","quantity":1,"constructor":{"prototype":{"polluted":"yes"}}}]}}',
        '{"event":"untyped","id":5,"data":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}}',
      ];
      for (const [index, payload] of payloads.entries()) {
        const reply = await client.request(payload);
        assert.equal(reply.id, index + 1);
        assert.notEqual(reply.event, 'error', JSON.stringify(reply));
      }
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
      assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
      const untyped = await client.request({ event: 'untyped', id: 6, data: {} });
      assert.deepEqual(untyped.data, { body: {}, className: 'Object' });
    });

    it('answers 10,000 levels of nesting with BAD_REQUEST; socket and process live on', async () => {
      const client = await connect();
      const depth = 10_000;
      const arrays = `{"event":"profile","id":"deep","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const objects = `{"event":"profile","id":"deeper","data":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
      for (const [frame, id] of [
        [arrays, 'deep'],
        [objects, 'deeper'],
      ] as const) {
        const reply = await client.request(frame);
        assert.equal(reply.id, id);
        const error = errorOf(reply);
        assert.equal(error.code, 'BAD_REQUEST');
        assert.match(error.message, /nested deeper than 32/);
      }
      await assertAlive(client);
    });

    it('accepts a valid 60 KiB payload', async () => {
      const client = await connect();
      const text = 'x'.repeat(60 * 1024);
      const reply = await client.request({ event: 'big', id: 1, data: { text } });
      assert.deepEqual(reply, { event: 'big', id: 1, data: { length: text.length, className: 'BigDto' } });
    });

    it('answers 1,000 invalid messages interleaved with valid ones: exactly one reply each, in order', async () => {
      const client = await connect();
      const total = 2000;
      for (let i = 0; i < total; i++) {
        const data = i % 2 === 0 ? { name: `n${i}`, age: i % 150 } : { name: `n${i}`, age: -1 };
        client.send({ event: 'profile', id: i, data });
      }
      const seen: number[] = [];
      for (let i = 0; i < total; i++) {
        const frame = await client.nextJson();
        const id = frame.id as number;
        seen.push(id);
        if (id % 2 === 0) {
          assert.equal(frame.event, 'profile');
          assert.equal((frame.data as { body: { name: string } }).body.name, `n${id}`);
        } else {
          assert.equal(errorOf(frame).code, 'VALIDATION_FAILED');
        }
      }
      // Each id got exactly one reply. Replies are not promised in request order across
      // handlers of different speeds (docs/protocol.md §2), but each kind keeps its order.
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        Array.from({ length: total }, (_, i) => i),
      );
      assert.deepEqual(
        seen.filter((id) => id % 2 === 0),
        Array.from({ length: total / 2 }, (_, i) => 2 * i),
      );
      assert.deepEqual(
        seen.filter((id) => id % 2 === 1),
        Array.from({ length: total / 2 }, (_, i) => 2 * i + 1),
      );
      await assertAlive(client);
      assert.equal(client.pending, 0);
    });

    it('runs a custom validator decorator', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'even', id: 1, data: { value: 3 } }));
      assert.deepEqual(error.details, [{ property: 'value', constraints: { isEven: 'value must be an even number' } }]);
      const ok = await client.request({ event: 'even', id: 2, data: { value: 4 } });
      assert.deepEqual(ok.data, { body: { value: 4 }, className: 'EvenDto' });
    });

    it('awaits an asynchronous custom constraint', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'signup', id: 1, data: { name: 'admin' } }));
      assert.deepEqual(error.details, [{ property: 'name', constraints: { isFreeName: 'name is taken' } }]);
      const ok = await client.request({ event: 'signup', id: 2, data: { name: 'ada' } });
      assert.deepEqual(ok.data, { body: { name: 'ada' }, className: 'SignupDto' });
    });

    it('gives a handler without a DTO the raw data', async () => {
      const client = await connect();
      const data = { anything: [1, { deep: true }], extra: 'kept' };
      assert.deepEqual((await client.request({ event: 'untyped', id: 1, data })).data, { body: data, className: 'Object' });
      assert.deepEqual((await client.request({ event: 'bare', id: 2, data })).data, { body: data, className: 'Object' });
      assert.deepEqual((await client.request({ event: 'bare', id: 3, data: 'text' })).data, { body: 'text', className: 'string' });
      assert.deepEqual((await client.request({ event: 'property', id: 4, data: { name: 'x' } })).data, {
        name: 'x',
        socket: 'function',
      });
    });

    it('runs field initializers of the DTO, as class-transformer does', async () => {
      const client = await connect();
      const reply = await client.request({ event: 'defaults', id: 1, data: { title: 't' } });
      assert.deepEqual(reply.data, { body: { title: 't', priority: 'normal' }, className: 'DefaultsDto' });
    });

    it('refuses every payload for a DTO class without decorators, as class-validator does', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'undecorated', id: 1, data: { name: 'x' } }));
      assert.equal(error.code, 'VALIDATION_FAILED');
      assert.ok(error.details?.[0]?.constraints?.unknownValue);
    });

    it('applies per-handler groups; without groups every rule runs', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'grouped', id: 1, data: { handle: 'ab' } }));
      assert.ok(error.details?.[0]?.constraints?.isLength);
      const grouped = await client.request({ event: 'grouped', id: 2, data: { handle: 'abc', bio: 'hi' } });
      assert.deepEqual(grouped.data, { body: { handle: 'abc', bio: 'hi' }, className: 'GroupedDto' });
      const alwaysRule = errorOf(await client.request({ event: 'grouped', id: 3, data: { handle: 'abc', bio: 5 } }));
      assert.ok(alwaysRule.details?.[0]?.constraints?.isString);
      // Without groups, class-validator runs every rule, grouped ones included.
      const ungrouped = errorOf(await client.request({ event: 'ungrouped', id: 4, data: { handle: 'ab' } }));
      assert.ok(ungrouped.details?.[0]?.constraints?.isLength);
    });

    it('turns validation off for one handler, or gives it the plain object', async () => {
      const client = await connect();
      const off = await client.request({ event: 'unvalidated', id: 1, data: { name: 5, whatever: true } });
      assert.deepEqual(off.data, { body: { name: 5, whatever: true }, className: 'Object' });
      const plain = await client.request({ event: 'plain', id: 2, data: validProfile });
      assert.deepEqual(plain.data, { body: validProfile, className: 'Object' });
      const plainError = errorOf(await client.request({ event: 'plain', id: 3, data: { name: 'x' } }));
      assert.equal(plainError.code, 'VALIDATION_FAILED');
      const lenient = await client.request({ event: 'lenient', id: 4, data: { ...validProfile, extra: 1 } });
      assert.deepEqual(lenient.data, { body: validProfile, className: 'ProfileDto' });
    });

    it('turns validation off for a whole gateway', async () => {
      const client = await connect('/unchecked');
      const reply = await client.request({ event: 'profile', id: 1, data: { name: 5 } });
      assert.deepEqual(reply.data, { body: { name: 5 }, className: 'Object' });
    });

    it('validates an inherited handler with the settings of the gateway that inherits it', async () => {
      // The base gateway does not validate; the one that extends it does, with the defaults.
      assert.deepEqual((await (await connect('/unchecked')).request({ event: 'profile', id: 1, data: { name: 5 } })).data, {
        body: { name: 5 },
        className: 'Object',
      });
      assert.equal(
        errorOf(await (await connect('/checked-child')).request({ event: 'profile', id: 2, data: { name: 5 } })).code,
        'VALIDATION_FAILED',
      );
      // Two gateways sharing an undecorated base's handler, each with its own settings.
      const extra = { ...validProfile, extra: 1 };
      assert.equal(
        errorOf(await (await connect('/strict-profiles')).request({ event: 'profile', id: 3, data: extra })).code,
        'VALIDATION_FAILED',
      );
      assert.deepEqual((await (await connect('/loose-profiles')).request({ event: 'profile', id: 4, data: extra })).data, {
        body: extra,
        className: 'Object',
      });
      // A handler's own validation pipe is kept on the gateway that inherits it.
      assert.equal(
        errorOf(await (await connect('/own-pipe')).request({ event: 'profile', id: 5, data: { name: 5 } })).code,
        'VALIDATION_FAILED',
      );
    });

    it('runs guards before validation', async () => {
      const client = await connect();
      const error = errorOf(await client.request({ event: 'guarded', id: 1, data: { name: 5 } }));
      assert.equal(error.code, 'FORBIDDEN');
    });

    it("keeps Nest's own ValidationPipe working when a handler uses it", async () => {
      const client = await connect();
      const detailed = errorOf(await client.request({ event: 'nest-pipe', id: 1, data: { name: 'Ada', age: -1 } }));
      assert.equal(detailed.code, 'VALIDATION_FAILED');
      assert.deepEqual(detailed.details, [{ property: 'age', constraints: { min: 'age must not be less than 0' } }]);
      const flat = await client.request({ event: 'nest-pipe-default', id: 2, data: { name: 'Ada', age: -1 } });
      assert.equal(flat.id, 2);
      assert.equal(errorOf(flat).code, 'VALIDATION_FAILED');
      assert.match(errorOf(flat).message, /age must not be less than 0/);
      // Nest's pipe does not transform unless asked to, and ours stands aside for it.
      const ok = await client.request({ event: 'nest-pipe', id: 3, data: validProfile });
      assert.deepEqual(ok.data, { body: validProfile, className: 'Object' });
    });
  });

  describe('with module options', () => {
    it('takes the module defaults, which a handler still overrides', async () => {
      await start({ validation: { forbidNonWhitelisted: false } });
      const client = await connect();
      const stripped = await client.request({ event: 'profile', id: 1, data: { ...validProfile, extra: 1 } });
      assert.deepEqual(stripped.data, { body: validProfile, className: 'ProfileDto', addressClass: null });
    });

    it('turns validation off everywhere with validation: false', async () => {
      await start({ validation: false });
      const client = await connect();
      const reply = await client.request({ event: 'profile', id: 1, data: { name: 5 } });
      assert.deepEqual(reply.data, { body: { name: 5 }, className: 'Object', addressClass: null });
    });
  });
});
