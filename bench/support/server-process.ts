// Starts a benchmark server in a child process pinned to one core, and reads its CPU time.
// With `ipc: true` the child also gets an IPC channel, over which `memoryOf` asks it for its
// memory after a full GC, once RSS has settled, and `gcOf` for its GCs so far (the server
// answers both with `answerBenchQueries`).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';

/** A server under test, in its own process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** CPU seconds (user + system) the process has used so far. */
  cpuSeconds(): number;
  /** Of those, the seconds spent in the kernel on the process's behalf (system calls, mostly). */
  systemSeconds(): number;
  stop(): Promise<void>;
}

/** Optional settings of {@link startServer}; without them a server starts as it always has. */
export interface ServerOptions {
  /** Extra flags for `node`, before the script (e.g. `--expose-gc`). */
  readonly nodeFlags?: readonly string[];
  /** Open an IPC channel to the child (needed by {@link memoryOf}). */
  readonly ipc?: boolean;
}

/** The server's memory after a full GC and once RSS has settled, as its `process.memoryUsage()` reports it (bytes). */
export interface ServerMemory {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  /** C++ objects bound to JS objects, ArrayBuffers and Buffers included. */
  readonly external: number;
  readonly arrayBuffers: number;
}

/**
 * The server's garbage collection so far, as `perf_hooks` reports it: main-thread pauses
 * only (a full GC's incremental marking steps and its helper threads' work are not in it).
 */
export interface ServerGc {
  /** Full (mark-compact) collections. */
  readonly major: number;
  /** Their pauses, in ms. */
  readonly majorMs: number;
  /** Young-generation collections (scavenges). */
  readonly minor: number;
  /** Their pauses, in ms. */
  readonly minorMs: number;
}

const CLOCK_TICKS = 100;
const MEMORY_QUERY = 'bench:memory';
const GC_QUERY = 'bench:gc';

/** Longest wait for a server's `{"port"}` line, in ms: past it, the server is killed and the start fails. */
const START_TIMEOUT_MS = 60_000;

/** Servers started and not yet exited: killed when this process exits, whatever ends it. */
const live = new Set<ChildProcess>();
// A benchmark that throws must not leave its servers behind (an empty set in a server process).
process.once('exit', () => {
  for (const child of live) {
    child.kill('SIGKILL');
  }
});

/**
 * Runs `node script` on core `core` (via taskset) and waits for its `{"port"}` line.
 * Rejects, with the server killed, when the server exits first, prints something else
 * first, or prints nothing for {@link START_TIMEOUT_MS}. Servers still running when this
 * process exits (a benchmark that threw, say) are killed then, so they neither outlive it
 * nor keep its output open.
 */
