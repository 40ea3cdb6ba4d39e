import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { freePort } from './free-port.js';

/**
 * Where to find a Redis program (`redis-server`, `redis-cli`): the environment variable
 * `envName`, else the Debian path, else the PATH. Missing, it throws an error saying what
 * to install; `needs` says what the tests need it for.
 */
export function redisBinary(name: 'redis-server' | 'redis-cli', envName: string, needs: string): string {
  const candidates = [process.env[envName], `/usr/bin/${name}`].filter((path): path is string => !!path);
  const found = candidates.find((path) => existsSync(path));
  if (found) {
    return found;
  }
  const which = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) {
    return which.stdout.trim();
  }
  throw new Error(
    `${name} is not installed, and ${needs}. Install it: ` +
      '`sudo apt-get install -y redis-server` (Debian/Ubuntu, with redis-cli; .ci/run does this when it is missing), ' +
      `\`brew install redis\` (macOS), or set ${envName} to its path.`,
  );
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
  });
}

/**
 * More `redis-server` arguments, after the defaults (`--cluster-enabled yes`, say): a list, or
 * a function of the port the server gets. `run()` passes the same ones again on a restart.
 */
export type RedisServerArgs = readonly string[] | ((port: number) => readonly string[]);

/**
 * A throw-away `redis-server` for tests: on a free port of 127.0.0.1, keeping nothing on
 * disk. Tests kill and restart it to play broker failures.
 */
export class RedisServer {
  private child: ChildProcess | undefined;

  private constructor(
    readonly port: number,
    private readonly extraArgs: readonly string[] = [],
  ) {}

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** A server on a free port, not started yet (`run()` starts it). `extraArgs`: see {@link RedisServerArgs}. */
  static async reserve(extraArgs?: RedisServerArgs): Promise<RedisServer> {
    const port = await freePort();
    return new RedisServer(port, typeof extraArgs === 'function' ? extraArgs(port) : extraArgs);
  }

  /** A running server on a free port (up to 3 ports are tried). `extraArgs`: see {@link RedisServerArgs}. */
  static async start(extraArgs?: RedisServerArgs): Promise<RedisServer> {
    let lastError: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      const server = await RedisServer.reserve(extraArgs);
      try {
        await server.run();
        return server;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** The running server's process id (the benchmarks read its CPU time). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts (or restarts, on the same port) the server and waits until it answers PING. */
  async run(): Promise<void> {
    const binary = redisBinary('redis-server', 'REDIS_SERVER', 'the Redis broker tests start their own');
    const child = spawn(
      binary,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--loglevel',
        'warning',
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`redis-server exited with ${child.exitCode}: ${stderr}`);
      }
      if (await ping(this.port)) {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${this.port} within 10 s: ${stderr}`);
  }

  /** Kills the server at once (SIGKILL), as a crash would, and waits for it to be gone. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** Freezes the server (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Thaws a paused server (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Stops the server for good. */
  stop(): Promise<void> {
    return this.kill();
  }
}
