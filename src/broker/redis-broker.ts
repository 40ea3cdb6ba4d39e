import { Logger } from '@nestjs/common';
import { Redis, type RedisOptions } from 'ioredis';
import type { BrokerHealth, BrokerState, RealtimeBroker } from './broker.interface.js';
import { RedisPresence } from './redis-presence.js';

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
   * third of it, so a killed instance's users leave presence at most this long after.
   * Instances' clocks must agree to well within it. Default 30000.
   */
  presenceTtlMs?: number;
  /**
   * Publishes kept while Redis is unreachable (sent in order once it is back), and
   * publishes awaiting Redis's answer while it is slow; beyond it, publishes are dropped
   * and counted in `droppedPublishes`. Default 1000.
   */
  maxPendingPublishes?: number;
  /**
   * A command without an answer for this long fails, and the broker reports `degraded`
   * from then on; until Redis answers again, joins, presence and handshakes go on with what
   * this instance knows instead of waiting for it. So no handshake or join waits on a
   * stalled Redis longer than this. Default 1000.
   */
  commandTimeoutMs?: number;
  /** How often the broker checks that Redis still answers, in ms (a `PING`). Default 1000. */
  healthCheckMs?: number;
}

const RETRY_CAP_MS = 2000;
const RESTORE_RETRY_MS = 1000;
/** Pause between the pings that watch a stalled Redis for its return. */
const STALL_PROBE_PAUSE_MS = 100;

/**
 * Redis pub/sub broker: rooms, user targeting and presence across every instance that
 * shares the Redis. An instance subscribes only to the channels it has local members for.
 * Presence is kept by a `RedisPresence`.
 *
 * While Redis is unreachable or stalled nothing throws and memory stays bounded: local
 * delivery goes on, publishes wait in a bounded queue, health is `degraded`. Once it is
 * back, subscriptions are restored first, then presence (removals made meanwhile
 * included), then the queue is flushed in order, and only then is health `ok` again.
 * ioredis never queues commands blindly (`enableOfflineQueue: false`), and every
 * command has a timeout.
 */
export class RedisBroker implements RealtimeBroker {
  private readonly logger = new Logger('RedisBroker');
  private readonly prefix: string;
  private readonly presenceTtlMs: number;
  private readonly maxPending: number;
  private readonly healthCheckMs: number;
  private readonly connectionOptions: RedisOptions;
  private pub: Redis | undefined;
  private sub: Redis | undefined;
  /** Channels wanted, and those the current subscriber connection is subscribed to. */
  private readonly channels = new Set<string>();
  private readonly subscribed = new Set<string>();
  /** Counts the subscriber connection's drops: a reply from before one says nothing of now. */
  private subscriberGeneration = 0;
  private readonly presenceStore: RedisPresence;
  private readonly pending: [string, string][] = [];
  private inFlight = 0;
  private timers: NodeJS.Timeout[] = [];
  private state: BrokerState = 'connecting';
  private detail: string | undefined;
  /** Subscriptions are in place on the current subscriber connection. */
  private restored = false;
  /** The last health check or command timed out. */
  private stalled = false;
  private everReady = false;
  /** The next ping of a stalled Redis (see watchStall). */
  private stallWatch: NodeJS.Timeout | undefined;
  /** Publishes dropped because Redis was unreachable or slow and the queue was full. */
  droppedPublishes = 0;

