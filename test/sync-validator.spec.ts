import 'reflect-metadata';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { Type } from 'class-transformer';
import {
  getMetadataStorage,
  IsInt,
  IsString,
  MaxLength,
  ValidateNested,
  type ValidationError,
  validateSync,
  type ValidatorOptions,
} from 'class-validator';
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
