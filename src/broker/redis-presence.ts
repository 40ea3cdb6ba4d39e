import type { ChainableCommander } from 'ioredis';
import type { RedisConnection } from './redis-link.js';
import { BrokerUnavailableError } from './broker-errors.js';

/** Entries refreshed per transaction. */
const REFRESH_BATCH = 1000;

/** Commands on one key for a transaction: the key, what to add to the transaction, and how many entries that is (default 1). */
type KeyWork = readonly [key: string, add: (batch: ChainableCommander) => void, entries?: number];

/** Runs a Redis command under the broker's deadline; a failure is judged by the broker, then rethrown. */
export type CommandRunner = <T>(command: string, call: () => Promise<T>) => Promise<T>;

/**
 * Moves a presence key's expiry to ARGV[1] ms from now unless it is already later: instances
 * may run with different TTLs, and one with a short TTL, alive or killed, must not make the
 * key (and the other instances' entries with it) expire sooner. A key without an expiry
 * (just made by the `ZADD` before it in the transaction) gets one; a missing key is left
 * alone. Redis 7's `PEXPIRE … GT` counts no expiry as infinite, so it would need `NX` in a
 * second call; this script also runs on Redis 6.2.
 *
 * It goes as `EVAL`, not as an ioredis-defined command (`EVALSHA`): inside `MULTI`, a script
 * Redis no longer holds (`SCRIPT FLUSH`, or a Redis that evicts scripts) fails in `EXEC`'s
 * replies, where ioredis does not send it again, so it would fail on every refresh.
 */
const EXTEND_EXPIRY_SCRIPT = `
local ttl = redis.call('PTTL', KEYS[1])
local wanted = tonumber(ARGV[1])
if ttl == -1 or (ttl >= 0 and ttl < wanted) then
  return redis.call('PEXPIRE', KEYS[1], wanted)
end
return 0
`;

/**
 * The Redis broker's presence: one sorted set per room (`<prefix>presence:<room>`) whose
 * entries (`<instance>|<member>`) carry their expiry as score, refreshed by their
 * instance. What this instance's members are is kept here too, so presence survives a
 * Redis that lost it, and removals made while Redis could not be told reach it later.
 *
 * Each call gets the Redis connection to use, or `undefined` when Redis is unreachable or
 * stalled: then it works from what the instance knows and catches up on {@link restore}.
 */
export class RedisPresence {
  private readonly present = new Map<string, Set<string>>();
  /**
   * Entries removed while Redis could not be told, `[room, member]` by `room\0member`: once
   * each, however often the member left and came back meanwhile, and none for a member
   * present again (the refresh puts its entry back).
   */
  private readonly removals = new Map<string, [string, string]>();
  private instanceId = '';

  constructor(
    private readonly prefix: string,
    private readonly ttlMs: number,
    private readonly attempt: CommandRunner,
    /** A transaction keeps to one room's key (a Redis Cluster's rule: one slot per transaction). */
    private readonly perKey = false,
  ) {}

  /** The instance whose entries these are (known once the broker starts). */
  start(instanceId: string): void {
    this.instanceId = instanceId;
  }

  /** Records `member` in `room` for this instance. */
  async add(redis: RedisConnection | undefined, room: string, member: string): Promise<void> {
    let members = this.present.get(room);
    if (!members) {
      members = new Set();
      this.present.set(room, members);
    }
    members.add(member);
    this.removals.delete(removalKey(room, member));
    // Otherwise the entry reaches Redis with the refresh once it is back.
    if (redis) {
      const key = this.key(room);
      const batch = redis.multi().zadd(key, Date.now() + this.ttlMs, this.entry(member));
      await this.attempt('presence', () => execAll(this.extendExpiry(batch, key))).catch(() => undefined); // judged by the broker; the refresh puts the entry back
    }
  }

  /** Removes this instance's entry of `member` in `room`. */
  async remove(redis: RedisConnection | undefined, room: string, member: string): Promise<void> {
    const members = this.present.get(room);
    members?.delete(member);
    if (members?.size === 0) {
      this.present.delete(room);
    }
    if (!redis) {
      this.removals.set(removalKey(room, member), [room, member]); // told to Redis once it is back
      return;
    }
    await this.attempt('presence', () => redis.zrem(this.key(room), this.entry(member))).catch(() => {
      if (!this.present.get(room)?.has(member)) {
        this.removals.set(removalKey(room, member), [room, member]);
      }
    });
  }

