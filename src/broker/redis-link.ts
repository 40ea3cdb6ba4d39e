import type { Logger } from '@nestjs/common';
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import { untilDeadline } from '../limits/deadline.js';
import type { RedisBrokerOptions, RedisClusterTarget } from './redis-broker-options.js';

/** A connection to one Redis server, or to a Redis Cluster. */
export type RedisConnection = Redis | Cluster;

/** Where the Redis broker connects: one server (a URL, or the settings of a client), or a cluster. */
export type RedisTarget = Pick<RedisBrokerOptions, 'url' | 'client' | 'cluster'>;

/** What the connection's owner hears: the connection answers, or dropped for the given reason. */
export interface LinkEvents {
  up(): Promise<void>;
  down(reason: string): void;
  /** The cluster's shard subscribers came back (after a shard failed over or moved): messages may have been missed. */
  resubscribed(): void;
}

/** The longest pause between two tries to reach Redis again. */
const RETRY_CAP_MS = 2000;

/**
 * What differs between one Redis server and a Redis Cluster: how connections are made and
 * watched, what a channel is called on the wire, and the pub/sub commands. On a server,
 * channels are `<prefix><channel>` with `PUBLISH`/`SUBSCRIBE`. On a cluster they are
 * `<prefix>{<channel>}` with sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7): each
 * channel lives on the shard of its hash slot, the same slot as its history keys, so the
 * publish script may publish, and ioredis subscribes each channel on its shard and again
 * when a shard fails over or slots move.
 */
export abstract class RedisLink {
  /** The pub/sub publish command, as the publish script calls it. */
  abstract readonly publishCommand: 'PUBLISH' | 'SPUBLISH';
  /** Whether a transaction must keep to the keys of one slot (a cluster's rule). */
  abstract readonly perKeyTransactions: boolean;

  constructor(protected readonly prefix: string) {}

  /** The broker's link for `target`. */
  static for(target: RedisTarget, prefix: string, options: RedisOptions): RedisLink {
    return target.cluster ? new ClusterLink(prefix, target.cluster, options) : new ServerLink(prefix, target, options);
  }

  /** A new connection, not connected yet (`connect()` connects it). `subscriber`: one for pub/sub. */
  abstract open(subscriber: boolean): RedisConnection;
  /** A channel's name on the wire. */
  abstract channelName(channel: string): string;
  /** A channel from its name on the wire. */
  abstract channelOf(name: string): string;
  /** Publishes `message` on the channel named `name` (plain pub/sub, without history). */
  abstract publish(pub: RedisConnection, name: string, message: string): Promise<unknown>;
  /** Subscribes `names` (all of them, or rejects). */
  abstract subscribe(sub: RedisConnection, names: string[]): Promise<unknown>;
  /** Unsubscribes `names`. */
  abstract unsubscribe(sub: RedisConnection, names: string[]): Promise<unknown>;
  /** Listens to the subscriber's messages. */
  abstract onMessage(sub: RedisConnection, listener: (name: string, message: string) => void): void;
  /** Wires a connection's events to `events`. */
  abstract watch(connection: RedisConnection, name: string, events: LinkEvents): void;
  /** Whether the subscriber keeps its channels across reconnections, and subscribes them again by itself (a cluster's does). */
  abstract readonly keepsSubscriptions: boolean;
}

/** One Redis server: classic pub/sub on two connections. */
class ServerLink extends RedisLink {
  readonly publishCommand = 'PUBLISH';
  readonly perKeyTransactions = false;
  readonly keepsSubscriptions = false;
  private readonly url: string | undefined;
  private readonly options: RedisOptions;

  constructor(prefix: string, target: RedisTarget, options: RedisOptions) {
    super(prefix);
    this.url = target.client ? undefined : (target.url ?? 'redis://127.0.0.1:6379');
    this.options = {
      ...(target.client ? target.client.options : {}),
      ...options,
      retryStrategy: (attempt: number) => Math.min(100 * attempt, RETRY_CAP_MS),
    };
  }

