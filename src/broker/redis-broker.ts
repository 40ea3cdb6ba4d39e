import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import type { BrokerHealth, BrokerState, RealtimeBroker } from './broker.interface.js';

/** Options of {@link RedisBroker}: a URL, or an ioredis client to copy the settings of. */
export interface RedisBrokerOptions {
  /** `redis://[:password@]host:port[/db]`. Ignored when `client` is given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** An ioredis client whose settings to reuse; the broker makes two connections of its own from it. */
  client?: Redis;
  /** Prefix of every channel and key. Default `rt:`. */
  keyPrefix?: string;
  /**
   * How long presence entries live without a refresh; an instance refreshes its own every
   * third of it, so a killed instance's users leave presence at most this long after. Default 30000.
   */
  presenceTtlMs?: number;
  /** Publishes kept while Redis is unreachable, sent in order once it is back; more are dropped and counted. Default 1000. */
  maxPendingPublishes?: number;
}

const RETRY_CAP_MS = 2000;

/**
 * Redis pub/sub broker: rooms, user targeting and presence across every instance that
 * shares the Redis. An instance subscribes only to the channels it has local members for.
 * Presence lives in one sorted set per room (`<prefix>presence:<room>`) whose entries
 * (`<instance>|<member>`) carry their expiry as score and are refreshed by their instance.
 *
 * While Redis is unreachable nothing throws: local delivery goes on, publishes wait in a
 * bounded queue, health is `degraded`; once it is back, subscriptions and presence are
 * restored and the queue is flushed in order. Commands are never queued blindly by
 * ioredis (`enableOfflineQueue: false`), so memory stays bounded however long it is down.
 */
export class RedisBroker implements RealtimeBroker {
  private readonly logger = new Logger('RedisBroker');
  private readonly prefix: string;
  private readonly presenceTtlMs: number;
  private readonly maxPending: number;
  private readonly connectionOptions: RedisOptions & { url?: string };
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  private instanceId = '';
  private readonly channels = new Set<string>();
  private readonly present = new Map<string, Set<string>>();
  private readonly pending: [string, string][] = [];
  private refreshTimer: NodeJS.Timeout | undefined;
  private state: BrokerState = 'connecting';
  private detail: string | undefined;
  private everReady = false;
  /** Publishes dropped because Redis was unreachable and the pending queue was full. */
  droppedPublishes = 0;

