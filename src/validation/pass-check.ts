import * as classValidator from 'class-validator';
import { IS_OPTIONAL, ValidationTypes, type ValidatorOptions } from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata.js';

/** What class-validator keeps of a constraint class: its validator and whether it is asynchronous. */
interface Constraint {
  readonly async: boolean;
  readonly instance: { validate(value: unknown, args: object): unknown };
}

/** Where a check finds a constraint class's validators. */
export interface ValidatorSource {
  getTargetValidatorConstraints(target: Function): readonly object[];
}

/** The test of an `@IsOptional()` rule: whether the property's other rules apply. */
type Condition = (object: object, value: unknown) => unknown;

/** One rule and the validators of its constraint class. */
interface Rule {
  readonly metadata: ValidationMetadata;
  readonly constraints: readonly Constraint[];
}

/** One property's rules, in the groups class-validator runs them in. */
interface PropertyRules {
  readonly property: string;
  /** `@IsOptional()`: the property is skipped unless all of them hold. */
  readonly conditions: readonly Condition[];
  /** `@IsDefined()`: run whatever the value and the skip options. */
  readonly defined: readonly Rule[];
  /** The other rules (`@IsString()`, `@MaxLength()`, …). */
  readonly custom: readonly Rule[];
}

/**
 * The names of class-validator's own decorators' rules (`isString`, `maxLength`, …): the
 * values of its upper-case string exports (`IS_STRING`, `MAX_LENGTH`, …).
 */
const BUILT_IN_NAMES: ReadonlySet<string> = new Set(
  Object.entries(classValidator)
    .filter(([key, value]) => /^[A-Z][A-Z0-9_]*$/.test(key) && typeof value === 'string')
    .map(([, value]) => value as string),
);

/**
 * The `validate` of the class class-validator's `registerDecorator` makes around a
 * validator object (`CustomConstraint`, for its own decorators too), white space removed.
 */
const DELEGATING_VALIDATE = 'validate(value,validationArguments){returnvalidator.validate(value,validationArguments);}';
/** What {@link keepsNoState} found of each constraint class. */
const stateless = new WeakMap<Function, boolean>();

/**
 * Whether a constraint class is the one class-validator's `registerDecorator` makes around
 * a validator object: named `CustomConstraint`, with no fields, its `validate` handing the
 * call to the validator object. Any instance of it does what any other does. An
 * application's class of that name is not taken for it.
 */
export function keepsNoState(target: Function): boolean {
  let known = stateless.get(target);
  if (known === undefined) {
    const validate = (target.prototype as { validate?: unknown } | undefined)?.validate;
    known =
      target.name === 'CustomConstraint' && typeof validate === 'function' && String(validate).replace(/\s+/g, '') === DELEGATING_VALIDATE;
    stateless.set(target, known);
  }
  return known;
}

/**
 * Whether a pass check may run a rule: `@Allow()`, `@IsOptional()`, and class-validator's
 * own validators (made by its `registerDecorator` from a validator object, under one of
 * its names), which are pure functions of the value and the rule's arguments, so running
 * them again for a payload that fails changes nothing. A constraint class or decorator of
 * the application's own may keep state (a nonce seen before, a counter), and
 * `@ValidateIf()`'s condition is the application's: such classes are left to
 * class-validator, as are nested, promise and `each` rules.
 */
function isBuiltIn(rule: ValidationMetadata): boolean {
  if (rule.each || rule.validateIf) {
    return false;
  }
  switch (rule.type) {
    case ValidationTypes.WHITELIST:
      return true;
    case ValidationTypes.CONDITIONAL_VALIDATION:
      return rule.name === IS_OPTIONAL; // unnamed in class-validator 0.14: left to it there
    case ValidationTypes.CUSTOM_VALIDATION:
    case ValidationTypes.IS_DEFINED:
      return rule.name !== undefined && BUILT_IN_NAMES.has(rule.name) && keepsNoState(rule.constraintCls);
    default:
      return false;
  }
}

