import 'reflect-metadata';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Type } from 'class-transformer';
import {
  Allow,
  getMetadataStorage,
  IsBoolean,
  IsDefined,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsString,
  MaxLength,
  Min,
  Validate,
  ValidateIf,
  ValidateNested,
  type ValidationError,
  ValidatorConstraint,
  type ValidatorConstraintInterface,
  validateSync,
  type ValidatorOptions,
  useContainer,
} from 'class-validator';
import { ValidationExecutor } from 'class-validator/cjs/validation/ValidationExecutor.js';
import { SyncValidator } from '../src/validation/sync-validator.js';

const OPTIONS: ValidatorOptions = {
  whitelist: true,
  forbidNonWhitelisted: true,
  forbidUnknownValues: true,
  validationError: { target: false, value: false },
};

class Inner {
  @IsInt()
  n!: number;
}

class Outer {
  @IsString()
  @MaxLength(5)
  name!: string;

  @ValidateNested()
  @Type(() => Inner)
  inner!: Inner;
}

/** A constraint class of the application's own, as `@Validate()` takes it. */
@ValidatorConstraint({ name: 'even' })
class EvenConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return typeof value === 'number' && value % 2 === 0;
  }
}

/** An asynchronous one: synchronous validation does not run it. */
@ValidatorConstraint({ name: 'checkedLater', async: true })
class CheckedLater implements ValidatorConstraintInterface {
  validate(value: unknown): Promise<boolean> {
    return Promise.resolve(value === 1);
  }
}

/** The application's own constraint class, named as class-validator's own are. */
@ValidatorConstraint({ name: 'okOnly' })
class CustomConstraint implements ValidatorConstraintInterface {
  validate(value: unknown): boolean {
    return value === 'ok';
  }
}

class Named {
  @Validate(CustomConstraint)
  v!: string;
}

class Message {
  @IsString()
  @MaxLength(10)
  text!: string;

  @IsOptional()
  @IsInt()
  @Min(0)
  count?: number;

  @IsDefined()
  @IsIn(['a', 'b'])
  kind!: string;

  @Allow()
  note?: unknown;

  @IsOptional()
  @IsNotEmpty()
  extra?: string;
}

class Conditional {
  @IsIn(['a', 'b'])
  kind!: string;

  @ValidateIf((conditional: Conditional) => conditional.kind === 'a')
  @IsNotEmpty()
  extra?: string;
}

class Reply extends Message {
  @IsBoolean()
  done!: boolean;
}

class Even {
  @Validate(EvenConstraint)
  n!: number;
}

class Checked {
  @Validate(CheckedLater)
  n!: number;
}

class Tags {
  @IsString({ each: true })
  tags!: string[];
}

class Grouped {
  @IsString({ groups: ['x'] })
  a!: string;

  @IsInt({ always: true })
  b!: number;
}

const MESSAGES: object[] = [
  { text: 'hi', kind: 'b' },
  { text: 'hi', kind: 'a', extra: 'e' },
  { text: 'hi', kind: 'a' },
  { text: 'hi', kind: 'a', extra: '' },
  { text: 'hi', kind: 'b', count: 3, note: { any: 1 } },
  { text: 'hi', kind: 'b', count: null },
  { text: 'hi', kind: 'b', count: -1 },
  { text: 'hi', kind: 'b', count: 1.5 },
  { text: 'much too long text', kind: 'b' },
  { text: 7, kind: 'b' },
  { text: null, kind: 'b' },
  { kind: 'b' },
  { text: 'hi' },
  { text: 'hi', kind: null },
  { text: 'hi', kind: 'c' },
  { text: 'hi', kind: 'b', unknown: true },
  {},
];

function make<T extends object>(type: new () => T, value: object): T {
  return Object.assign(new type(), value);
}

function outer(name: unknown, n: unknown, extra: object = {}): Outer {
  return make(Outer, { name, inner: make(Inner, { n }), ...extra });
}

/** What matters of an error tree: property, constraints and children. */
interface Shape {
  readonly property: string;
  readonly constraints: Record<string, string> | undefined;
  readonly children: Shape[];
}

function shape(errors: ValidationError[]): Shape[] {
  return errors.map((error) => ({ property: error.property, constraints: error.constraints, children: shape(error.children ?? []) }));
}

type Lookup = (...args: unknown[]) => unknown;
const storage = getMetadataStorage() as unknown as { getTargetValidationMetadatas: Lookup };
const lookup = storage.getTargetValidationMetadatas;

