import type { ContractType, JsonSchema, JsonValue } from './contract.decorators.js';

/** The owner of the envelope's own schemas (see `define`). */
const ENVELOPE = Symbol('envelope');

/** Where the document keeps its schemas. */
export const SCHEMAS_POINTER = '#/components/schemas/';

/**
 * The schemas of the classes a contract names: made by class-validator-jsonschema from
 * every class-validator rule (inherited ones and nested `@ValidateNested` + `@Type()`
 * classes included), then only those the contract reaches are kept.
 */
export class ContractSchemas {
  private readonly used = new Map<string, JsonSchema>();
  /** Who each name stands for: a class, or the envelope (`define`). */
  private readonly owners = new Map<string, unknown>();

  private constructor(private readonly known: Readonly<Record<string, JsonSchema>>) {}

  /**
   * Reads class-validator's and class-transformer's metadata (class-validator-jsonschema is
   * loaded now: it is needed only to make a contract).
   * @throws an Error saying what to install when class-validator-jsonschema is missing.
   */
  static async load(): Promise<ContractSchemas> {
    let converter: typeof import('class-validator-jsonschema');
    let storage: typeof import('class-transformer/cjs/storage.js');
    try {
      [converter, storage] = await Promise.all([import('class-validator-jsonschema'), import('class-transformer/cjs/storage.js')]);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new Error(
        `a realtime contract needs class-validator-jsonschema and class-transformer: npm install class-validator-jsonschema class-transformer (${why})`,
        { cause: error },
      );
    }
    const schemas = converter.validationMetadatasToSchemas({
      refPointerPrefix: SCHEMAS_POINTER,
      classTransformerMetadataStorage: storage.defaultMetadataStorage,
    });
    return new ContractSchemas(JSON.parse(JSON.stringify(schemas)) as Record<string, JsonSchema>);
  }

  /**
   * The schema of `type` in a message: a class by reference (its schema joins the
   * document's, with those it refers to), a JSON Schema as it is, nothing: anything.
   */
  of(type: ContractType | undefined): JsonSchema {
    if (type === undefined) {
      return {};
    }
    if (typeof type !== 'function') {
      this.collect(type);
      return type;
    }
    const name = type.name;
    const owner = this.owners.get(name);
    if (owner !== undefined && owner !== type) {
      throw clash(name, owner);
    }
    this.owners.set(name, type);
    if (!this.used.has(name)) {
      const schema = this.known[name] ?? { type: 'object', description: `${name}: a class without class-validator rules` };
      this.used.set(name, schema);
      this.collect(schema);
    }
    return { $ref: SCHEMAS_POINTER + name };
  }

  /** Adds a schema of the document's own (an envelope part), by name. */
  define(name: string, schema: JsonSchema): JsonSchema {
    this.owners.set(name, ENVELOPE);
    this.used.set(name, schema);
    return { $ref: SCHEMAS_POINTER + name };
  }

  /** The schemas the contract uses, sorted by name. */
  components(): Record<string, JsonSchema> {
    return Object.fromEntries([...this.used].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Keeps the classes `value` refers to (and theirs). */
  private collect(value: JsonValue): void {
    if (typeof value !== 'object' || value === null) {
      return;
    }
    if (Array.isArray(value)) {
      value.forEach((item) => this.collect(item));
      return;
    }
    for (const [key, item] of Object.entries(value as Record<string, JsonValue>)) {
      if (key === '$ref' && typeof item === 'string' && item.startsWith(SCHEMAS_POINTER)) {
        const name = item.slice(SCHEMAS_POINTER.length);
        const known = this.known[name];
        if (known && this.owners.get(name) === ENVELOPE) {
          throw clash(name, ENVELOPE); // a nested class named like an envelope schema: its reference would point at that one
        }
        if (known && !this.used.has(name)) {
          this.used.set(name, known);
          this.collect(known);
        }
      } else {
        this.collect(item);
      }
    }
  }
}

function clash(name: string, owner: unknown): Error {
  const what = owner === ENVELOPE ? "a schema of the protocol's envelope" : 'two classes';
  return new Error(`the realtime contract names two different things "${name}" (${what}): rename the class`);
}
