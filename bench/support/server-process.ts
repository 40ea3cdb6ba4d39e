// Starts a benchmark server in a child process pinned to one core, and reads its CPU time.
// With `ipc: true` the child also gets an IPC channel, over which `memoryOf` asks it for its
// memory after a full GC (the server answers with `answerMemoryQueries`).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** A server under test, in its own process. */
export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** CPU seconds (user + system) the process has used so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Optional settings of {@link startServer}; without them a server starts as it always has. */
export interface ServerOptions {
  /** Extra flags for `node`, before the script (e.g. `--expose-gc`). */
  readonly nodeFlags?: readonly string[];
  /** Open an IPC channel to the child (needed by {@link memoryOf}). */
  readonly ipc?: boolean;
}

/** The server's memory after a full GC, as its `process.memoryUsage()` reports it (bytes). */
export interface ServerMemory {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  /** C++ objects bound to JS objects, ArrayBuffers and Buffers included. */
  readonly external: number;
  readonly arrayBuffers: number;
}

const CLOCK_TICKS = 100;
const MEMORY_QUERY = 'bench:memory';

/** Runs `node script` on core `core` (via taskset) and waits for its `{"port"}` line. */
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
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it listened`)));
    lines.once('line', (line) => resolve((JSON.parse(line) as { port: number }).port));
  });
  return {
    child,
    port,
    cpuSeconds: () => cpuSecondsOf(child.pid),
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** CPU seconds (user + system) process `pid` has used so far; 0 for no process. */
export function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) {
    return 0;
  }
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/**
 * Asks a server started with `{ ipc: true, nodeFlags: ['--expose-gc'] }` for its memory
 * after a full GC; the server must call {@link answerMemoryQueries}.
 */
export function memoryOf(server: ServerProcess): Promise<ServerMemory> {
  const { child } = server;
  if (!child.send) {
    return Promise.reject(new Error('the server has no IPC channel: start it with { ipc: true }'));
  }
  return new Promise((resolve, reject) => {
    const onExit = (code: number | null): void => {
      child.off('message', onMessage);
      reject(new Error(`the server exited (${code}) before it reported its memory`));
    };
    const onMessage = (message: unknown): void => {
      if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === MEMORY_QUERY) {
        child.off('message', onMessage);
        child.off('exit', onExit);
        const { memory, error } = message as { memory?: ServerMemory; error?: string };
        if (memory) {
          resolve(memory);
        } else {
          reject(new Error(error ?? 'no memory in the answer'));
        }
      }
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.send!({ type: MEMORY_QUERY });
  });
}

/**
 * In a server process: answers {@link memoryOf} over the IPC channel, if there is one
 * (otherwise does nothing). Each query runs two full GCs (`--expose-gc`), a turn of the
 * event loop apart so that finalizers run, then reports `process.memoryUsage()`.
 */
export function answerMemoryQueries(): void {
  if (!process.send) {
    return;
  }
  process.on('message', (message: unknown) => {
    if (typeof message !== 'object' || message === null || (message as { type?: unknown }).type !== MEMORY_QUERY) {
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
      setImmediate(() => {
        const { rss, heapTotal, heapUsed, external, arrayBuffers } = process.memoryUsage();
        const memory: ServerMemory = { rss, heapTotal, heapUsed, external, arrayBuffers };
        process.send!({ type: MEMORY_QUERY, memory });
      });
    });
  });
  // The channel must not keep a server alive on its own: SIGTERM (or the parent's exit) ends it.
  process.channel?.unref();
}

/** Pins this process (the load generator) to `core`. */
export function pinSelf(core: number): void {
  spawn('taskset', ['-cp', String(core), String(process.pid)], { stdio: 'ignore' });
}