  /** The room's members on every instance; without Redis, this instance's. */
  async members(redis: RedisConnection | undefined, room: string, strict = false): Promise<string[]> {
    const local = [...(this.present.get(room) ?? [])];
    if (!redis) {
      if (strict) {
        throw new BrokerUnavailableError('Redis cannot be reached now: the presence of other instances is unknown');
      }
      return local;
    }
    const key = this.key(room);
    const now = Date.now();
    try {
      const results = await this.attempt('presence', () =>
        execAll(redis.multi().zremrangebyscore(key, '-inf', now).zrangebyscore(key, now, '+inf')),
      );
      const entries = (results[1]?.[1] ?? []) as string[];
      return [...new Set(entries.map((entry) => entry.slice(entry.indexOf('|') + 1)))];
    } catch (error) {
      if (strict) {
        throw error;
      }
      return local;
    }
  }

  /** Tells Redis what it lost or missed: removals made while away, then this instance's entries. */
  async restore(redis: RedisConnection): Promise<void> {
    const removals = [...this.removals];
    this.removals.clear();
    const failed = await this.inTransactions(
      redis,
      'presence',
      removals.map(([, [room, member]]) => [this.key(room), (batch) => batch.zrem(this.key(room), this.entry(member))]),
    );
    if (failed) {
      for (const [key, removal] of removals) {
        if (!this.present.get(removal[0])?.has(removal[1])) {
          this.removals.set(key, removal);
        }
      }
    }
    await this.refresh(redis);
  }

  /**
   * Moves this instance's entries' expiry forward (every third of the TTL), and each key's
   * to twice the TTL unless it is later already (see {@link EXTEND_EXPIRY_SCRIPT}), in
   * batches of {@link REFRESH_BATCH} entries: one huge transaction on a busy instance could
   * take longer than the command timeout and pass for a stalled Redis.
   */
  async refresh(redis: RedisConnection | undefined): Promise<void> {
    if (!redis || this.present.size === 0) {
      return;
    }
    const expiry = Date.now() + this.ttlMs;
    const work: KeyWork[] = [...this.present].map(([room, members]) => {
      const key = this.key(room);
      return [
        key,
        (batch) => {
          members.forEach((member) => batch.zadd(key, expiry, this.entry(member)));
          this.extendExpiry(batch, key);
        },
        members.size,
      ];
    });
    await this.inTransactions(redis, 'presence refresh', work); // failures are judged by the broker
  }

  /** Removes this instance's entries (the broker is closing) and forgets them. */
  async clear(redis: RedisConnection | undefined): Promise<void> {
    if (redis) {
      const work: KeyWork[] = [...this.present].map(([room, members]) => [
        this.key(room),
        (batch) => members.forEach((member) => batch.zrem(this.key(room), this.entry(member))),
        members.size,
      ]);
      await this.inTransactions(redis, 'presence', work);
    }
    this.present.clear();
  }

  /**
   * Runs work on keys in transactions of about {@link REFRESH_BATCH} entries (one huge
   * transaction on a busy instance could take longer than the command timeout and pass for
   * a stalled Redis), each on one key when {@link perKey}. Resolves with whether one failed.
   */
  private async inTransactions(redis: RedisConnection, command: string, work: readonly KeyWork[]): Promise<boolean> {
    const done: Promise<unknown>[] = [];
    let batch: ChainableCommander | undefined;
    let size = 0;
    let lastKey: string | undefined;
    for (const [key, add, entries = 1] of work) {
      if (batch && (size >= REFRESH_BATCH || (this.perKey && key !== lastKey))) {
        const full = batch;
        done.push(this.attempt(command, () => execAll(full)));
        batch = undefined;
        size = 0;
      }
      batch ??= redis.multi();
      add(batch);
      size += entries;
      lastKey = key;
    }
    if (batch) {
      const last = batch;
      done.push(this.attempt(command, () => execAll(last)));
    }
    const results = await Promise.allSettled(done);
    return results.some((result) => result.status === 'rejected');
  }

  /**
   * Adds to `batch` the move of `key`'s expiry to twice the TTL, so that a room whose
   * instances all died goes; never earlier than another instance set it.
   */
  private extendExpiry(batch: ChainableCommander, key: string): ChainableCommander {
    return batch.eval(EXTEND_EXPIRY_SCRIPT, 1, key, 2 * this.ttlMs);
  }

  private key(room: string): string {
    return `${this.prefix}presence:${room}`;
  }

  private entry(member: string): string {
    return `${this.instanceId}|${member}`;
  }
}

/**
 * Runs a transaction. Redis reports a command that failed inside one in `EXEC`'s replies,
 * which ioredis resolves with: this rejects with the first such error instead, so that the
 * broker judges it (and logs it) rather than the failure going unseen on every run.
 */
async function execAll(batch: ChainableCommander): Promise<[error: Error | null, result: unknown][]> {
  const results = await batch.exec();
  if (!results) {
    throw new Error('Redis discarded the transaction');
  }
  const failed = results.find(([error]) => error);
  if (failed) {
    throw failed[0]!;
  }
  return results;
}

/** A removal's key in {@link RedisPresence}'s queue. */
function removalKey(room: string, member: string): string {
  return `${room}\u0000${member}`;
}
