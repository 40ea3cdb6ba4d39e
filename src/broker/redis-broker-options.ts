import type { ClusterNode, ClusterOptions, Redis } from 'ioredis';

/** Options of `RedisBroker`: a URL, an ioredis client to copy the settings of, or a Redis Cluster. */
export interface RedisBrokerOptions {
  /** `redis://[:password@]host:port[/db]`. Ignored when `client` or `cluster` is given. Default `redis://127.0.0.1:6379`. */
  url?: string;
  /** An ioredis client whose settings to reuse; the broker makes two connections of its own from it. */
  client?: Redis;
  /** A Redis Cluster (Redis 7 or later) instead of one server; see {@link RedisClusterTarget}. `url` and `client` are then ignored. */
  cluster?: RedisClusterTarget;
  /**
   * Prefix of every channel and key. Default `rt:`. Not with an empty `{}` (a room's keys share
   * a Redis Cluster slot through braces of their own); a `{tag}` of its own puts every room in
   * one slot.
   */
  keyPrefix?: string;
  /**
   * How long presence entries live without a refresh; an instance refreshes its own every
   * third of it, so a killed instance's users leave presence at most this long after.
   * Instances sharing a Redis may use different values. Instances' clocks must agree to
   * well within it. Default 30000.
   */
  presenceTtlMs?: number;
  /**
   * Publishes kept while Redis is unreachable (sent in order once it is back), and
   * publishes awaiting Redis's answer while it is slow; beyond it, publishes are refused
   * (`publish` rejects with `BrokerUnavailableError`) and counted in `droppedPublishes`.
   * Default 1000.
   */
  maxPendingPublishes?: number;
  /**
   * A command without an answer for this long fails (`BrokerTimeoutError`), and the
   * broker reports `degraded` from then on; until Redis answers again, joins, presence and handshakes go on with what
   * this instance knows instead of waiting for it. So no handshake or join waits on a
   * stalled Redis longer than this. Default 1000.
   */
  commandTimeoutMs?: number;
  /** How often the broker checks that Redis still answers, in ms (a `PING`). Default 1000. */
  healthCheckMs?: number;
}

/**
 * A Redis Cluster for `RedisBroker`. Channels then use sharded pub/sub (`SPUBLISH`,
 * `SSUBSCRIBE`): each room's messages go through the shard of its hash slot only, and its
 * history (stream, offset counter and epoch) lives in the same slot. Needs Redis 7 and
 * ioredis 5.6 or later (sharded subscribers); tested with ioredis 6.
 */
export interface RedisClusterTarget {
  /** Some of the cluster's nodes, e.g. `[{ host: 'redis-1', port: 6379 }]`; the others are discovered. */
  nodes: ClusterNode[];
  /**
   * ioredis cluster settings (`redisOptions` for a password or TLS, `natMap`, `dnsLookup`,
   * …). The broker sets its own offline queue, retry and subscriber settings; an ioredis
   * `keyPrefix` is refused (use the broker's `keyPrefix`).
   */
  options?: ClusterOptions;
}

/**
 * Checks a `keyPrefix` (see {@link RedisBrokerOptions.keyPrefix}). Redis Cluster hashes a key
 * by its first `{…}` when that holds something; a room's keys (`<prefix>{<room>}:m`, `:s`)
 * share a slot through `{<room>}`. A prefix whose first `{` is closed at once (`rt{}:`)
 * makes Redis hash each whole key (every history script fails with CROSSSLOT): refused. One
 * with a tag of its own (`{app}:`) works but puts every room in one slot: `warn` says so on
 * a cluster.
 */
export function checkKeyPrefix(prefix: unknown, cluster: boolean, warn: (line: string) => void): void {
  if (typeof prefix !== 'string') {
    throw new TypeError(`RedisBroker keyPrefix must be a string, got ${typeof prefix}`);
  }
  const open = prefix.indexOf('{');
  const close = open === -1 ? -1 : prefix.indexOf('}', open);
  if (open !== -1 && close === open + 1) {
    throw new TypeError(
      `RedisBroker keyPrefix must not hold an empty {} (a room's keys would be in different cluster slots), got ${JSON.stringify(prefix)}`,
    );
  }
  if (close !== -1 && cluster) {
    warn(`keyPrefix ${JSON.stringify(prefix)} holds a hash tag: every room is in one cluster slot, on one shard`);
  }
}
