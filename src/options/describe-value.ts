/**
 * An option's value as a start-up error names it: a function (or class) by its name, a
 * `Set`, `Map` or `RegExp` by its kind, anything else as JSON (`JSON.stringify` alone gives
 * `undefined` for a function and `{}` for a Set).
 */
export function describeValue(value: unknown): string {
  if (typeof value === 'function') {
    return value.name ? `a function (${value.name})` : 'a function';
  }
  if (value instanceof Set || value instanceof Map || value instanceof RegExp) {
    return `a ${value.constructor.name}`;
  }
  return JSON.stringify(value) ?? String(value);
}
