import { getMetadataStorage, type ValidationError, Validator, type ValidatorOptions, validateSync } from 'class-validator';
import { ValidationExecutor } from 'class-validator/cjs/validation/ValidationExecutor.js';
import type { ConstraintMetadata } from 'class-validator/types/metadata/ConstraintMetadata.js';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata.js';
import { keepsNoState, PassCheck } from './pass-check.js';

/** Rules by property, as class-validator groups them. */
type RulesByProperty = Record<string, ValidationMetadata[]>;

/** What an executor reads a class's rules through: class-validator's metadata storage. */
interface RuleSource {
  getTargetValidationMetadatas(
    target: Function,
    schema: string | undefined,
    always: boolean,
    strictGroups: boolean,
    groups?: string[],
  ): ValidationMetadata[];
  groupByPropertyName(rules: ValidationMetadata[]): RulesByProperty;
  getTargetValidatorConstraints(target: Function): ConstraintMetadata[];
}

/** The parts of class-validator's `ValidationExecutor` that its own `validateSync` uses. */
interface Executor {
  metadataStorage: RuleSource;
  ignoreAsyncValidations: boolean;
  execute(object: object, schema: string | undefined, errors: ValidationError[]): void;
  stripEmptyErrors(errors: ValidationError[]): ValidationError[];
}

/** A class's rules, and what they were worked out from. */
interface KnownRules {
  /** How many classes (and schemas) had rules, and how many of them this class, its ancestors and the schema had. */
  readonly classes: number;
  readonly own: number;
  readonly rules: ValidationMetadata[];
}

/**
 * class-validator's `validateSync` for one set of options, with the rules of each class
 * looked up once instead of on every call. class-validator gathers them by testing every
 * class it knows for inheritance and filtering their rules, for every object it validates
 * (4% of the server's time on an echo at one message in flight). A class's rules are
 * looked up again when the number of classes with rules, or the number of rules of the
 * class and its ancestors, has changed since.
 *
 * An object of a class with only class-validator's own rules is first run through a
 * {@link PassCheck}: the same validators without the executor's bookkeeping. Only what
 * does not pass it (or an object of a class with rules of the application's own, nested or
 * `each` rules) goes to class-validator's own executor
 * (`cjs/validation/ValidationExecutor.js`, in every class-validator version this package
 * supports) with that rule source, which gives the errors; if the metadata storage is not
 * the `Map` it relies on, it is `validateSync` itself.
 */
export class SyncValidator {
  private readonly validator = new Validator();
  private readonly source: RuleSource | undefined;
  /** By class, then by schema name (class-validator names the parent class when it validates a nested object). */
  private readonly known = new WeakMap<Function, Map<string, KnownRules>>();
  private readonly grouped = new WeakMap<ValidationMetadata[], RulesByProperty>();
  /** The pass check of a class's rules (null: class-validator runs them); a new lookup makes a new one. */
  private readonly checks = new WeakMap<ValidationMetadata[], PassCheck | null>();
  /** The validators of class-validator's own constraint classes, each instance taken once (see {@link constraintsOf}). */
  private readonly constraints = new WeakMap<Function, ConstraintMetadata[]>();
  /** The rules of the object validated, as the executor asks for them (see {@link passCheckOf}). */
  private readonly ownRules: ((target: Function) => ValidationMetadata[]) | undefined;

  constructor(private readonly options: ValidatorOptions) {
    const storage = getMetadataStorage() as unknown as RuleSource & { validationMetadatas?: unknown };
    const byClass = storage.validationMetadatas;
    if (byClass instanceof Map && typeof ValidationExecutor === 'function') {
      const source = Object.create(storage) as RuleSource;
      source.getTargetValidationMetadatas = (target, schema, always, strictGroups, groups) =>
        this.rulesOf(storage, byClass as Map<unknown, unknown[]>, target, schema ?? '', always, strictGroups, groups);
      source.groupByPropertyName = (rules) => this.groupedOf(storage, rules);
      source.getTargetValidatorConstraints = (target) => this.constraintsOf(storage, target);
      this.source = source;
      // The arguments class-validator's executor looks an object's own rules up with.
      const { always = false, strictGroups = false, groups } = options;
      this.ownRules = (target) => source.getTargetValidationMetadatas(target, undefined, always, strictGroups, groups);
    }
  }