  open(): RedisConnection {
    return this.url ? new Redis(this.url, this.options) : new Redis(this.options);
  }

  channelName(channel: string): string {
    return this.prefix + channel;
  }

  channelOf(name: string): string {
    return name.slice(this.prefix.length);
  }

  publish(pub: RedisConnection, name: string, message: string): Promise<unknown> {
    return pub.publish(name, message);
  }

  subscribe(sub: RedisConnection, names: string[]): Promise<unknown> {
    return sub.subscribe(...names);
  }

  unsubscribe(sub: RedisConnection, names: string[]): Promise<unknown> {
    return sub.unsubscribe(...names);
  }

  onMessage(sub: RedisConnection, listener: (name: string, message: string) => void): void {
    sub.on('message', listener);
  }

  watch(connection: RedisConnection, name: string, events: LinkEvents): void {
    connection.on('ready', () => void events.up());
    connection.on('error', (error: Error) => events.down(`${name}: ${error.message}`));
    connection.on('close', () => events.down(`${name} connection closed`));
  }
}

/** A Redis Cluster: commands routed by slot, sharded pub/sub with one subscriber connection per shard. */
class ClusterLink extends RedisLink {
  readonly publishCommand = 'SPUBLISH';
  readonly perKeyTransactions = true;
  readonly keepsSubscriptions = true;
  private readonly nodes: ClusterNode[];
  private readonly options: ClusterOptions;

  constructor(prefix: string, cluster: RedisClusterTarget, options: RedisOptions) {
    super(prefix);
    if (!Array.isArray(cluster.nodes) || cluster.nodes.length === 0) {
      throw new TypeError('RedisBroker cluster.nodes must list at least one node of the cluster, e.g. [{ host: "redis-1", port: 6379 }]');
    }
    if (cluster.options?.keyPrefix || cluster.options?.redisOptions?.keyPrefix) {
      throw new TypeError('RedisBroker cluster: use the broker keyPrefix option, not an ioredis keyPrefix');
    }
    this.nodes = [...cluster.nodes];
    this.options = {
      ...cluster.options,
      // Node connections are made on first use: without this queue, the commands that find
      // one still connecting would fail. The broker bounds what it sends (BrokerResilience).
      enableOfflineQueue: true,
      lazyConnect: options.lazyConnect,
      // A slot whose node is down fails its commands at once instead of waiting for a failover.
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      // Never gives up: a cluster that ended would not deliver shard messages any more.
      clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, RETRY_CAP_MS),
      // Deadlines are the broker's own, as on one server.
      redisOptions: { ...cluster.options?.redisOptions, keepAlive: options.keepAlive, maxRetriesPerRequest: 0, commandTimeout: undefined },
    };
  }

  open(subscriber: boolean): RedisConnection {
    const cluster = new Cluster(this.nodes, { ...this.options, shardedSubscribers: subscriber });
    if (subscriber && !(cluster as unknown as { shardedSubscribers?: unknown }).shardedSubscribers) {
      // Older ioredis subscribes shard channels on one node only, and drops what the others send.
      throw new TypeError('RedisBroker on a Redis Cluster needs ioredis 5.6 or later (sharded subscribers)');
    }
    if (subscriber) {
      throttleShardRetries(cluster);
    }
    return cluster;
  }

  channelName(channel: string): string {
    return `${this.prefix}{${channel}}`;
  }

  channelOf(name: string): string {
    return name.slice(this.prefix.length + 1, -1);
  }

  publish(pub: RedisConnection, name: string, message: string): Promise<unknown> {
    return pub.spublish(name, message);
  }

  // One call per channel: channels of different slots cannot share one.
  subscribe(sub: RedisConnection, names: string[]): Promise<unknown> {
    return Promise.all(names.map((name) => sub.ssubscribe(name)));
  }

  unsubscribe(sub: RedisConnection, names: string[]): Promise<unknown> {
    return Promise.all(names.map((name) => sub.sunsubscribe(name)));
  }

  onMessage(sub: RedisConnection, listener: (name: string, message: string) => void): void {
    sub.on('smessage', listener);
  }

  watch(connection: RedisConnection, name: string, events: LinkEvents): void {
    connection.on('ready', () => void events.up());
    connection.on('close', () => events.down(`${name} connection to the cluster closed`));
    // A node that fails is seen in its commands (refused, per slot) and in the health
    // check; 'error' also comes for every failed try of a shard subscriber, many a second.
    connection.on('error', () => undefined);
    connection.on('node error', () => undefined);
    connection.on('subscribersReady', () => events.resubscribed());
  }
}

