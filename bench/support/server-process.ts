// Starts a benchmark server in a child process pinned to one core, and reads its CPU time.
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

const CLOCK_TICKS = 100;

/** Runs `node script` on core `core` (via taskset) and waits for its `{"port"}` line. */
export async function startServer(script: string, core = 0, env: NodeJS.ProcessEnv = {}): Promise<ServerProcess> {
  // BENCH_PROFILE=<dir>: the server writes a V8 CPU profile there (node --cpu-prof) when it stops.
  const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...profile, script], {
    stdio: ['ignore', 'pipe', 'inherit'],
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
    cpuSeconds: () => {
      const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
    },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Pins this process (the load generator) to `core`. */
export function pinSelf(core: number): void {
  spawn('taskset', ['-cp', String(core), String(process.pid)], { stdio: 'ignore' });
}
