import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { redisBinary, RedisServer } from './redis-server.js';

/** Where to find `redis-cli` (see {@link redisBinary}). */
function redisCliBinary(): string {
  return redisBinary('redis-cli', 'REDIS_CLI', 'the Redis Cluster tests join their throw-away nodes with `redis-cli --cluster create`');
}

/** A RESP2 reply: simple and bulk strings, integers, nil, errors (inside arrays) and arrays. */
type Reply = string | number | null | Error | Reply[];

/** Parses one reply at `offset`; `undefined` while `buffer` does not hold all of it yet. */
function parseReply(buffer: Buffer, offset: number): { value: Reply; next: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) {
    return undefined;
  }
  const type = String.fromCharCode(buffer[offset]);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new Error(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const length = Number(line);
      if (length < 0) {
        return { value: null, next };
      }
      if (buffer.length < next + length + 2) {
        return undefined;
      }
      return { value: buffer.toString('utf8', next, next + length), next: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) {
        return { value: null, next };
      }
      const items: Reply[] = [];
      let at = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, at);
        if (!item) {
          return undefined;
        }
        items.push(item.value);
        at = item.next;
      }
      return { value: items, next: at };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

/** Sends one command to 127.0.0.1:`port` on a fresh connection; rejects on an error reply or after `timeoutMs`. */
function command(port: number, args: readonly string[], timeoutMs = 1000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    const done = (error: Error | undefined, value?: Reply): void => {
      clearTimeout(timer);
      socket.destroy();
      error ? reject(error) : resolve(value ?? null);
    };
    const timer = setTimeout(() => done(new Error(`${args.join(' ')} on port ${port}: no reply within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (error) => done(new Error(`${args.join(' ')} on port ${port}: ${error.message}`)));
    socket.once('connect', () =>
      socket.write(`*${args.length}\r\n` + args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')),
    );
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      try {
        const reply = parseReply(received, 0);
        if (reply) {
          reply.value instanceof Error
            ? done(new Error(`${args.join(' ')} on port ${port}: ${reply.value.message}`))
            : done(undefined, reply.value);
        }
      } catch (error) {
        done(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}

/** A slot range and the port of the master that serves it, from `CLUSTER SLOTS`. */
interface SlotRange {
  start: number;
  end: number;
  port: number;
}

/** `CLUSTER SLOTS` of the node on `port`, sorted by first slot. */
async function slotRanges(port: number): Promise<SlotRange[]> {
  const reply = await command(port, ['CLUSTER', 'SLOTS']);
  if (!Array.isArray(reply)) {
    throw new Error(`CLUSTER SLOTS on port ${port}: unexpected reply ${JSON.stringify(reply)}`);
  }
  return reply
    .map((entry) => {
      const [start, end, master] = Array.isArray(entry) ? entry : [];
      const masterPort = Array.isArray(master) ? master[1] : undefined;
      if (typeof start !== 'number' || typeof end !== 'number' || typeof masterPort !== 'number') {
        throw new Error(`CLUSTER SLOTS on port ${port}: unexpected entry ${JSON.stringify(entry)}`);
      }
      return { start, end, port: masterPort };
    })
    .sort((a, b) => a.start - b.start);
}

/** The `field:value` lines of `CLUSTER INFO` or `INFO <section>` of the node on `port`, as a map. */
async function infoFields(port: number, args: readonly string[]): Promise<Map<string, string>> {
  const reply = await command(port, args);
  if (typeof reply !== 'string') {
    throw new Error(`${args.join(' ')} on port ${port}: unexpected reply ${JSON.stringify(reply)}`);
  }
  return new Map(
    reply
      .split('\r\n')
      .filter((line) => line.includes(':') && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}

/** Runs redis-cli with `args`; resolves with its exit code and its stdout and stderr together. */
function runCli(args: readonly string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(redisCliBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, output: signal ? `${output}\n(killed by ${signal} after ${timeoutMs} ms)` : output });
    });
  });
}

const SLOTS = 16384;

/**
 * A throw-away Redis Cluster for tests: `redis-server` nodes on free ports of 127.0.0.1 (each
 * with its cluster bus on another free port), joined by `redis-cli --cluster create`, keeping
 * only their `nodes.conf` files in a temporary directory that {@link RedisCluster.stop} removes.
 * Tests kill and restart nodes to play failures and failovers.
 */
export class RedisCluster {
  private constructor(
    /** The nodes, masters first as `redis-cli --cluster create` was given them (roles change after a failover). */
    readonly nodes: RedisServer[],
    private readonly dir: string,
  ) {}

  /**
   * Starts `masters` nodes (3) with `replicasPerMaster` replicas each (0), a cluster node
   * timeout of `nodeTimeoutMs` (1000), joins them and waits until the cluster is healthy.
   * `fullCoverage: false` sets `cluster-require-full-coverage no`: the shards that are up
   * serve while another has no master (by default Redis refuses every query then).
   */
  static async start(
    options: { masters?: number; replicasPerMaster?: number; nodeTimeoutMs?: number; fullCoverage?: boolean } = {},
  ): Promise<RedisCluster> {
    const { masters = 3, replicasPerMaster = 0, nodeTimeoutMs = 1000, fullCoverage = true } = options;
    if (masters < 3) {
      throw new Error(`a Redis Cluster needs at least 3 masters, not ${masters}`);
    }
    redisCliBinary();
    const dir = await mkdtemp(join(tmpdir(), 'redis-cluster-'));
    const cluster = new RedisCluster([], dir);
    try {
      const taken = new Set<number>();
      for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
        cluster.nodes.push(await cluster.startNode(nodeTimeoutMs, fullCoverage, taken));
      }
      const create = await runCli(
        [
          '--cluster',
          'create',
          ...cluster.nodes.map((node) => `127.0.0.1:${node.port}`),
          '--cluster-replicas',
          String(replicasPerMaster),
          '--cluster-yes',
        ],
        30_000,
      );
      if (create.code !== 0) {
        throw new Error(`redis-cli --cluster create exited with ${create.code}:\n${create.output}`);
      }
      await cluster.waitHealthy(30_000);
      return cluster;
    } catch (error) {
      await cluster.stop();
      throw error;
    }
  }

  /** Starts one node on a free port (up to 3 are tried), its cluster bus on another free one. */
  private async startNode(nodeTimeoutMs: number, fullCoverage: boolean, taken: Set<number>): Promise<RedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      let busPort = await freePort();
      while (taken.has(busPort)) {
        busPort = await freePort();
      }
      taken.add(busPort);
      // prettier-ignore
      const args = (port: number): string[] => [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
        '--cluster-node-timeout', String(nodeTimeoutMs),
        '--cluster-port', String(busPort),
        '--cluster-require-full-coverage', fullCoverage ? 'yes' : 'no',
        // A master would wait 5 s for more replicas before the first sync of one.
        '--repl-diskless-sync-delay', '0',
        '--dir', this.dir,
        '--logfile', join(this.dir, `redis-${port}.log`),
      ];
      let node = await RedisServer.reserve(args);
      while (taken.has(node.port)) {
        node = await RedisServer.reserve(args);
      }
      taken.add(node.port);
      try {
        await node.run();
        return node;
      } catch (error) {
        lastError = new Error(`${error instanceof Error ? error.message : String(error)}\n${await this.log(node)}`);
      }
    }
    throw lastError;
  }

  /** `host` and `port` of every node, for `new Cluster(cluster.startupNodes)` of ioredis. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((node) => ({ host: '127.0.0.1', port: node.port }));
  }

  /** The nodes that run (were not killed): `pid` is set. A paused node counts as running. */
  private running(): RedisServer[] {
    return this.nodes.filter((node) => node.pid !== undefined);
  }

  /** The master that serves the slot of `key` now, as the first running node sees the cluster. */
  async masterOf(key: string): Promise<RedisServer> {
    const [asked] = this.running();
    if (!asked) {
      throw new Error('no node of the cluster runs');
    }
    const slot = await command(asked.port, ['CLUSTER', 'KEYSLOT', key]);
    const range = (await slotRanges(asked.port)).find(
      (candidate) => typeof slot === 'number' && candidate.start <= slot && slot <= candidate.end,
    );
    const master = this.nodes.find((node) => node.port === range?.port);
    if (!master) {
      throw new Error(`no master of the cluster serves slot ${slot} (key ${JSON.stringify(key)}) as port ${asked.port} sees it`);
    }
    return master;
  }

  /**
   * Moves the slot of `key`, with its keys, to the master `to` while the cluster serves (as
   * `redis-cli --cluster reshard` does, for one slot), then waits until the cluster is healthy.
   */
  async moveSlot(key: string, to: RedisServer): Promise<void> {
    const from = await this.masterOf(key);
    const slot = String(await command(from.port, ['CLUSTER', 'KEYSLOT', key]));
    const [fromId, toId] = [String(await command(from.port, ['CLUSTER', 'MYID'])), String(await command(to.port, ['CLUSTER', 'MYID']))];
    await command(to.port, ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId]);
    await command(from.port, ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId]);
    for (;;) {
      const keys = await command(from.port, ['CLUSTER', 'GETKEYSINSLOT', slot, '100']);
      if (!Array.isArray(keys) || keys.length === 0) {
        break;
      }
      await command(from.port, ['MIGRATE', '127.0.0.1', String(to.port), '', '0', '5000', 'KEYS', ...keys.map(String)], 6000);
    }
    for (const node of [to, from, ...this.running().filter((other) => other !== to && other !== from)]) {
      await command(node.port, ['CLUSTER', 'SETSLOT', slot, 'NODE', toId]);
    }
    await this.waitHealthy();
  }

  /** Waits until the running nodes have marked `node` as failed (`fail` in `CLUSTER NODES`, past the node timeout). */
  async waitMarkedFailed(node: RedisServer, timeoutMs = 15_000): Promise<void> {
    await this.waitFor(
      async () => {
        for (const other of this.running().filter((candidate) => candidate !== node)) {
          const lines = String(await command(other.port, ['CLUSTER', 'NODES'])).split('\n');
          const line = lines.find((candidate) => candidate.split(' ')[1]?.startsWith(`127.0.0.1:${node.port}@`));
          if (!line?.split(' ')[2]?.split(',').includes('fail')) {
            return `port ${other.port} does not see port ${node.port} as failed: ${line ?? 'unknown node'}`;
          }
        }
        return undefined;
      },
      `port ${node.port} marked as failed`,
      timeoutMs,
    );
  }

  /**
   * Waits until every replica of the master `node` has acknowledged what the master had
   * written when this was called (`INFO replication`: each replica's acknowledged offset
   * reaches the master's). Redis replicates asynchronously: a write the replica had not
   * received is lost at a failover, which a test of the failover itself waits out.
   */
  async waitReplicated(node: RedisServer, timeoutMs = 10_000): Promise<void> {
    const info = await infoFields(node.port, ['INFO', 'replication']);
    if (info.get('connected_slaves') === '0') {
      throw new Error(`port ${node.port} has no replica to wait for`);
    }
    const target = Number(info.get('master_repl_offset'));
    await this.waitFor(
      async () => {
        const fields = await infoFields(node.port, ['INFO', 'replication']);
        const replicas = [...fields].filter(([name]) => /^slave\d+$/.test(name)).map(([, value]) => value);
        const behind = replicas.filter((value) => Number(/offset=(\d+)/.exec(value)?.[1] ?? -1) < target);
        return behind.length > 0 ? `port ${node.port}'s replicas behind offset ${target}: ${behind.join('; ')}` : undefined;
      },
      `the replicas of port ${node.port} at offset ${target}`,
      timeoutMs,
    );
  }

  /** Kills `node` at once (SIGKILL), as a crash would, and waits for it to be gone. */
  async kill(node: RedisServer): Promise<void> {
    await node.kill();
  }

  /**
   * Runs a killed `node` again on its port with its `nodes.conf`, so that it rejoins the
   * cluster, then waits until the cluster is healthy (see {@link RedisCluster.waitHealthy}).
   */
  async restart(node: RedisServer, timeoutMs = 30_000): Promise<void> {
    await node.kill();
    await node.run();
    await this.waitHealthy(timeoutMs);
  }

  /**
   * Waits until every running node says `cluster_state:ok` with all 16384 slots ok, knows all
   * nodes, and sees the same slot map, every slot served by a running node; and every replica
   * of a running master has its replication link up (so that it can take over).
   */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    await this.waitFor(() => this.problem(this.running()), 'the cluster to be healthy', timeoutMs);
  }

  /**
   * Waits until another running node serves the slots that the killed (or paused) `oldMaster`
   * served, and the cluster is healthy without it (a replica took over; needs replicas).
   */
  async waitForFailover(oldMaster: RedisServer, timeoutMs = 30_000): Promise<void> {
    await this.waitFor(
      async () => {
        const others = this.running().filter((node) => node !== oldMaster);
        for (const node of others) {
          const served = (await slotRanges(node.port)).filter((range) => range.port === oldMaster.port);
          if (served.length > 0) {
            return `port ${node.port} still sees slots ${served.map((range) => `${range.start}-${range.end}`).join(', ')} served by port ${oldMaster.port}`;
          }
        }
        return this.problem(others);
      },
      `a failover away from port ${oldMaster.port}`,
      timeoutMs,
    );
  }

  /** Kills all nodes and removes the temporary directory. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.stop()));
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Why `nodes` are not a healthy cluster, or `undefined` when they are. */
  private async problem(nodes: RedisServer[]): Promise<string | undefined> {
    if (nodes.length === 0) {
      return 'no node runs';
    }
    let reference: { port: number; map: string } | undefined;
    for (const node of nodes) {
      const info = await infoFields(node.port, ['CLUSTER', 'INFO']);
      const expected = {
        cluster_state: 'ok',
        cluster_slots_assigned: SLOTS,
        cluster_slots_ok: SLOTS,
        cluster_known_nodes: this.nodes.length,
      };
      if (Object.entries(expected).some(([field, value]) => info.get(field) !== String(value))) {
        return `port ${node.port}: ${Object.keys(expected)
          .map((field) => `${field}:${info.get(field)}`)
          .join(' ')}`;
      }
      const ranges = await slotRanges(node.port);
      const map = ranges.map((range) => `${range.start}-${range.end}@${range.port}`).join(' ');
      if (!reference) {
        reference = { port: node.port, map };
      } else if (map !== reference.map) {
        return `port ${node.port} sees slots ${map}, port ${reference.port} sees ${reference.map}`;
      }
      const replication = await infoFields(node.port, ['INFO', 'replication']);
      const masterPort = Number(replication.get('master_port'));
      if (
        replication.get('role') === 'slave' &&
        nodes.some((other) => other.port === masterPort) &&
        replication.get('master_link_status') !== 'up'
      ) {
        return `port ${node.port}: its link to its master on port ${masterPort} is ${replication.get('master_link_status')}`;
      }
      const stopped = ranges.find((range) => !nodes.some((other) => other.port === range.port));
      if (stopped) {
        return `port ${node.port} sees slots ${stopped.start}-${stopped.end} served by port ${stopped.port}, which does not run`;
      }
    }
    return undefined;
  }

  /** Polls `problem` every 50 ms until it finds none; fails after `timeoutMs` with the last one and the nodes' logs. */
  private async waitFor(problem: () => Promise<string | undefined>, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string | undefined;
    for (;;) {
      try {
        last = await problem();
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
      }
      if (last === undefined) {
        return;
      }
      if (Date.now() > deadline) {
        const logs = await Promise.all(this.nodes.map((node) => this.log(node)));
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${last}\n${logs.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The last lines of the log of `node`, for error messages. */
  private async log(node: RedisServer): Promise<string> {
    const text = await readFile(join(this.dir, `redis-${node.port}.log`), 'utf8').catch(() => '(no log)\n');
    return `--- redis-server on port ${node.port} (${node.pid === undefined ? 'killed' : `pid ${node.pid}`}):\n${text.split('\n').slice(-15).join('\n')}`;
  }
}
