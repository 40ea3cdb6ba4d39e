import { after, afterEach, before } from 'node:test';
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

/** What a test opened and the suite closes after it. */
export interface Opened {
  readonly apps: { close(): Promise<void> }[];
  readonly clients: { close(): void }[];
}

/**
 * Runs `target` for the enclosing suite (started before its tests, stopped after them), and
 * closes what each test opened. Returns the single server, which the tests that need one
 * (defined for a `server` target only) kill, freeze or connect to.
 */
export function useRedisTarget(target: RedisTarget, opened: Opened): Pick<RedisServer, 'url' | 'kill' | 'run' | 'pause' | 'resume'> {
  before(() => target.start());
  after(() => target.stop());
  afterEach(async () => {
    opened.clients.splice(0).forEach((client) => client.close());
    await Promise.all(opened.apps.splice(0).map((app) => app.close()));
  });
  const server = (): RedisServer => target.server!;
  return {
    get url() {
      return server().url;
    },
    kill: () => server().kill(),
    run: () => server().run(),
    pause: () => server().pause(),
    resume: () => server().resume(),
  };
}