/**
 * Tells, without class-validator's executor, whether an object passes its class's rules:
 * the same validators with the same arguments, in the same order, with the same skip and
 * whitelist options. It only says "passes" or "ask class-validator": an object it does not
 * pass is validated again by class-validator, which gives the errors (its validators run
 * twice then, which only pure ones may). The executor builds three filtered arrays, an
 * error object and closures per property of every object it validates; most payloads are
 * valid, and this allocates one argument object per validator call.
 *
 * Made only for classes whose rules are all class-validator's own (see {@link isBuiltIn}).
 */
export class PassCheck {
  private constructor(
    private readonly properties: readonly PropertyRules[],
    /** With the `whitelist` option: the properties that have rules; any other fails the check. */
    private readonly allowed: ReadonlySet<string> | undefined,
    private readonly options: ValidatorOptions,
  ) {}

  /**
   * A check for these rules of a class, or null when class-validator must run them itself.
   * `validators` gives a constraint class's validators (class-validator's metadata storage,
   * or a source that keeps their instances).
   */
  static of(rules: readonly ValidationMetadata[], options: ValidatorOptions, validators: ValidatorSource): PassCheck | null {
    if (rules.length === 0 || !rules.every(isBuiltIn)) {
      return null;
    }
    const byProperty = new Map<string, ValidationMetadata[]>();
    for (const rule of rules) {
      const list = byProperty.get(rule.propertyName) ?? [];
      list.push(rule);
      byProperty.set(rule.propertyName, list);
    }
    const withConstraints = (list: ValidationMetadata[]): Rule[] =>
      list.map((metadata) => ({
        metadata,
        constraints: validators.getTargetValidatorConstraints(metadata.constraintCls) as Constraint[],
      }));
    const properties = [...byProperty].map(([property, list]) => ({
      property,
      conditions: list
        .filter((rule) => rule.type === ValidationTypes.CONDITIONAL_VALIDATION)
        .map((rule) => rule.constraints[0] as Condition),
      defined: withConstraints(list.filter((rule) => rule.type === ValidationTypes.IS_DEFINED)),
      custom: withConstraints(list.filter((rule) => rule.type === ValidationTypes.CUSTOM_VALIDATION)),
    }));
    return new PassCheck(properties, options.whitelist ? new Set(byProperty.keys()) : undefined, options);
  }

  /** True when `object` passes every rule; false when it may not (then class-validator decides). */
  passes(object: Record<string, unknown>): boolean {
    if (this.allowed) {
      // An unknown property is stripped or refused: class-validator does either.
      for (const key of Object.keys(object)) {
        if (!this.allowed.has(key)) {
          return false;
        }
      }
    }
    const { skipUndefinedProperties, skipNullProperties, skipMissingProperties } = this.options;
    // What class-validator passes its validators as `targetName`: the same for every rule.
    const targetName = object.constructor ? object.constructor.name : undefined;
    for (const { property, conditions, defined, custom } of this.properties) {
      const value = object[property];
      if (!applies(conditions, object, value)) {
        continue;
      }
      if (!this.holds(object, targetName, value, defined)) {
        return false;
      }
      const skipped =
        (value === undefined && skipUndefinedProperties === true) ||
        (value === null && skipNullProperties === true) ||
        ((value === null || value === undefined) && skipMissingProperties === true);
      if (!skipped && !this.holds(object, targetName, value, custom)) {
        return false;
      }
    }
    return true;
  }

  private holds(object: Record<string, unknown>, targetName: string | undefined, value: unknown, rules: readonly Rule[]): boolean {
    for (const { metadata, constraints } of rules) {
      for (const constraint of constraints) {
        // As class-validator's synchronous validation: asynchronous constraints are not run.
        if (constraint.async) {
          continue;
        }
        const args = {
          targetName,
          property: metadata.propertyName,
          object,
          value,
          constraints: metadata.constraints,
        };
        const valid = constraint.instance.validate(value, args);
        if (!valid || typeof (valid as { then?: unknown }).then === 'function') {
          return false;
        }
      }
    }
    return true;
  }
}

/** Whether every condition of a property holds (class-validator then runs its other rules). */
function applies(conditions: readonly Condition[], object: object, value: unknown): boolean {
  for (const condition of conditions) {
    if (!condition(object, value)) {
      return false;
    }
  }
  return true;
}
