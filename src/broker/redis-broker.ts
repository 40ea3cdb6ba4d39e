import { Logger } from '@nestjs/common';
import type { RedisOptions } from 'ioredis';
import { checkKeyPrefix, type RedisBrokerOptions } from './redis-broker-options.js';
import { BrokerUnavailableError, messageOf } from './broker-errors.js';
import { BrokerResilience } from './broker-resilience.js';
import type {
  BrokerHealth,
  BrokerMessageListener,
  HistoryPage,
  HistoryPolicy,
  RealtimeBroker,
  StreamPosition,
} from './broker.interface.js';
import { type RedisConnection, RedisLink, SubscriberWatch } from './redis-link.js';
import { RedisPresence } from './redis-presence.js';
import { RedisSubscriptions } from './redis-subscriptions.js';
import {
  decodeHistoryReply,
  EpochCandidates,
  ExpiryRefreshes,
  HistoryBatches,
  HISTORY_SCRIPT,
  historyKeys,
  publishScript,
  type ScriptedRedis,
  splitMessage,
} from './redis-history.js';

/** The pause before a catch-up after shard subscribers came back; it doubles while they keep coming back, up to the most. */
const RESUBSCRIBED_CATCH_UP_MS = 1000;
const RESUBSCRIBED_CATCH_UP_MAX_MS = 30_000;
/** After this long without one, a catch-up waits the shortest pause again. */
const RESUBSCRIBED_QUIET_MS = 60_000;

/**
 * Redis pub/sub broker: rooms, user targeting and presence across every instance that
 * shares the Redis (one server, or a Redis Cluster with sharded pub/sub: see
 * `RedisBrokerOptions.cluster`). An instance subscribes only to the channels it has local
 * members for.
 * Presence is kept by a `RedisPresence`, outages are handled by a `BrokerResilience`.
 *
 * While Redis is unreachable or stalled nothing throws and memory stays bounded: local
 * delivery goes on, publishes wait in a bounded queue, health is `degraded`. Once it is
 * back, subscriptions are restored first, then presence (removals made meanwhile
 * included), then the queue is flushed in order, and only then is health `ok` again.
 * ioredis never queues commands blindly (`enableOfflineQueue: false`), and every
 * command has a deadline.
 */
export class RedisBroker implements RealtimeBroker {
  private readonly prefix: string;
  private readonly presenceTtlMs: number;
  private readonly link: RedisLink;
  private readonly resilience: BrokerResilience;
  private pub: RedisConnection | undefined;
  private sub: RedisConnection | undefined;
  /** A catch-up after shard subscribers came back is due; the pause before the next, and when the last ran. */
  private catchUpTimer: NodeJS.Timeout | undefined;
  private catchUpPauseMs = RESUBSCRIBED_CATCH_UP_MS;
  private lastCatchUpAt = 0;
  /** The channels wanted, and those the subscriber connection has. */
  private readonly subscriptions: RedisSubscriptions;
  /** Per subscribed channel with history, the latest position seen here (see {@link saw}). */
  private readonly seen = new Map<string, StreamPosition>();
  private readonly presenceStore: RedisPresence;
  private refreshTimer: NodeJS.Timeout | undefined;
  private onRestored: (() => void) | undefined;
  private readonly epochs = new EpochCandidates();
  /** Expiry refreshes of history keys, per history TTL (one, in practice). */
  private readonly refreshes = new Map<number, ExpiryRefreshes>();
  private readonly batches = new Map<string, HistoryBatches>();
  private readonly logger = new Logger('RedisBroker');
  private readonly subscriberWatch = new SubscriberWatch(this.logger);

  constructor(private readonly options: RedisBrokerOptions = {}) {
    this.prefix = options.keyPrefix ?? 'rt:';
    checkKeyPrefix(this.prefix, options.cluster !== undefined, (line) => this.logger.warn(line));
    this.presenceTtlMs = options.presenceTtlMs ?? 30_000;
    const maxPending = options.maxPendingPublishes ?? 1000;
    const healthCheckMs = options.healthCheckMs ?? 1000;
    const commandTimeoutMs = options.commandTimeoutMs ?? 1000;
    for (const [name, value, min] of [
      ['presenceTtlMs', this.presenceTtlMs, 30],
      ['maxPendingPublishes', maxPending, 0],
      ['commandTimeoutMs', commandTimeoutMs, 1],
      ['healthCheckMs', healthCheckMs, 1],
    ] as const) {
      if (!Number.isSafeInteger(value) || value < min) {
        throw new TypeError(`RedisBroker ${name} must be an integer of at least ${min}, got ${String(value)}`);
      }
    }
    this.resilience = new BrokerResilience(
      {
        connected: () => this.pub?.status === 'ready' && this.sub?.status === 'ready',
        probe: () => {
          const pong = this.pub!.ping();
          this.link.keepsSubscriptions || this.subscriberWatch.check(this.sub, pong, commandTimeoutMs); // a cluster's: ioredis's own
          return pong;
        },
        restore: () => this.restore(),
        send: (channel, payload, history) => this.send(channel, payload, history),
        restored: () => this.onRestored?.(),
      },
      { name: 'Redis', maxPending, commandTimeoutMs, healthCheckMs, logger: this.logger },
    );
    const connectionOptions: RedisOptions = {
      // Never buffer commands while disconnected: that queue has no bound.
      enableOfflineQueue: false,
      // A command sent and not answered when the connection drops fails then, and is never
      // sent again on the next connection: Redis may have run it already (a publish would
      // take a second offset, and reach every member twice).
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      autoResubscribe: false,
      lazyConnect: true,
      // Deadlines are the broker's own (BrokerResilience.attempt), recognised by type.
      commandTimeout: undefined,
      keepAlive: 10_000,
    };
    this.link = RedisLink.for(options, this.prefix, connectionOptions);
    this.subscriptions = new RedisSubscriptions(this.link, this.resilience);
    this.presenceStore = new RedisPresence(
      this.prefix,
      this.presenceTtlMs,
      (command, call) => this.resilience.attempt(command, call),
      this.link.perKeyTransactions,
    );
  }