  constructor(private readonly options: RedisBrokerOptions = {}) {
    this.prefix = options.keyPrefix ?? 'rt:';
    this.presenceTtlMs = options.presenceTtlMs ?? 30_000;
    this.maxPending = options.maxPendingPublishes ?? 1000;
    this.healthCheckMs = options.healthCheckMs ?? 1000;
    const commandTimeout = options.commandTimeoutMs ?? 1000;
    for (const [name, value, min] of [
      ['presenceTtlMs', this.presenceTtlMs, 30],
      ['maxPendingPublishes', this.maxPending, 0],
      ['commandTimeoutMs', commandTimeout, 1],
      ['healthCheckMs', this.healthCheckMs, 1],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new TypeError(`RedisBroker ${name} must be an integer of at least ${min}, got ${String(value)}`);
      }
    }
    this.presenceStore = new RedisPresence(this.prefix, this.presenceTtlMs, (command, error) => this.onCommandFailed(command, error));
    this.connectionOptions = {
      ...(options.client ? options.client.options : {}),
      // Never buffer commands while disconnected: that queue has no bound.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      autoResubscribe: false,
      lazyConnect: true,
      commandTimeout,
      keepAlive: 10_000,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, RETRY_CAP_MS),
    };
  }

  async start(instanceId: string, onMessage: (channel: string, payload: string) => void): Promise<void> {
    this.presenceStore.start(instanceId);
    const url = this.options.client ? undefined : (this.options.url ?? 'redis://127.0.0.1:6379');
    this.pub = url ? new Redis(url, this.connectionOptions) : new Redis(this.connectionOptions);
    this.sub = url ? new Redis(url, this.connectionOptions) : new Redis(this.connectionOptions);
    const prefixLength = this.prefix.length;
    this.sub.on('message', (channel: string, payload: string) => onMessage(channel.slice(prefixLength), payload));
    for (const [name, connection] of [
      ['publisher', this.pub],
      ['subscriber', this.sub],
    ] as const) {
      connection.on('ready', () => void this.onReady(connection));
      connection.on('error', (error: Error) => this.onTrouble(`${name}: ${error.message}`));
      connection.on('close', () => {
        if (connection === this.sub) {
          this.restored = false;
          this.subscribed.clear();
          this.subscriberGeneration++;
        }
        this.onTrouble(`${name} connection closed`);
      });
    }
    this.every(Math.floor(this.presenceTtlMs / 3), () => this.presenceStore.refresh(this.pub?.status === 'ready' ? this.pub : undefined));
    this.every(this.healthCheckMs, () => this.checkHealth());
    // Connecting may fail now and succeed later: the retry strategy keeps trying, and the
    // application starts degraded rather than not at all.
    await Promise.all([this.pub.connect(), this.sub.connect()]).catch((error: unknown) => {
      this.onTrouble(`cannot reach Redis yet: ${message(error)}`);
    });
  }

  publish(channel: string, payload: string): void {
    if (this.state === 'ok' && this.pending.length === 0 && this.inFlight < this.maxPending) {
      this.send(channel, payload);
    } else if (this.state !== 'ok' && this.pending.length < this.maxPending) {
      this.pending.push([channel, payload]);
    } else {
      this.droppedPublishes++;
      if (this.droppedPublishes === 1 || this.droppedPublishes % 1000 === 0) {
        this.logger.warn(`Redis unreachable or slow: ${this.droppedPublishes} publishes dropped so far`);
      }
    }
  }

  async subscribe(channel: string): Promise<void> {
    this.channels.add(channel);
    // Otherwise the channel is subscribed when Redis is back (restoreSubscriptions).
    if (this.sub?.status === 'ready' && this.restored && !this.stalled) {
      const generation = this.subscriberGeneration;
      await this.sub.subscribe(this.prefix + channel).then(
        () => generation === this.subscriberGeneration && this.channels.has(channel) && this.subscribed.add(channel),
        (error: unknown) => this.onCommandFailed('subscribe', error),
      );
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (this.channels.delete(channel) && this.sub?.status === 'ready' && this.restored && !this.stalled) {
      const generation = this.subscriberGeneration;
      await this.sub.unsubscribe(this.prefix + channel).then(
        () => generation === this.subscriberGeneration && !this.channels.has(channel) && this.subscribed.delete(channel),
        (error: unknown) => this.onCommandFailed('unsubscribe', error),
      );
    }
  }

  addPresence(room: string, member: string): Promise<void> {
    return this.presenceStore.add(this.usable(), room, member);
  }

  removePresence(room: string, member: string): Promise<void> {
    return this.presenceStore.remove(this.usable(), room, member);
  }

  presence(room: string): Promise<string[]> {
    return this.presenceStore.members(this.usable(), room);
  }

  health(): BrokerHealth {
    return this.detail && this.state !== 'ok' && this.state !== 'closed'
      ? { type: 'redis', status: this.state, detail: this.detail }
      : { type: 'redis', status: this.state };
  }

  async close(): Promise<void> {
    this.timers.forEach((timer) => clearInterval(timer));
    clearTimeout(this.stallWatch);
    this.state = 'closed';
    const pub = this.pub;
    await this.presenceStore.clear(pub?.status === 'ready' ? pub : undefined);
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

  private send(channel: string, payload: string): void {
    this.inFlight++;
    this.pub!.publish(this.prefix + channel, payload)
      .catch((error: unknown) => this.onCommandFailed('publish', error))
      .finally(() => this.inFlight--);
  }

  private async onReady(connection: Redis): Promise<void> {
    if (this.state === 'closed') {
      return;
    }
    if (connection === this.sub) {
      await this.restoreSubscriptions();
    } else {
      await this.presenceStore.restore(this.pub!);
    }
    this.updateState();
  }

  /**
   * Brings the subscriber connection's channels in line with the wanted ones: all of them
   * on a new connection, what changed meanwhile after a stall. Retried until it works.
   */
  private async restoreSubscriptions(): Promise<void> {
    const sub = this.sub!;
    const generation = this.subscriberGeneration;
    try {
      // Channels added or dropped while a SUBSCRIBE is in flight are caught up by the next round.
      while (!sameSet(this.subscribed, this.channels)) {
        const wanted = new Set(this.channels);
        const added = [...wanted].filter((channel) => !this.subscribed.has(channel));
        const dropped = [...this.subscribed].filter((channel) => !wanted.has(channel));
        if (added.length > 0) {
          await sub.subscribe(...added.map((channel) => this.prefix + channel));
          if (generation !== this.subscriberGeneration) {
            return; // the connection dropped meanwhile: its next 'ready' restores everything
          }
          added.forEach((channel) => this.subscribed.add(channel));
        }
        if (dropped.length > 0) {
          await sub.unsubscribe(...dropped.map((channel) => this.prefix + channel));
          if (generation !== this.subscriberGeneration) {
            return;
          }
          dropped.forEach((channel) => this.subscribed.delete(channel));
        }
      }
      this.restored = true;
    } catch (error) {
      this.onTrouble(`restoring subscriptions failed: ${message(error)}`);
      setTimeout(() => {
        if (this.sub === sub && sub.status === 'ready' && !this.restored && this.state !== 'closed') {
          void this.restoreSubscriptions().then(() => this.updateState());
        }
      }, RESTORE_RETRY_MS).unref();
    }
  }

  private updateState(): void {
    if (this.state === 'closed' || this.pub?.status !== 'ready' || this.sub?.status !== 'ready' || !this.restored || this.stalled) {
      return;
    }
    if (this.everReady && this.state !== 'ok') {
      this.logger.log('Redis is back: subscriptions and presence restored');
    }
    this.everReady = true;
    this.state = 'ok';
    this.detail = undefined;
    // Own subscriptions are back: what was kept can go now, in order.
    for (const [channel, payload] of this.pending.splice(0)) {
      this.send(channel, payload);
    }
  }

  /** A connection can stay "ready" while Redis no longer answers (stopped, network gone): ask it. */
  private async checkHealth(): Promise<void> {
    if (this.pub?.status !== 'ready') {
      return;
    }
    try {
      await this.pub.ping();
      if (this.stalled) {
        this.stalled = false;
        await this.presenceStore.restore(this.pub!);
        if (this.sub?.status === 'ready' && this.restored) {
          await this.restoreSubscriptions(); // what joins and leaves changed while it stalled
        }
        this.updateState();
      }
    } catch (error) {
      this.onCommandFailed('health check', error);
    }
  }

  /**
   * While Redis is stalled, asks it again and again (a ping, bounded by the command
   * timeout, then a short pause) so that recovery does not wait for the next health check.
   */
  private watchStall(): void {
    if (this.stallWatch || this.state === 'closed') {
      return;
    }
    this.stallWatch = setTimeout(() => {
      void this.checkHealth().finally(() => {
        this.stallWatch = undefined;
        if (this.stalled) {
          this.watchStall();
        }
      });
    }, STALL_PROBE_PAUSE_MS);
    this.stallWatch.unref();
  }

  private every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => void task(), ms);
    timer.unref();
    this.timers.push(timer);
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
    const text = `${command} failed: ${message(error)}`;
    if (/timed out/i.test(text)) {
      this.stalled = true; // answered by nothing: an outage even though the socket is open
      this.onTrouble(text);
      this.watchStall();
    } else if (this.pub?.status === 'ready' && this.sub?.status === 'ready') {
      // Redis answered with an error, but both connections are up: not an outage.
      this.logger.warn(text);
    } else {
      this.onTrouble(text);
    }
  }

  /** The publisher connection when Redis answers (ready and not stalled), else undefined. */
  private usable(): Redis | undefined {
    return this.pub?.status === 'ready' && !this.stalled ? this.pub : undefined;
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((item) => b.has(item));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
