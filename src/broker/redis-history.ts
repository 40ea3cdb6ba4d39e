import type { RedisConnection } from './redis-link.js';
import { randomBytes } from 'node:crypto';
import type { HistoryEntry, HistoryPage, StreamPosition } from './broker.interface.js';

/**
 * Lua shared by both scripts: the channel's epoch in `epoch`; when the channel has none
 * (`started`), the candidate ARGV[3] becomes it, and a stream left from an older epoch goes.
 * `rolledBack` is the Lua of a condition under which the epoch starts over too.
 */
const epochOrStart = (rolledBack = 'false'): string => `
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local epoch = meta[1]
local started = not epoch or ${rolledBack}
if started then
  epoch = ARGV[3]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end`;

/**
 * The Redis broker's history: per channel, a hash with the epoch and the last offset
 * (`<prefix>{<channel>}:m`) and a stream of the latest messages (`<prefix>{<channel>}:s`)
 * whose entry ids are `<offset>-0`. The braces keep both keys in one Redis Cluster slot.
 *
 * Publishes with history are one script per batch (the publishes of one channel in one
 * turn of the event loop, see {@link HistoryBatches}): it starts the epoch when the channel has none
 * (first use, or Redis lost or expired it) or went back to an older state, takes the next offset, appends to the stream
 * trimmed to at least the history size (`MAXLEN ~`: whole stream nodes go, so a little
 * more is kept, never less), moves both keys' expiry when asked to (see
 * {@link ExpiryRefreshes}) or when the history is new, and publishes. Two instances can
 * never get the same offset, and subscribers get messages in offset order.
 *
 * On the pub/sub channel every message has a one-character kind: `P<payload>` (plain) or
 * `H<offset>:<epoch>:<payload>` (kept in history), so any payload travels unchanged. On a
 * Redis Cluster the channel (`<prefix>{<channel>}`, `SPUBLISH`) is in the keys' slot too.
 */
export function publishScript(command: 'PUBLISH' | 'SPUBLISH'): string {
  // The witness (ARGV[6], ARGV[7]): the latest position of this epoch the publishing
  // instance saw. Redis holding an older one means it came back from an older state (a
  // snapshot after a crash, a promoted replica that missed writes): it would hand out
  // offsets already delivered again, which members skip as duplicates and recoveries
  // replay wrongly. The epoch starts over instead.
  return `${epochOrStart('epoch == ARGV[6] and tonumber(meta[2]) < tonumber(ARGV[7])')}
local count = #ARGV - 7
local last = redis.call('HINCRBY', KEYS[1], 'o', count)
local first = last - count + 1
for i = 1, count do
  local offset = first + i - 1
  local payload = ARGV[7 + i]
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], offset .. '-0', 'p', payload)
  redis.call('${command}', ARGV[1], 'H' .. offset .. ':' .. epoch .. ':' .. payload)
end
if first == 1 or ARGV[4] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
end
return {first, epoch}
`;
}

/**
 * A history read, one script: the position (starting the epoch when there is none, or when
 * Redis holds an older state than the reading instance's witness, ARGV[4] and ARGV[5], as
 * a publish does), and with a `since` offset (ARGV[1], empty for none) the entries after
 * it. Without the witness, a join after such a rollback would be answered as recovered,
 * with the lost offsets missing from its replay.
 */
export const HISTORY_SCRIPT = `${epochOrStart('epoch == ARGV[4] and tonumber(meta[2]) < tonumber(ARGV[5])')}
if started then
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
export type ScriptedRedis = RedisConnection & {
  /**
   * ARGV: channel, size, epoch candidate, refresh ('0' | '1'), expiry ms, the witness's epoch
   * ('' for none) and offset, then the payloads; returns the first offset and the epoch.
   */
  rtPublish(meta: string, stream: string, ...argv: string[]): Promise<[number, string]>;
  /** ARGV: `since` offset ('' for none), expiry ms, epoch candidate, the witness's epoch ('' for none) and offset. */
  rtHistory(
    meta: string,
    stream: string,
    since: string,
    ttlMs: string,
    epoch: string,
    witnessEpoch: string,
    witnessOffset: string,
  ): Promise<HistoryReply>;
};

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

/**
 * When a publish moves its history's expiry. Moving it on every publish would double the
 * script's work; instead each instance moves it at most every tenth of the TTL per
 * channel, to 1.1 × the TTL, so the history still outlives the channel's last message by
 * at least the TTL (whichever instance published last). A history the script creates
 * gets its expiry at once.
 */
export class ExpiryRefreshes {
  /** channel → when this instance should move its expiry next */
  private readonly due = new Map<string, number>();

  constructor(private readonly ttlMs: number) {}

  /** The expiry to set, in ms, as the script takes it. */
  get expiryMs(): string {
    return String(Math.ceil(this.ttlMs * 1.1));
  }

  /** Whether this publish moves the expiry (`'1'`) or not (`'0'`). */
  take(channel: string, now = Date.now()): '0' | '1' {
    if ((this.due.get(channel) ?? 0) > now) {
      return '0';
    }
    this.due.set(channel, now + Math.floor(this.ttlMs / 10));
    return '1';
  }

  /** A publish that was to move the expiry failed: the next one moves it instead. */
  missed(channel: string): void {
    this.due.delete(channel);
  }

  /** Forgets channels whose refresh is past due (called now and then: the map stays small). */
  sweep(now = Date.now()): void {
    for (const [channel, due] of this.due) {
      if (due <= now) {
        this.due.delete(channel);
      }
    }
  }
}

/** Publishes of one channel in one script call at most: a script blocks Redis while it runs. */
const MAX_BATCH = 256;

interface Pending {
  readonly payload: string;
  readonly resolve: (position: StreamPosition) => void;
  readonly reject: (error: unknown) => void;
}

/** Sends one batch of a channel: the payloads in order; resolves with the first offset and the epoch. */
export type BatchSender = (channel: string, payloads: string[]) => Promise<[number, string]>;

/**
 * History publishes, batched: those of one channel within one turn of the event loop go
 * to Redis as one script call, which takes consecutive offsets for them in order. A busy
 * room's messages then cost one round trip and one script run per turn instead of one
 * each. Each publish still gets its own position, or the batch's error.
 */
export class HistoryBatches {
  private readonly pending = new Map<string, Pending[]>();
  private scheduled = false;

  constructor(private readonly sendBatch: BatchSender) {}

  /** Queues a publish for this turn's batch of its channel. */
  add(channel: string, payload: string): Promise<StreamPosition> {
    return new Promise((resolve, reject) => {
      let queue = this.pending.get(channel);
      if (!queue) {
        queue = [];
        this.pending.set(channel, queue);
      }
      queue.push({ payload, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    for (const [channel, queue] of this.pending) {
      this.pending.delete(channel);
      for (let start = 0; start < queue.length; start += MAX_BATCH) {
        const batch = queue.slice(start, start + MAX_BATCH);
        this.sendBatch(
          channel,
          batch.map((item) => item.payload),
        ).then(
          ([first, epoch]) => batch.forEach((item, index) => item.resolve({ offset: Number(first) + index, epoch })),
          (error: unknown) => batch.forEach((item) => item.reject(error)),
        );
      }
    }
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
