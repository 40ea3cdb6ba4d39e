// `npm run bench`: the six scenarios, one script each, in one run of under five
// minutes on the project's 2-core machine. Each script prints its own table; this runner
// repeats every target verdict at the end, with how long each script took.
// `npm run bench -- echo broadcast` runs only the scripts named.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** The scenarios, in the order the issue lists them. */
const SCRIPTS = ['echo', 'handshakes', 'memory', 'broadcast', 'redis-latency', 'invalid-mix'] as const;

/** Runs `dist/bench/<name>.js`, echoing its output; resolves with its target lines and exit code. */
function runScript(name: string): Promise<{ targets: string[]; code: number | null; seconds: number }> {
  const startedAt = performance.now();
  const child = spawn(process.execPath, [new URL(`./${name}.js`, import.meta.url).pathname], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const targets: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    console.log(line);
    if (line.includes('(target') || line.includes('<- ')) {
      targets.push(line.trim());
    }
  });
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ targets, code, seconds: (performance.now() - startedAt) / 1000 }));
  });
}

const chosen = process.argv.slice(2);
const unknown = chosen.filter((name) => !(SCRIPTS as readonly string[]).includes(name));
if (unknown.length > 0) {
  throw new Error(`unknown benchmark ${unknown.join(', ')}: pick from ${SCRIPTS.join(', ')}`);
}
const summary: string[] = [];
let failed = false;
for (const name of chosen.length > 0 ? chosen : SCRIPTS) {
  console.log(`\n## ${name}`);
  const { targets, code, seconds } = await runScript(name);
  failed ||= code !== 0;
  summary.push(`${name} (${seconds.toFixed(0)} s${code === 0 ? '' : `, exited with ${code}`}):`, ...targets.map((line) => `  ${line}`));
}
console.log(`\n## targets and flags\n${summary.join('\n')}`);
process.exitCode = failed ? 1 : 0;
