import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import type { HistoryEntry, HistoryPage, StreamPosition } from './broker.interface.js';

/**
 * The Redis broker's history: per channel, a hash with the epoch and the last offset
 * (`<prefix>{<channel>}:m`) and a stream of the latest messages (`<prefix>{<channel>}:s`)
 * whose entry ids are `<offset>-0`. The braces keep both keys in one Redis Cluster slot.
 *
 * A publish with history is one script: it starts the epoch when the channel has none
 * (first use, or Redis lost or expired it), takes the next offset, appends to the stream
 * trimmed to at least the history size (`MAXLEN ~`: whole stream nodes go, so a little
 * more is kept, never less), moves both keys' expiry, and publishes. Two instances can
 * never get the same offset, and subscribers get messages in offset order.
 *
 * On the pub/sub channel every message has a one-character kind: `P<payload>` (plain) or
 * `H<offset>:<epoch>:<payload>` (kept in history), so any payload travels unchanged.
 */
export const PUBLISH_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[5]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 'p', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[1], 'H' .. offset .. ':' .. epoch .. ':' .. ARGV[2])
return {offset, epoch}
`;

/**
 * A history read, one script: the position (starting the epoch when there is none), and
 * with a `since` offset (ARGV[1], empty for none) the entries after it.
 */
export const HISTORY_SCRIPT = `
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o'))
if ARGV[1] == '' then
  return {epoch, offset, {}}
end
local since = tonumber(ARGV[1])
if since >= offset then
  return {epoch, offset, {}}
end
return {epoch, offset, redis.call('XRANGE', KEYS[2], '(' .. since .. '-0', '+')}
`;

/** The scripts, as ioredis's `defineCommand` adds them to the publisher connection. */
export interface ScriptedRedis extends Redis {
  rtPublish(
    meta: string,
    stream: string,
    channel: string,
    payload: string,
    size: string,
    ttlMs: string,
    epoch: string,
  ): Promise<[number, string]>;
  rtHistory(meta: string, stream: string, since: string, ttlMs: string, epoch: string): Promise<HistoryReply>;
}

/** `[epoch, last offset, [[id, [field, value, …]], …]]`. */
export type HistoryReply = [string, number, [string, string[]][]];

/**
 * Epochs to offer the scripts, which use one only when a channel has none: each is unique
 * (a random prefix per process and a counter), so a history recreated after a loss never
 * gets an epoch it had before, and no publish pays for random bytes.
 */
export class EpochCandidates {
  private readonly prefix = randomBytes(6).toString('base64url');
  private counter = 0;

  next(): string {
    return this.prefix + (++this.counter).toString(36);
  }
}

/** The keys of a channel's history: its hash and its stream, in one cluster slot. */
export function historyKeys(prefix: string, channel: string): [string, string] {
  const tag = `${prefix}{${channel}}`;
  return [`${tag}:m`, `${tag}:s`];
}

/** A pub/sub message's payload, and its position when it was kept in history. */
export function splitMessage(message: string): [string, StreamPosition | undefined] {
  if (message.charCodeAt(0) !== 72 /* H */) {
    return [message.slice(1), undefined];
  }
  const offsetEnd = message.indexOf(':');
  const epochEnd = message.indexOf(':', offsetEnd + 1);
  return [message.slice(epochEnd + 1), { offset: Number(message.slice(1, offsetEnd)), epoch: message.slice(offsetEnd + 1, epochEnd) }];
}

/** The page of a history read: complete when every entry after `since` is there, in this epoch. */
export function decodeHistoryReply([epoch, offset, raw]: HistoryReply, since: StreamPosition | undefined): HistoryPage {
  const position = { offset: Number(offset), epoch };
  if (!since) {
    return { position, complete: true, entries: [] };
  }
  const entries: HistoryEntry[] = raw.map(([id, fields]) => ({ offset: Number(id.slice(0, id.indexOf('-'))), payload: fields[1] }));
  const complete =
    since.epoch === epoch &&
    since.offset <= position.offset &&
    entries.length === position.offset - since.offset &&
    (entries.length === 0 || entries[0].offset === since.offset + 1);
  return { position, complete, entries: complete ? entries : [] };
}
