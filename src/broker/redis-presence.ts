import type { Redis } from 'ioredis';

/** Entries refreshed per transaction. */
const REFRESH_BATCH = 1000;

/** Runs a Redis command under the broker's deadline; a failure is judged by the broker, then rethrown. */
export type CommandRunner = <T>(command: string, call: () => Promise<T>) => Promise<T>;

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
  /** Entries removed while Redis could not be told: `[room, member]`. */
  private readonly removals: [string, string][] = [];
  private instanceId = '';

  constructor(
    private readonly prefix: string,
    private readonly ttlMs: number,
    private readonly attempt: CommandRunner,
  ) {}

  /** The instance whose entries these are (known once the broker starts). */
  start(instanceId: string): void {
    this.instanceId = instanceId;
  }

  /** Records `member` in `room` for this instance. */
  async add(redis: Redis | undefined, room: string, member: string): Promise<void> {
    let members = this.present.get(room);
    if (!members) {
      members = new Set();
      this.present.set(room, members);
    }
    members.add(member);
    // Otherwise the entry reaches Redis with the refresh once it is back.
    if (redis) {
      const key = this.key(room);
      await this.attempt('presence', () =>
        redis
          .multi()
          .zadd(key, Date.now() + this.ttlMs, this.entry(member))
          .pexpire(key, 2 * this.ttlMs)
          .exec(),
      ).catch(() => undefined); // judged by the broker; the refresh puts the entry back
    }
  }

  /** Removes this instance's entry of `member` in `room`. */
  async remove(redis: Redis | undefined, room: string, member: string): Promise<void> {
    const members = this.present.get(room);
    members?.delete(member);
    if (members?.size === 0) {
      this.present.delete(room);
    }
    if (!redis) {
      this.removals.push([room, member]); // told to Redis once it is back
      return;
    }
    await this.attempt('presence', () => redis.zrem(this.key(room), this.entry(member))).catch(() => {
      this.removals.push([room, member]);
    });
  }

  /** The room's members on every instance; without Redis, this instance's. */
  async members(redis: Redis | undefined, room: string): Promise<string[]> {
    const local = [...(this.present.get(room) ?? [])];
    if (!redis) {
      return local;
    }
    const key = this.key(room);
    const now = Date.now();
    try {
      const results = await this.attempt('presence', () =>
        redis.multi().zremrangebyscore(key, '-inf', now).zrangebyscore(key, now, '+inf').exec(),
      );
      const entries = (results?.[1]?.[1] ?? []) as string[];
      return [...new Set(entries.map((entry) => entry.slice(entry.indexOf('|') + 1)))];
    } catch {
      return local;
    }
  }

  /** Tells Redis what it lost or missed: removals made while away, then this instance's entries. */
  async restore(redis: Redis): Promise<void> {
    const removals = this.removals.splice(0);
    if (removals.length > 0) {
      const batch = redis.multi();
      for (const [room, member] of removals) {
        batch.zrem(this.key(room), this.entry(member));
      }
      await this.attempt('presence', () => batch.exec()).catch(() => {
        this.removals.unshift(...removals);
      });
    }
    await this.refresh(redis);
  }

  /**
   * Moves this instance's entries' expiry forward (every third of the TTL), in batches of
   * {@link REFRESH_BATCH} entries: one huge transaction on a busy instance could take
   * longer than the command timeout and pass for a stalled Redis.
   */
  async refresh(redis: Redis | undefined): Promise<void> {
    if (!redis || this.present.size === 0) {
      return;
    }
    const expiry = Date.now() + this.ttlMs;
    let batch = redis.multi();
    let size = 0;
    const batches: Promise<unknown>[] = [];
    for (const [room, members] of this.present) {
      const key = this.key(room);
      for (const member of members) {
        batch.zadd(key, expiry, this.entry(member));
        size++;
      }
      batch.pexpire(key, 2 * this.ttlMs);
      if (size >= REFRESH_BATCH) {
        const full = batch;
        batches.push(this.attempt('presence refresh', () => full.exec()));
        batch = redis.multi();
        size = 0;
      }
    }
    if (size > 0) {
      const last = batch;
      batches.push(this.attempt('presence refresh', () => last.exec()));
    }
    await Promise.allSettled(batches); // failures are judged by the broker
  }

  /** Removes this instance's entries (the broker is closing) and forgets them. */
  async clear(redis: Redis | undefined): Promise<void> {
    if (redis) {
      const removal = redis.multi();
      for (const [room, members] of this.present) {
        for (const member of members) {
          removal.zrem(this.key(room), this.entry(member));
        }
      }
      await this.attempt('presence', () => removal.exec()).catch(() => undefined);
    }
    this.present.clear();
  }

  private key(room: string): string {
    return `${this.prefix}presence:${room}`;
  }

  private entry(member: string): string {
    return `${this.instanceId}|${member}`;
  }
}
