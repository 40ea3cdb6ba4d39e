/**
 * A map's value that is one item, or a `Set` of items once there are two. Most users have
 * one connection and most channels one subscriber, and a `Set` costs about 150 bytes even
 * with one item in it. Items must not be `Set`s themselves.
 */
export type OneOrSet<T> = T | Set<T>;

/** Where the items are kept by key: a `Map`, or a `WeakMap` for object keys. */
export interface OneOrSetStore<K, T> {
  get(key: K): OneOrSet<T> | undefined;
  set(key: K, value: OneOrSet<T>): unknown;
  delete(key: K): boolean;
}

/** Adds `item` under `key` (once: an item already there is not added again). */
export function addOne<K, T extends object>(map: OneOrSetStore<K, T>, key: K, item: T): void {
  const held = map.get(key);
  if (held === undefined) {
    map.set(key, item);
  } else if (held instanceof Set) {
    held.add(item);
  } else if (held !== item) {
    map.set(key, new Set([held, item]));
  }
}

/** Whether `item` is under `key`. */
export function hasOne<K, T extends object>(map: OneOrSetStore<K, T>, key: K, item: T): boolean {
  const held = map.get(key);
  return held === item || (held instanceof Set && held.has(item));
}

/** Removes `item` from under `key`, and `key` with its last item; true when `item` was there. */
export function removeOne<K, T extends object>(map: OneOrSetStore<K, T>, key: K, item: T): boolean {
  const held = map.get(key);
  if (held === item) {
    map.delete(key);
    return true;
  }
  if (!(held instanceof Set) || !held.delete(item)) {
    return false;
  }
  if (held.size === 1) {
    map.set(key, held.values().next().value!);
  }
  return true;
}

/** The items of a map's value, to iterate over. */
export function itemsOf<T extends object>(held: OneOrSet<T> | undefined): Iterable<T> {
  return held === undefined ? [] : held instanceof Set ? held : [held];
}