describe('SyncValidator (class-validator with rules looked up once per class)', () => {
  afterEach(() => {
    storage.getTargetValidationMetadatas = lookup;
  });

  it("gives class-validator's own errors, nested ones and forbidden properties included", () => {
    const validator = new SyncValidator(OPTIONS);
    const cases = [
      outer('ok', 1),
      outer('much too long', 1),
      outer(7, 'x'),
      outer('ok', 1.5, { extra: true }),
      make(Outer, { name: 'ok' }),
      make(Inner, { n: 2 }),
    ];
    for (const value of cases) {
      assert.deepEqual(shape(validator.validate(value)), shape(validateSync(value, OPTIONS)), JSON.stringify(value));
    }
    assert.equal(validator.validate(outer('ok', 1)).length, 0);
    assert.equal(validator.validate(outer(7, 'x')).length, 2);
  });

  it("answers as class-validator does for every kind of rule and option, and runs class-validator's executor only for what does not pass", () => {
    const executions = { count: 0 };
    const execute = ValidationExecutor.prototype.execute;
    ValidationExecutor.prototype.execute = function (this: unknown, ...args: Parameters<typeof execute>) {
      executions.count++;
      return execute.apply(this, args);
    };
    try {
      const cases: [new () => object, object[]][] = [
        [Message, MESSAGES],
        [Reply, [...MESSAGES.map((message) => ({ ...message, done: true })), { ...MESSAGES[0], done: 'yes' }]],
        [Even, [{ n: 2 }, { n: 3 }, {}, { n: null }]],
        [Checked, [{ n: 1 }, { n: 'x' }, {}]],
        [Tags, [{ tags: ['a', 'b'] }, { tags: ['a', 1] }, { tags: 'a' }]],
        [Conditional, [{ kind: 'a', extra: 'e' }, { kind: 'a' }, { kind: 'b' }, { kind: 'a', extra: '' }]],
        [Grouped, [{ a: 'x', b: 1 }, { a: 1, b: 1 }, { a: 'x', b: 'y' }, {}]],
      ];
      const optionSets: ValidatorOptions[] = [
        OPTIONS,
        { whitelist: true },
        { skipMissingProperties: true },
        { skipNullProperties: true, skipUndefinedProperties: true, forbidUnknownValues: false },
        { groups: ['x'] },
        { groups: ['x'], strictGroups: true, always: true },
        {},
      ];
      let valid = 0;
      const ranFor: string[] = [];
      for (const options of optionSets) {
        const validator = new SyncValidator(options);
        for (const [type, payloads] of cases) {
          for (const payload of payloads) {
            const [ours, theirs] = [make(type, structuredClone(payload)), make(type, structuredClone(payload))];
            const before = executions.count;
            const errors = shape(validator.validate(ours));
            const expected = shape(validateSync(theirs, options));
            const where = `${type.name} ${JSON.stringify(payload)} with ${JSON.stringify(options)}`;
            assert.deepEqual(errors, expected, where);
            assert.deepEqual({ ...ours }, { ...theirs }, `what is left of ${where}`); // the whitelist strips alike
            if (errors.length === 0) {
              valid++;
              if (executions.count - before > 1) {
                // More than validateSync's own execution: ours ran too.
                ranFor.push(`${type.name}${'unknown' in payload ? ' (stripped)' : ''}`);
              }
            }
          }
        }
      }
      // Valid objects need class-validator's executor only for a property the whitelist
      // strips, `each` (Tags), constraints of the application's own (Even, Checked) and
      // `@ValidateIf()` (Conditional).
      assert.ok(valid > 100, `${valid} valid cases`);
      assert.deepEqual(new Set(ranFor), new Set(['Message (stripped)', 'Reply (stripped)', 'Tags', 'Even', 'Checked', 'Conditional']));
      executions.count = 0;
      const validator = new SyncValidator(OPTIONS);
      assert.deepEqual(validator.validate(make(Message, { text: 'hi', kind: 'b' })), []);
      assert.deepEqual(validator.validate(make(Grouped, { a: 'x', b: 1 })), []);
      assert.equal(executions.count, 0, "valid objects of class-validator's own rules pass without the executor");
      assert.equal(validator.validate(make(Message, { text: 'hi', kind: 'c' })).length, 1);
      assert.equal(executions.count, 1, 'one that fails is validated by class-validator');
    } finally {
      ValidationExecutor.prototype.execute = execute;
    }
  });

  it("runs a constraint of the application's own once per validation, so one that keeps state answers as with class-validator", () => {
    const seen = new Set<unknown>();
    @ValidatorConstraint({ name: 'freshNonce' })
    class FreshNonce implements ValidatorConstraintInterface {
      validate(value: unknown): boolean {
        const fresh = !seen.has(value);
        seen.add(value);
        return fresh;
      }
    }
    class Signed {
      @Validate(FreshNonce)
      nonce!: string;

      @IsString()
      text!: string;
    }
    const validator = new SyncValidator(OPTIONS);
    assert.deepEqual(shape(validator.validate(make(Signed, { nonce: 'n1', text: 'hi' }))), []);
    // It fails on its text only: the nonce is new, and seen once.
    assert.deepEqual(shape(validator.validate(make(Signed, { nonce: 'n2', text: 7 }))), [
      { property: 'text', constraints: { isString: 'text must be a string' }, children: [] },
    ]);
    assert.deepEqual(
      shape(validator.validate(make(Signed, { nonce: 'n2', text: 'again' }))).map((error) => Object.keys(error.constraints ?? {})),
      [['freshNonce']],
    );
  });

  it("asks a container for class-validator's own validators once, and for the application's on every call", () => {
    // As Nest apps set it up: useContainer(app.select(AppModule), { fallbackOnErrors: true }),
    // whose get() throws for a class Nest does not provide.
    const asked = new Map<Function, number>();
    useContainer(
      {
        get(type: Function): never {
          asked.set(type, (asked.get(type) ?? 0) + 1);
          throw new Error(`Nest could not find ${type.name}`);
        },
      },
      { fallbackOnErrors: true },
    );
    /** How often the container was asked for class-validator's own constraint classes. */
    const askedForOwn = (): number =>
      [...asked]
        .filter(([type]) => type.name === 'CustomConstraint' && type !== CustomConstraint)
        .reduce((sum, [, count]) => sum + count, 0);
    try {
      const validator = new SyncValidator(OPTIONS);
      const payloads = [
        { text: 'hi', kind: 'b' },
        { text: 'much too long text', kind: 'c' },
      ];
      let ours = 0;
      for (let i = 0; i < 20; i++) {
        for (const payload of payloads) {
          const before = askedForOwn();
          const errors = shape(validator.validate(make(Message, { ...payload })));
          ours += askedForOwn() - before;
          assert.deepEqual(errors, shape(validateSync(make(Message, { ...payload }), OPTIONS)));
        }
      }
      asked.clear();
      validateSync(make(Message, payloads[1]!), OPTIONS);
      const perInvalid = askedForOwn();
      // Message has 7 rules of class-validator's own: asked for once each, for all 40
      // payloads; class-validator asks on every call, at least once for each rule it runs
      // (4 for this payload: 2 rules of text, 2 of kind; the optional ones are left out).
      assert.equal(ours, 7);
      assert.ok(perInvalid >= 4, `class-validator asked ${perInvalid} times for one payload`);
      // The application's own constraint classes, even one named as class-validator names its
      // own, are asked for as often as class-validator asks (once per use, on every call).
      const askedFor = (validate: (object: object) => unknown): Map<Function, number> => {
        asked.clear();
        for (let i = 0; i < 3; i++) {
          validate(make(Even, { n: 2 }));
          validate(make(Named, { v: 'no' }));
        }
        return new Map(asked);
      };
      const byOurs = askedFor((object) => validator.validate(object));
      const byClassValidator = askedFor((object) => validateSync(object, OPTIONS));
      assert.equal(byOurs.get(EvenConstraint), 3);
      assert.equal(byOurs.get(EvenConstraint), byClassValidator.get(EvenConstraint));
      assert.ok(byOurs.get(CustomConstraint)! >= 3);
      assert.equal(byOurs.get(CustomConstraint), byClassValidator.get(CustomConstraint));
    } finally {
      useContainer(undefined as unknown as { get(type: unknown): unknown });
    }
  });

  it('looks the rules of a class up once, however many objects of it are validated', () => {
    const validator = new SyncValidator(OPTIONS);
    const targets: unknown[] = [];
    storage.getTargetValidationMetadatas = function (this: unknown, ...args: unknown[]) {
      targets.push(args[0]);
      return lookup.apply(this, args);
    };
    for (let i = 0; i < 50; i++) {
      validator.validate(outer(i % 2 ? 'ok' : 'much too long', i));
    }
    assert.deepEqual(targets, [Outer, Inner]);
  });

  it('looks the rules up again once a rule is added to the class or an ancestor, or a class with rules is defined', () => {
    class Late {
      @IsString()
      a!: string;
    }
    const validator = new SyncValidator(OPTIONS);
    assert.equal(validator.validate(make(Late, { a: 'x', b: 'not an int' })).length, 1, 'b is not whitelisted yet');
    IsInt()(Late.prototype, 'b');
    assert.deepEqual(shape(validator.validate(make(Late, { a: 'x', b: 'not an int' }))), [
      { property: 'b', constraints: { isInt: 'b must be an integer number' }, children: [] },
    ]);
    class Child extends Late {
      @IsString()
      own!: string;
    }
    assert.deepEqual(shape(validator.validate(make(Child, { a: 'x', b: 1, own: 'y' }))), []);
    MaxLength(1)(Late.prototype, 'a'); // a rule added to the parent, after the child's first validation
    assert.deepEqual(
      shape(validator.validate(make(Child, { a: 'xy', b: 1, own: 'y' }))).map((error) => error.property),
      ['a'],
    );
    class Later extends Late {
      @IsString()
      c!: string;
    }
    assert.deepEqual(
      shape(validator.validate(make(Later, { a: 'x', b: 1, c: 2 }))).map((error) => error.property),
      ['c'],
    );
  });
});
