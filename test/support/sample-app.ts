import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../sample-app/src/main.js', import.meta.url));
/** The project's root (its package.json, sources and node_modules). */
export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * A copy of the project's sources and settings in a temporary directory, with its
 * node_modules linked: for tests that build (into the copy's dist/, never into the dist/
 * the tests run from).
 */
export function copyProject(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'realtime-project-'));
  for (const entry of [
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'tsconfig.cjs.json',
    'nest-cli.json',
    'scripts',
    'src',
    'sample-app',
  ]) {
    cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts the built sample app as `npm start` does, on a free port; resolves with its ready
 * URL. `command` runs something else that starts it (in `cwd`), such as the Nest CLI: in a
 * process group of its own, which {@link stopGroup} stops.
 */
export async function startSampleApp(
  env: NodeJS.ProcessEnv = {},
  command: { args: string[]; cwd: string; readyWithinMs: number } = { args: [MAIN], cwd: process.cwd(), readyWithinMs: 15_000 },
): Promise<{ child: ChildProcess; wsUrl: string; output: () => string }> {
  const child = spawn(process.execPath, command.args, {
    cwd: command.cwd,
    detached: command.args[0] !== MAIN,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + command.readyWithinMs;
  while (Date.now() < deadline) {
    const match = /wss?:\/\/[\d.]+:\d+\/echo/.exec(output);
    if (match) {
      return { child, wsUrl: match[0], output: () => output };
    }
    if (child.exitCode !== null) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`the sample app did not log its ws:// URL:\n${output}`);
}

/** Sends SIGTERM to the process group `child` leads, and waits until none of its processes is left. */
export async function stopGroup(child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const group = -child.pid!;
  const alive = (): boolean => {
    try {
      process.kill(group, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (alive()) {
    process.kill(group, 'SIGTERM');
  }
  const deadline = Date.now() + timeoutMs;
  while (alive()) {
    if (Date.now() > deadline) {
      process.kill(group, 'SIGKILL');
      throw new Error(`process group ${-group} still ran ${timeoutMs} ms after SIGTERM`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A token from the sample app's demo login at `base` (`http://host:port`). */
export async function demoToken(base: string, username: string): Promise<string> {
  const response = await fetch(`${base}/auth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username }),
  });
  if (response.status !== 200) {
    throw new Error(`the demo login answered ${response.status}`);
  }
  return ((await response.json()) as { access_token: string }).access_token;
}
