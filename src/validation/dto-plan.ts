import { TransformationType } from 'class-transformer';
import { defaultMetadataStorage } from 'class-transformer/cjs/storage.js';
import { getMetadataStorage, ValidationTypes } from 'class-validator';

/**
 * What validating a payload against one DTO class takes, worked out once per class from
 * the decorators' metadata so that the hot path does no reflection.
 */
export interface DtoPlan {
  /** The DTO class. */
  readonly type: new () => object;
  /**
   * Whether class-transformer must build the instance (`@Type`, `@Transform`, `@Expose`,
   * `@Exclude` on the class or its ancestors). Without it, the freshly parsed payload
   * becomes the instance itself, which is what `plainToInstance` would build.
   */
  readonly needsTransformer: boolean;
  /** Whether the class has no validation rule at all: class-validator then refuses every payload. */
  readonly undecorated: boolean;
  /** Whether any rule, here or in a nested DTO, may be asynchronous; then `validate()` is awaited. */
  readonly async: boolean;
}

const plans = new WeakMap<Function, DtoPlan>();
const NOT_VALIDATED: ReadonlySet<Function> = new Set<Function>([Object, Array, String, Number, Boolean, Symbol, BigInt, Function, Promise]);

/**
 * The plan for a handler parameter's type, or null when the type is no DTO class
 * (`unknown`, an interface, a primitive, `Object`, `Array`): such payloads pass as they are.
 */
export function planFor(type: unknown): DtoPlan | null {
  if (typeof type !== 'function' || NOT_VALIDATED.has(type)) {
    return null;
  }
  let plan = plans.get(type);
  if (!plan) {
    plan = makePlan(type as new () => object);
    plans.set(type, plan);
  }
  return plan;
}

function makePlan(type: new () => object): DtoPlan {
  const storage = getMetadataStorage();
  const rules = storage.getTargetValidationMetadatas(type, '', false, false);
  let hasDefaults = true;
  try {
    hasDefaults = Object.keys(new type()).length > 0;
  } catch {
    // A constructor that needs arguments: let class-transformer build it as it always would.
  }
  // Field initializers must run, as `plainToInstance` runs them, so such classes take the transformer.
  const properties = [...new Set(rules.map((rule) => rule.propertyName))];
  return {
    type,
    needsTransformer: hasDefaults || hasTransformerMetadata(type, properties),
    undecorated: rules.length === 0,
    async: mayBeAsync(type, new Set()),
  };
}

function hasTransformerMetadata(type: Function, properties: readonly string[]): boolean {
  const storage = defaultMetadataStorage;
  if (storage.getStrategy(type) !== 'none') {
    return true;
  }
  if (storage.getExposedMetadatas(type).length > 0 || storage.getExcludedMetadatas(type).length > 0) {
    return true;
  }
  return properties.some(
    (property) =>
      storage.findTypeMetadata(type, property) !== undefined ||
      storage.findTransformMetadatas(type, property, TransformationType.PLAIN_TO_CLASS).length > 0,
  );
}

/** True when a rule of `type`, or of a DTO nested in it through `@Type`, may return a promise. */
function mayBeAsync(type: Function, seen: Set<Function>): boolean {
  if (seen.has(type)) {
    return false;
  }
  seen.add(type);
  const storage = getMetadataStorage();
  for (const rule of storage.getTargetValidationMetadatas(type, '', false, false)) {
    if (rule.type === ValidationTypes.PROMISE_VALIDATION) {
      return true;
    }
    if (rule.type === ValidationTypes.CUSTOM_VALIDATION && storage.getTargetValidatorConstraints(rule.constraintCls).some((c) => c.async)) {
      return true;
    }
    if (rule.type === ValidationTypes.NESTED_VALIDATION) {
      for (const nested of nestedTypes(type, rule.propertyName)) {
        if (mayBeAsync(nested, seen)) {
          return true;
        }
      }
    }
  }
  return false;
}

/** The classes `@Type` gives a nested property (all subtypes of a discriminator). */
function nestedTypes(type: Function, property: string): Function[] {
  const metadata = defaultMetadataStorage.findTypeMetadata(type, property);
  if (!metadata) {
    return [];
  }
  const subTypes = metadata.options?.discriminator?.subTypes;
  if (subTypes) {
    return subTypes.map((subType) => subType.value);
  }
  try {
    const nested = metadata.typeFunction();
    return typeof nested === 'function' ? [nested] : [];
  } catch {
    return [];
  }
}
