import { RedisBroker, type RedisBrokerOptions } from '../../src/redis.js';
import { RedisCluster } from './redis-cluster.js';
import { RedisServer } from './redis-server.js';

/** A throw-away Redis the broker suites run on: one server, or a local cluster. */
export interface RedisTarget {
  /** How the suite's name says which one it is. */
  readonly name: string;
  /** One server, or a cluster: known before the suite starts (tests for one kind only are defined by it). */
  readonly kind: 'server' | 'cluster';
  /** The single server, once started (undefined for a cluster): server-only tests use it. */
  readonly server: RedisServer | undefined;
  /** The cluster, once started (undefined for a single server). */
  readonly cluster: RedisCluster | undefined;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A broker on this Redis, with more options. */
  broker(options?: RedisBrokerOptions): RedisBroker;
}

/** A single `redis-server`, then a 3-master cluster: the suites that hold for both run on each. */
export function redisTargets(): RedisTarget[] {
  return [singleServer(), threeMasters()];
}

function singleServer(): RedisTarget {
  let server: RedisServer | undefined;
  return {
    name: 'throw-away redis-server',
    kind: 'server',
    get server() {
      return server;
    },
    cluster: undefined,
    async start() {
      server = await RedisServer.start();
    },
    async stop() {
      await server?.stop();
    },
    broker: (options = {}) => new RedisBroker({ url: server!.url, ...options }),
  };
}

function threeMasters(): RedisTarget {
  let cluster: RedisCluster | undefined;
  return {
    name: 'throw-away Redis Cluster of 3 masters',
    kind: 'cluster',
    server: undefined,
    get cluster() {
      return cluster;
    },
    async start() {
      cluster = await RedisCluster.start();
    },
    async stop() {
      await cluster?.stop();
    },
    broker: (options = {}) => new RedisBroker({ cluster: { nodes: cluster!.startupNodes }, ...options }),
  };
}