/** The shortest pause between two slot refreshes a shard subscriber's drop asks for. */
const SHARD_RETRY_MS = 500;

/**
 * ioredis (5.9 to 6.0 at least) refreshes the slot map at once every time a shard
 * subscriber's connection ends, and then starts a new subscriber: while a master without a
 * replica is down (its slots still assigned to it) that is a loop without a pause, which
 * kept a core busy in our tests. Its own backoff for failed subscribers stays; what the
 * drop asks for is spaced out here to at most one refresh per {@link SHARD_RETRY_MS}.
 * `test/internals.spec.ts` pins the ioredis internals this relies on.
 */
function throttleShardRetries(cluster: Cluster): void {
  const emitter = (cluster as unknown as { subscriberGroupEmitter?: NodeJS.EventEmitter }).subscriberGroupEmitter;
  const [refresh, ...others] = emitter?.listeners('-node') ?? [];
  if (!emitter || !refresh || others.length > 0) {
    return; // not the ioredis this was written for: left as it is
  }
  emitter.removeListener('-node', refresh as (...args: unknown[]) => void);
  let last = 0;
  let pending: NodeJS.Timeout | undefined;
  let latest: unknown[] = [];
  emitter.on('-node', (...args: unknown[]) => {
    latest = args;
    const wait = last + SHARD_RETRY_MS - Date.now();
    if (wait <= 0 && !pending) {
      last = Date.now();
      refresh.apply(emitter, latest);
    } else {
      pending ??= setTimeout(
        () => {
          pending = undefined;
          last = Date.now();
          if (cluster.status !== 'end' && cluster.status !== 'disconnecting') {
            refresh.apply(emitter, latest); // not once the broker closed it
          }
        },
        Math.max(wait, 0),
      ).unref();
    }
  });
}

/**
 * Asks a subscriber connection whether it still answers, alongside each health check (which
 * asks the publisher connection). When it does not answer a `PING` in time while the
 * publisher does, its socket is gone without a word (a NAT or a load balancer dropped the
 * idle connection, say), which TCP would notice only after minutes of keepalives: it is
 * reconnected, and the subscriptions come back with the new connection (then what was
 * missed, from history).
 */
export class SubscriberWatch {
  private checking = false;

  constructor(private readonly logger: Pick<Logger, 'warn'>) {}

  /**
   * Starts a check of `sub` (unless one is under way, or it is not ready) beside the health
   * check's own `PING` of the publisher, `publisherPong`; settles by itself.
   */
  check(sub: RedisConnection | undefined, publisherPong: Promise<unknown>, timeoutMs: number): void {
    if (this.checking || sub?.status !== 'ready') {
      return;
    }
    this.checking = true;
    const within = (pong: Promise<unknown>): Promise<'answered' | 'failed' | 'timeout'> =>
      untilDeadline(
        pong.then(
          () => 'answered' as const,
          () => 'failed' as const,
        ),
        timeoutMs,
      );
    // Both asked at once: only a subscriber silent while the publisher answered in time is cut (a stalled Redis answers neither).
    void Promise.all([within(sub.ping()), within(publisherPong)]).then(([subscriber, publisher]) => {
      this.checking = false;
      if (subscriber === 'timeout' && publisher === 'answered' && sub.status === 'ready') {
        this.logger.warn(`Redis subscriber connection did not answer a PING within ${timeoutMs} ms while Redis did: reconnecting it`);
        sub.disconnect(true);
      }
    });
  }
}
