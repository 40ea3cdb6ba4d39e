import type { AsyncApiDocument } from './asyncapi-document.js';
import type { JsonValue } from './contract.decorators.js';
import { SCHEMAS_POINTER } from './contract-schemas.js';

type Node = { readonly [key: string]: JsonValue };

/**
 * TypeScript types of an AsyncAPI document made by `RealtimeContract.asyncApi()`, as the
 * source of a module: a type per schema, and per gateway a contract type
 * `{ requests: { <event>: { data; reply } }; pushes: { <event>: data } }` (named after the
 * channel: `/chat` → `ChatContract`) for `RealtimeClient<ChatContract>`, which then
 * type-checks `request()` and `on()`.
 *
 * It reads the JSON Schema that class-validator rules give: types, `properties` and
 * `required`, `items`, `enum`, `const`, `oneOf` / `anyOf`, `additionalProperties` and
 * references between schemas; constraints TypeScript cannot say (lengths, patterns,
 * ranges) are left to the server's validation.
 */
export function asyncApiTypes(document: AsyncApiDocument): string {
  const info = document.info as Node;
  const lines = [
    `// The realtime contract of ${JSON.stringify(info.title)} ${String(info.version)}, generated from its AsyncAPI document: do not edit.`,
    '',
  ];
  const schemas = ((document.components as Node | undefined)?.schemas ?? {}) as Node;
  const names = new Set(Object.keys(schemas).map(identifier));
  for (const [name, schema] of Object.entries(schemas)) {
    const description = (schema as Node).description;
    if (typeof description === 'string') {
      lines.push(comment(description, ''));
    }
    lines.push(`export type ${identifier(name)} = ${typeOf(schema, '')};`, '');
  }
  const channels = (document.channels ?? {}) as Node;
  const operations = Object.values((document.operations ?? {}) as Node) as Node[];
  for (const [key, channel] of Object.entries(channels)) {
    const mine = operations.filter((operation) => ((operation.channel as Node).$ref as string) === `#/channels/${key}`);
    const requests: string[] = [];
    const pushes: string[] = [];
    for (const operation of mine) {
      const message = resolve(document, (operation.messages as Node[])[0]!.$ref as string) as Node;
      if (message.contentType === 'text/plain') {
        continue; // raw text: not an envelope
      }
      const payload = message.payload as Node;
      const event = ((payload.properties as Node).event as Node).const as string;
      const data = typeOf(((payload.properties as Node).data ?? {}) as JsonValue, '    ');
      if (operation.action === 'send') {
        pushes.push(`    ${property(event)}: ${data};`);
        continue;
      }
      const replyRef = ((operation.reply as Node | undefined)?.messages as Node[] | undefined)?.[0]?.$ref as string | undefined;
      const replyPayload = replyRef ? ((resolve(document, replyRef) as Node).payload as Node) : undefined;
      const reply = typeOf(((replyPayload?.properties as Node | undefined)?.data ?? {}) as JsonValue, '      ');
      const required = ((payload.required ?? []) as string[]).includes('data');
      requests.push(
        `    ${property(event)}: {`,
        `      data${required ? '' : '?'}: ${typeOf(((payload.properties as Node).data ?? {}) as JsonValue, '      ')};`,
        `      reply: ${reply};`,
        '    };',
      );
    }
    const title = (channel as Node).address as string;
    const name = uniqueName(contractName(key), names);
    lines.push(
      `/** The gateway at \`${title}\`: its requests (data and reply) and its pushes, for \`RealtimeClient<${name}>\`. */`,
      `export type ${name} = {`,
      ...(requests.length > 0 ? ['  requests: {', ...requests, '  };'] : ['  requests: Record<never, never>;']),
      ...(pushes.length > 0 ? ['  pushes: {', ...pushes, '  };'] : ['  pushes: Record<never, never>;']),
      '};',
      '',
    );
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function typeOf(schema: JsonValue, indent: string): string {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) {
    return 'unknown';
  }
  const node = schema as Node;
  if (typeof node.$ref === 'string') {
    return node.$ref.startsWith(SCHEMAS_POINTER) ? identifier(node.$ref.slice(SCHEMAS_POINTER.length)) : 'unknown';
  }
  if ('const' in node) {
    return literal(node.const);
  }
  if (Array.isArray(node.enum)) {
    return unionOf(node.enum.map(literal));
  }
  const union = (node.oneOf ?? node.anyOf) as JsonValue[] | undefined;
  if (Array.isArray(union)) {
    return unionOf(union.map((part) => typeOf(part, indent)));
  }
  const type = node.type;
  if (Array.isArray(type)) {
    return unionOf(type.map((one) => typeOf({ ...node, type: one }, indent)));
  }
  switch (type) {
    case 'string':
      return 'string';
    case 'number':
    case 'integer':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array':
      return node.items === undefined ? 'unknown[]' : `Array<${typeOf(node.items, indent)}>`;
    case 'object':
      return objectType(node, indent);
    default:
      return 'unknown';
  }
}

/** `a | b`, each member once; `string` alone when a string literal would be lost in it anyway. */
function unionOf(members: string[]): string {
  const unique = [...new Set(members)];
  return unique.includes('string') ? unique.filter((member) => !member.startsWith("'")).join(' | ') : unique.join(' | ');
}

/** A JSON value as a TypeScript literal type (strings in single quotes). */
function literal(value: JsonValue): string {
  if (typeof value !== 'string') {
    return JSON.stringify(value);
  }
  return `'${JSON.stringify(value).slice(1, -1).replace(/\\"/g, '"').replace(/'/g, "\\'")}'`;
}

function objectType(node: Node, indent: string): string {
  const properties = (node.properties ?? {}) as Node;
  const required = new Set((node.required ?? []) as string[]);
  const inner = `${indent}  `;
  const members = Object.entries(properties).map(
    ([name, schema]) => `${inner}${property(name)}${required.has(name) ? '' : '?'}: ${typeOf(schema, inner)};`,
  );
  const extra = node.additionalProperties;
  if (extra !== undefined && extra !== false) {
    members.push(`${inner}[key: string]: ${extra === true ? 'unknown' : typeOf(extra, inner)};`);
  }
  if (members.length === 0) {
    return 'Record<string, unknown>';
  }
  return `{\n${members.join('\n')}\n${indent}}`;
}

function resolve(document: AsyncApiDocument, ref: string): JsonValue {
  return ref
    .slice(2)
    .split('/')
    .reduce<JsonValue>((node, key) => (node as Node)[key.replace(/~1/g, '/').replace(/~0/g, '~')] ?? null, document);
}

function property(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : literal(name);
}

function identifier(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_$]/g, '_');
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}

/** `chat` → `ChatContract`, `admin-v2` → `AdminV2Contract`, `2fa` → `_2faContract`. */
function contractName(channel: string): string {
  return identifier(
    `${channel
      .split(/[^A-Za-z0-9]+/)
      .filter(Boolean)
      .map((part) => part[0]!.toUpperCase() + part.slice(1))
      .join('')}Contract`,
  );
}

/** `name`, or `name2`, `name3`… when taken; the one returned is taken from now on. */
function uniqueName(name: string, taken: Set<string>): string {
  let unique = name;
  for (let n = 2; taken.has(unique); n++) {
    unique = `${name}${n}`;
  }
  taken.add(unique);
  return unique;
}

function comment(text: string, indent: string): string {
  return `${indent}/** ${text.replace(/\*\//g, '*\\/')} */`;
}
