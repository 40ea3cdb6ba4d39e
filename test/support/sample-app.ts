import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../../sample-app/src/main.js', import.meta.url));

/** Starts the built sample app as `npm start` does, on a free port; resolves with its ready URL. */
export async function startSampleApp(env: NodeJS.ProcessEnv = {}): Promise<{ child: ChildProcess; wsUrl: string; output: () => string }> {
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const deadline = Date.now() + 15_000;
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