export async function startServer(
  script: string,
  core = 0,
  env: NodeJS.ProcessEnv = {},
  options: ServerOptions = {},
): Promise<ServerProcess> {
  // BENCH_PROFILE=<dir>: the server writes a V8 CPU profile there (node --cpu-prof) when it stops.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  // BENCH_NODE_FLAGS: more Node flags for every server, separated by spaces.
  const extra = process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  const flags = [...profile, ...(options.nodeFlags ?? []), ...extra];
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...flags, script], {
    stdio: options.ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...env },
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const lines = createInterface({ input: child.stdout! });
  let timer: NodeJS.Timeout | undefined;
  const port = await new Promise<number>((resolve, reject) => {
    const fail = (error: Error): void => {
      child.kill('SIGKILL');
      reject(error);
    };
    child.once('exit', (code, signal) => reject(new Error(`${script} exited with ${code ?? signal} before it listened`)));
    child.once('error', (error) => fail(new Error(`${script} could not be started: ${error.message}`)));
    timer = setTimeout(() => fail(new Error(`${script} printed no {"port"} line within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    lines.once('line', (line) => {
      const port = portOf(line);
      if (port === undefined) {
        fail(new Error(`${script} printed ${JSON.stringify(line.slice(0, 200))} before its {"port"} line`));
      } else {
        resolve(port);
      }
    });
  }).finally(() => clearTimeout(timer));
  return {
    child,
    port,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    systemSeconds: () => cpuTimesOf(child.pid).system,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve(); // it has exited already (it crashed, say): nothing to wait for
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The port of a server's first line, `{"port":N}`; undefined for any other line. */
function portOf(line: string): number | undefined {
  try {
    const port = (JSON.parse(line) as { port?: unknown } | null)?.port;
    return typeof port === 'number' && Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) process `pid` has used so far; 0 for no process. */
export function cpuSecondsOf(pid: number | undefined): number {
  const { user, system } = cpuTimesOf(pid);
  return user + system;
}

/** CPU seconds process `pid` has used so far in user space and in the kernel; 0 for no process. */
export function cpuTimesOf(pid: number | undefined): { user: number; system: number } {
  if (pid === undefined) {
    return { user: 0, system: 0 };
  }
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
}

/**
 * Asks a server started with `{ ipc: true, nodeFlags: ['--expose-gc'] }` for its memory
 * after a full GC; the server must call {@link answerBenchQueries}.
 */
export function memoryOf(server: ServerProcess): Promise<ServerMemory> {
  return ask<ServerMemory>(server, MEMORY_QUERY, 'memory');
}

/**
 * Asks a server started with `{ ipc: true }` for its garbage collection so far (it runs
 * none for the question); the server must call {@link answerBenchQueries}.
 */
export function gcOf(server: ServerProcess): Promise<ServerGc> {
  return ask<ServerGc>(server, GC_QUERY, 'gc');
}

/** Sends `type` over the server's IPC channel and resolves with the `field` of its answer. */
function ask<T>(server: ServerProcess, type: string, field: string): Promise<T> {
  const { child } = server;
  if (!child.send) {
    return Promise.reject(new Error('the server has no IPC channel: start it with { ipc: true }'));
  }
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => {
      child.off('message', onMessage);
      reject(new Error(`the server exited (${code}) before it answered ${type}`));
    };
    const onMessage = (message: unknown): void => {
      if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === type) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        const answer = message as Record<string, unknown>;
        if (answer[field] !== undefined) {
          resolve(answer[field] as T);
        } else {
          reject(new Error(typeof answer.error === 'string' ? answer.error : `no ${field} in the answer`));
        }
      }
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send!({ type });
  });
}

/** Least wait after the GCs before RSS is read, in ms (see {@link answerBenchQueries}). */
const SETTLE_MIN_MS = 250;
/** How often RSS is read while it settles, in ms. */
const SETTLE_POLL_MS = 100;
/** RSS has settled once a read is less than this below the one before (bytes). */
const SETTLE_STEP_BYTES = 256 * 1024;
/** Longest wait for RSS to settle, in ms: past it, the last read is reported. */
const SETTLE_MAX_MS = 5000;

/**
 * In a server process: answers {@link memoryOf} and {@link gcOf} over the IPC channel, if
 * there is one (otherwise does nothing). A GC query gets the collections counted since
 * this call. A memory query runs two full GCs (`--expose-gc`), a turn of the event loop
 * apart so that finalizers run, then waits for RSS to settle and reports
 * `process.memoryUsage()`.
 *
 * V8's helper threads go on sweeping and giving pages back to the system for a while
 * after a full GC: an RSS read at once counts memory that is about to be freed, by an
 * amount that differs from run to run (up to about 1 KB per connection at 10,000 idle
 * connections here, more in a server that made more garbage). So RSS is read after {@link SETTLE_MIN_MS}, then
 * every {@link SETTLE_POLL_MS} until it stops falling (a read less than
 * {@link SETTLE_STEP_BYTES} below the one before), for at most {@link SETTLE_MAX_MS}.
 */
export function answerBenchQueries(): void {
  if (!process.send) {
    return;
  }
  const collected = { major: 0, majorMs: 0, minor: 0, minorMs: 0 };
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        collected.major++;
        collected.majorMs += entry.duration;
      } else if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        collected.minor++;
        collected.minorMs += entry.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('message', (message: unknown) => {
    const type = typeof message === 'object' && message !== null ? (message as { type?: unknown }).type : undefined;
    if (type === GC_QUERY) {
      const answer: ServerGc = { ...collected };
      process.send!({ type: GC_QUERY, gc: answer });
      return;
    }
    if (type !== MEMORY_QUERY) {
      return;
    }
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) {
      process.send!({ type: MEMORY_QUERY, error: 'start the server with --expose-gc' });
      return;
    }
    gc();
    setImmediate(() => {
      gc();
      const start = performance.now();
      let previous = process.memoryUsage.rss();
      const read = (): void => {
        const rss = process.memoryUsage.rss();
        const settled = previous - rss < SETTLE_STEP_BYTES || performance.now() - start >= SETTLE_MAX_MS;
        previous = rss;
        if (!settled) {
          setTimeout(read, SETTLE_POLL_MS);
          return;
        }
        const { heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
        const memory: ServerMemory = { rss, heapTotal, heapUsed, external, arrayBuffers };
        process.send!({ type: MEMORY_QUERY, memory });
      };
      setTimeout(read, SETTLE_MIN_MS);
    });
  });
  // The channel must not keep a server alive on its own: SIGTERM (or the parent's exit) ends it.
  process.channel?.unref();
}

/** Pins this process (the load generator) to `core`. */
export function pinSelf(core: number): void {
  spawn('taskset', ['-cp', String(core), String(process.pid)], { stdio: 'ignore' });
}