  /** Publishes refused because Redis was unreachable or slow and the queue was full. */
  get droppedPublishes(): number {
    return this.resilience.dropped;
  }

  async start(instanceId: string, onMessage: BrokerMessageListener, onRestored?: () => void): Promise<void> {
    this.presenceStore.start(instanceId);
    this.onRestored = onRestored;
    this.pub = this.link.open(false);
    this.sub = this.link.open(true);
    this.pub.defineCommand('rtPublish', { numberOfKeys: 2, lua: publishScript(this.link.publishCommand) });
    this.pub.defineCommand('rtHistory', { numberOfKeys: 2, lua: HISTORY_SCRIPT });
    this.link.onMessage(this.sub, (name, message) => {
      const [payload, position] = splitMessage(message);
      const channel = this.link.channelOf(name);
      if (position) {
        this.saw(channel, position);
      }
      onMessage(channel, payload, position);
    });
    for (const [name, connection] of [
      ['publisher', this.pub],
      ['subscriber', this.sub],
    ] as const) {
      connection.on('close', () => {
        if (connection === this.sub && !this.link.keepsSubscriptions) {
          this.subscriptions.dropped();
        }
      });
      this.link.watch(connection, name, {
        up: () => this.resilience.up(),
        down: (reason) => this.resilience.down(reason),
        resubscribed: () => this.resubscribed(),
      });
    }
    this.refreshTimer = setInterval(
      () => {
        void this.presenceStore.refresh(this.resilience.answering ? this.pub : undefined);
        this.refreshes.forEach((refreshes) => refreshes.sweep());
      },
      Math.floor(this.presenceTtlMs / 3),
    );
    this.refreshTimer.unref();
    this.resilience.start();
    // Connecting may fail now and succeed later: the retry strategy keeps trying, and the
    // application starts degraded rather than not at all.
    await Promise.all([this.pub.connect(), this.sub.connect()]).then(
      () => this.resilience.up(), // resolves once subscriptions and presence are in place
      (error: unknown) => this.resilience.down(`cannot reach Redis yet: ${messageOf(error)}`),
    );
  }

  publish(channel: string, payload: string, history?: HistoryPolicy): Promise<StreamPosition | undefined> {
    return this.resilience.publish(channel, payload, history);
  }

  async history(channel: string, since: StreamPosition | undefined, history: HistoryPolicy): Promise<HistoryPage> {
    const pub = this.usable();
    if (!pub) {
      throw new BrokerUnavailableError('Redis cannot be asked for history now');
    }
    const [meta, stream] = historyKeys(this.prefix, channel);
    const witness = this.seen.get(channel);
    try {
      const reply = await this.resilience.attempt('history', () =>
        (pub as ScriptedRedis).rtHistory(
          meta,
          stream,
          since ? String(since.offset) : '',
          String(history.ttlMs),
          this.epochs.next(),
          witness?.epoch ?? '',
          String(witness?.offset ?? 0),
        ),
      );
      return decodeHistoryReply(reply, since);
    } catch (error) {
      throw new BrokerUnavailableError(`Redis did not answer the history read: ${messageOf(error)}`);
    }
  }