  constructor(private readonly options: RedisBrokerOptions = {}) {
    this.prefix = options.keyPrefix ?? 'rt:';
    this.presenceTtlMs = options.presenceTtlMs ?? 30_000;
    this.maxPending = options.maxPendingPublishes ?? 1000;
    if (!Number.isSafeInteger(this.presenceTtlMs) || this.presenceTtlMs < 30) {
      throw new TypeError(`RedisBroker presenceTtlMs must be an integer of at least 30 ms, got ${String(options.presenceTtlMs)}`);
    }
    if (!Number.isSafeInteger(this.maxPending) || this.maxPending < 0) {
      throw new TypeError(`RedisBroker maxPendingPublishes must be a whole number, got ${String(options.maxPendingPublishes)}`);
    }
    this.connectionOptions = {
      ...(options.client ? options.client.options : {}),
      // Never buffer commands while disconnected: that queue has no bound.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      autoResubscribe: false,
      lazyConnect: true,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, RETRY_CAP_MS),
    };
  }

  async start(instanceId: string, onMessage: (channel: string, payload: string) => void): Promise<void> {
    this.instanceId = instanceId;
    const url = this.options.client ? undefined : (this.options.url ?? 'redis://127.0.0.1:6379');
    this.pub = url ? new Redis(url, this.connectionOptions) : new Redis(this.connectionOptions);
    this.sub = url ? new Redis(url, this.connectionOptions) : new Redis(this.connectionOptions);
    const prefixLength = this.prefix.length;
    this.sub.on('message', (channel: string, payload: string) => onMessage(channel.slice(prefixLength), payload));
    for (const [name, connection] of [['publisher', this.pub], ['subscriber', this.sub]] as const) {
      connection.on('ready', () => this.onReady(connection));
      connection.on('error', (error: Error) => this.onTrouble(`${name}: ${error.message}`));
      connection.on('close', () => this.onTrouble(`${name} connection closed`));
    }
    this.refreshTimer = setInterval(() => void this.refreshPresence(), Math.floor(this.presenceTtlMs / 3));
    this.refreshTimer.unref();
    // Connecting may fail now and succeed later: the retry strategy keeps trying, and the
    // application starts degraded rather than not at all.
    await Promise.all([this.pub.connect(), this.sub.connect()]).catch((error: unknown) => {
      this.onTrouble(`cannot reach Redis yet: ${error instanceof Error ? error.message : String(error)}`);
    });
  }

  publish(channel: string, payload: string): void {
    if (this.pub?.status === 'ready' && this.pending.length === 0) {
      this.pub.publish(this.prefix + channel, payload).catch((error: unknown) => this.onCommandFailed('publish', error));
      return;
    }
    if (this.pending.length < this.maxPending) {
      this.pending.push([channel, payload]);
    } else {
      this.droppedPublishes++;
      if (this.droppedPublishes === 1 || this.droppedPublishes % 1000 === 0) {
        this.logger.warn(`Redis unreachable: ${this.droppedPublishes} publishes dropped so far`);
      }
    }
  }

  async subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    if (this.sub?.status === 'ready') {
      await this.sub.subscribe(this.prefix + channel).catch((error: unknown) => this.onCommandFailed('subscribe', error));
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (this.channels.delete(channel) && this.sub?.status === 'ready') {
      await this.sub.unsubscribe(this.prefix + channel).catch((error: unknown) => this.onCommandFailed('unsubscribe', error));
    }
  }

  async addPresence(room: string, member: string): Promise<void> {
    let members = this.present.get(room);
    if (!members) {
      members = new Set();
      this.present.set(room, members);
    }
    members.add(member);
    if (this.pub?.status === 'ready') {
      const key = this.presenceKey(room);
      await this.pub
        .multi()
        .zadd(key, Date.now() + this.presenceTtlMs, this.entry(member))
        .pexpire(key, 2 * this.presenceTtlMs)
        .exec()
        .catch((error: unknown) => this.onCommandFailed('presence', error));
    }
  }

  async removePresence(room: string, member: string): Promise<void> {
    const members = this.present.get(room);
    members?.delete(member);
    if (members?.size === 0) {
      this.present.delete(room);
    }
    if (this.pub?.status === 'ready') {
      await this.pub.zrem(this.presenceKey(room), this.entry(member)).catch((error: unknown) => this.onCommandFailed('presence', error));
    }
  }

  async presence(room: string): Promise<string[]> {
    const local = [...(this.present.get(room) ?? [])];
    if (this.pub?.status !== 'ready') {
      // Degraded: what this instance knows is all there is to tell.
      return local;
    }
    const key = this.presenceKey(room);
    const now = Date.now();
    try {
      const results = await this.pub.multi().zremrangebyscore(key, '-inf', now).zrangebyscore(key, now, '+inf').exec();
      const entries = (results?.[1]?.[1] ?? []) as string[];
      return [...new Set(entries.map((entry) => entry.slice(entry.indexOf('|') + 1)))];
    } catch (error) {
      this.onCommandFailed('presence', error);
      return local;
    }
  }

  health(): BrokerHealth {
    return this.detail && this.state !== 'ok' && this.state !== 'closed'
      ? { type: 'redis', status: this.state, detail: this.detail }
      : { type: 'redis', status: this.state };
  }

  async close(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.state = 'closed';
    const pub = this.pub;
    if (pub?.status === 'ready') {
      const removal = pub.multi();
      for (const [room, members] of this.present) {
        for (const member of members) {
          removal.zrem(this.presenceKey(room), this.entry(member));
        }
      }
      await removal.exec().catch(() => undefined);
    }
    this.present.clear();
    this.channels.clear();
    await Promise.all(
      [pub, this.sub].map(async (connection) => {
        if (!connection) {
          return;
        }
        connection.removeAllListeners('close');
        connection.on('error', () => undefined);
        if (connection.status === 'ready') {
          await connection.quit().catch(() => connection.disconnect());
        } else {
          connection.disconnect();
        }
      }),
    );
  }

  private onReady(connection: Redis): void {
    if (this.state === 'closed') {
      return;
    }
    if (connection === this.sub && this.channels.size > 0) {
      this.sub.subscribe(...[...this.channels].map((channel) => this.prefix + channel)).catch((error: unknown) =>
        this.onCommandFailed('subscribe', error),
      );
    }
    if (connection === this.pub) {
      void this.refreshPresence();
      this.flushPending();
    }
    if (this.pub?.status === 'ready' && this.sub?.status === 'ready') {
      if (this.everReady && this.state !== 'ok') {
        this.logger.log('Redis is back: subscriptions and presence restored');
      }
      this.everReady = true;
      this.state = 'ok';
      this.detail = undefined;
    }
  }

  private flushPending(): void {
    const pending = this.pending.splice(0);
    for (const [channel, payload] of pending) {
      this.pub!.publish(this.prefix + channel, payload).catch((error: unknown) => this.onCommandFailed('publish', error));
    }
  }

  private async refreshPresence(): Promise<void> {
    if (this.pub?.status !== 'ready' || this.present.size === 0) {
      return;
    }
    const expiry = Date.now() + this.presenceTtlMs;
    const refresh = this.pub.multi();
    for (const [room, members] of this.present) {
      const key = this.presenceKey(room);
      for (const member of members) {
        refresh.zadd(key, expiry, this.entry(member));
      }
      refresh.pexpire(key, 2 * this.presenceTtlMs);
    }
    await refresh.exec().catch((error: unknown) => this.onCommandFailed('presence refresh', error));
  }

  private onTrouble(detail: string): void {
    if (this.state === 'closed') {
      return;
    }
    if (this.state === 'ok') {
      this.logger.warn(`Redis unreachable (${detail}): local delivery goes on, remote delivery resumes when it is back`);
    }
    this.state = 'degraded';
    this.detail = detail;
  }

  private onCommandFailed(command: string, error: unknown): void {
    const message = `${command} failed: ${error instanceof Error ? error.message : String(error)}`;
    if (this.pub?.status === 'ready' && this.sub?.status === 'ready') {
      // Redis answered with an error, but both connections are up: not an outage.
      this.logger.warn(message);
      return;
    }
    this.onTrouble(message);
  }

  private presenceKey(room: string): string {
    return `${this.prefix}presence:${room}`;
  }

  private entry(member: string): string {
    return `${this.instanceId}|${member}`;
  }
}