  /** Validates `object` against its class's rules; resolves nothing asynchronous (as `validateSync`). */
  validate(object: object): ValidationError[] {
    if (!this.source) {
      return validateSync(object, this.options);
    }
    if (this.passCheckOf(object)?.passes(object as Record<string, unknown>)) {
      return [];
    }
    const executor = new ValidationExecutor(this.validator, this.options) as unknown as Executor;
    executor.metadataStorage = this.source;
    executor.ignoreAsyncValidations = true;
    const errors: ValidationError[] = [];
    executor.execute(object, undefined, errors);
    return executor.stripEmptyErrors(errors);
  }

  /** The pass check of `object`'s class, made on its first validation and again when its rules change. */
  private passCheckOf(object: object): PassCheck | null {
    const rules = this.ownRules!(object.constructor);
    let check = this.checks.get(rules);
    if (check === undefined) {
      check = PassCheck.of(rules, this.options, this.source!);
      this.checks.set(rules, check);
    }
    return check;
  }

  /**
   * The validators of a constraint class. class-validator asks its container for the
   * class's instance on every call; with Nest's `useContainer(app.select(AppModule),
   * { fallbackOnErrors: true })` each such call throws inside Nest and falls back, about 8
   * µs a rule. The classes class-validator makes for its own decorators (and for
   * `registerDecorator` with a validator object) have no state of their own (see
   * {@link keepsNoState}), so their instance is taken once, at the first validation that
   * needs it; a constraint class of the application's own is asked for on every call, as
   * class-validator does (its container may scope it).
   */
  private constraintsOf(storage: RuleSource, target: Function): ConstraintMetadata[] {
    const all = storage.getTargetValidatorConstraints(target);
    if (!keepsNoState(target)) {
      return all;
    }
    let kept = this.constraints.get(target);
    if (kept?.length !== all.length) {
      kept = all.map((constraint) => Object.create(constraint, { instance: { value: constraint.instance } }) as ConstraintMetadata);
      this.constraints.set(target, kept);
    }
    return kept;
  }

  private rulesOf(
    storage: RuleSource,
    byClass: Map<unknown, unknown[]>,
    target: Function,
    schema: string,
    always: boolean,
    strictGroups: boolean,
    groups: string[] | undefined,
  ): ValidationMetadata[] {
    const classes = byClass.size;
    let own = schema ? (byClass.get(schema)?.length ?? 0) : 0;
    // The class's rules and its ancestors' (a short chain): a rule added to any of them counts.
    for (let type: unknown = target; typeof type === 'function' && type !== Function.prototype; type = Object.getPrototypeOf(type)) {
      own += byClass.get(type)?.length ?? 0;
    }
    let bySchema = this.known.get(target);
    let known = bySchema?.get(schema);
    if (!known || known.classes !== classes || known.own !== own) {
      // The other arguments come from this validator's options: the same on every call.
      known = { classes, own, rules: storage.getTargetValidationMetadatas(target, schema || undefined, always, strictGroups, groups) };
      if (!bySchema) {
        bySchema = new Map();
        this.known.set(target, bySchema);
      }
      bySchema.set(schema, known);
    }
    return known.rules;
  }

  private groupedOf(storage: RuleSource, rules: ValidationMetadata[]): RulesByProperty {
    let grouped = this.grouped.get(rules);
    if (!grouped) {
      grouped = storage.groupByPropertyName(rules);
      this.grouped.set(rules, grouped);
    }
    return grouped;
  }
}