  async subscribe(channel: string): Promise<void> {
    this.subscriptions.wanted.add(channel);
    // Otherwise the channel is subscribed when Redis is back (restore).
    if (this.resilience.state === 'ok' && this.resilience.answering) {
      await this.subscriptions.change('subscribe', [channel], this.sub!).catch(() => undefined); // judged by the resilience; the next restore catches up
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    this.seen.delete(channel);
    if (this.subscriptions.wanted.delete(channel) && this.resilience.state === 'ok' && this.resilience.answering) {
      await this.subscriptions.change('unsubscribe', [channel], this.sub!).catch(() => undefined);
    }
  }

  addPresence(room: string, member: string): Promise<void> {
    return this.presenceStore.add(this.usable(), room, member);
  }

  removePresence(room: string, member: string): Promise<void> {
    return this.presenceStore.remove(this.usable(), room, member);
  }

  presence(room: string, options?: { strict?: boolean }): Promise<string[]> {
    return this.presenceStore.members(this.usable(), room, options?.strict === true);
  }

  health(): BrokerHealth {
    return this.resilience.health('redis');
  }

  async close(): Promise<void> {
    clearInterval(this.refreshTimer);
    clearTimeout(this.catchUpTimer);
    const pub = this.pub;
    const answering = this.resilience.answering;
    this.resilience.close();
    await this.presenceStore.clear(answering ? pub : undefined);
    this.subscriptions.wanted.clear();
    await Promise.all(
      [pub, this.sub].map(async (connection) => {
        if (!connection) {
          return;
        }
        connection.removeAllListeners('close');
        connection.on('error', () => undefined);
        if (connection.status === 'ready' && answering) {
          await this.resilience.attempt('quit', () => connection.quit()).catch(() => connection.disconnect());
        } else {
          connection.disconnect();
        }
      }),
    );
  }

  /** One publish: plain, or through the script that gives it the channel's next offset and keeps it in history. */
  private async send(channel: string, payload: string, history: HistoryPolicy | undefined): Promise<StreamPosition | undefined> {
    const pub = this.pub!;
    if (!history) {
      await this.link.publish(pub, this.link.channelName(channel), `P${payload}`);
      return undefined;
    }
    return this.batchesFor(history).add(channel, payload);
  }

  /** The batches of history publishes of one policy (one, in practice), each sent as one script call. */
  private batchesFor(history: HistoryPolicy): HistoryBatches {
    const key = `${history.size}:${history.ttlMs}`;
    let batches = this.batches.get(key);
    if (!batches) {
      const refreshes = this.refreshesFor(history.ttlMs);
      batches = new HistoryBatches((channel, payloads) => {
        const [meta, stream] = historyKeys(this.prefix, channel);
        const witness = this.seen.get(channel);
        const refresh = refreshes.take(channel);
        const argv = [
          this.link.channelName(channel),
          String(history.size),
          this.epochs.next(),
          refresh,
          refreshes.expiryMs,
          witness?.epoch ?? '',
          String(witness?.offset ?? 0),
        ];
        return (this.pub as ScriptedRedis).rtPublish(meta, stream, ...argv, ...payloads).then(
          (reply) => {
            this.saw(channel, { offset: Number(reply[0]) + payloads.length - 1, epoch: reply[1] });
            return reply;
          },
          (error: unknown) => {
            if (refresh === '1') {
              refreshes.missed(channel); // or the history would expire up to a tenth of its TTL early
            }
            throw error;
          },
        );
      });
      this.batches.set(key, batches);
    }
    return batches;
  }

  /** Keeps the latest position of a subscribed channel seen here (published or received): each publish's witness (see `publishScript`). */
  private saw(channel: string, position: StreamPosition): void {
    const known = this.seen.get(channel);
    if (this.subscriptions.wanted.has(channel) && (known?.epoch !== position.epoch || position.offset > known.offset)) {
      this.seen.set(channel, position);
    }
  }

  private refreshesFor(ttlMs: number): ExpiryRefreshes {
    let refreshes = this.refreshes.get(ttlMs);
    if (!refreshes) {
      refreshes = new ExpiryRefreshes(ttlMs);
      this.refreshes.set(ttlMs, refreshes);
    }
    return refreshes;
  }

  /** What Redis must hold again after an outage or a stall: presence, then subscriptions. */
  private async restore(): Promise<void> {
    if (this.pub?.status === 'ready') {
      await this.presenceStore.restore(this.pub);
    }
    if (this.sub?.status === 'ready') {
      await this.subscriptions.restore(this.sub);
    }
  }

  /**
   * A cluster's shard subscribers came back (a shard failed over, restarted or moved):
   * room members catch up from history, a second later. ioredis also reports this after
   * each failed try while a shard is down, so catch-ups that follow each other back off
   * (2, 4 … 30 s) until a quiet minute has passed.
   */
  private resubscribed(): void {
    if (this.catchUpTimer) {
      return;
    }
    if (Date.now() - this.lastCatchUpAt > RESUBSCRIBED_QUIET_MS) {
      this.catchUpPauseMs = RESUBSCRIBED_CATCH_UP_MS;
    }
    this.catchUpTimer = setTimeout(() => {
      this.catchUpTimer = undefined;
      this.lastCatchUpAt = Date.now();
      this.catchUpPauseMs = Math.min(this.catchUpPauseMs * 2, RESUBSCRIBED_CATCH_UP_MAX_MS);
      if (this.resilience.state === 'ok') {
        this.onRestored?.();
      }
    }, this.catchUpPauseMs).unref();
  }

  /** The publisher connection when Redis answers (ready and not stalled), else undefined. */
  private usable(): RedisConnection | undefined {
    return this.resilience.answering ? this.pub : undefined;
  }
}
