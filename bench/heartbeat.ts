// CPU cost of heartbeats at 10,000 idle connections, in one run: the server's CPU time
// over the same idle window with heartbeats off and on, with clients that answer pings
// as browsers do, and the same for a raw `ws` server running the heartbeat of `ws`'s
// README (the baseline). The interval is 1 s here (25 times the default rate) so that the
// cost is measurable; the cost at the default 25 s interval is derived from it.
// Run: `npm run bench` (or, after a build, `node dist/bench/heartbeat.js`).
import { closeAll, openConnections, sleep } from './support/ws-load.js';
import { pinSelf, startServer } from './support/server-process.js';

const CONNECTIONS = 10_000;
const WINDOW_MS = 10_000;
const INTERVAL_MS = 1000;
const TIMEOUT_MS = 1000;
const DEFAULT_INTERVAL_MS = 25_000;

async function idleCpu(port: number, cpuSeconds: () => number, path: string): Promise<{ cpu: number; pings: number }> {
  const connections = await openConnections(`ws://127.0.0.1:${port}${path}`, CONNECTIONS);
  // Let the handshakes' work settle, then measure an idle window.
  await sleep(2 * INTERVAL_MS);
  const pingsBefore = connections.reduce((sum, c) => sum + c.pings, 0);
  const before = cpuSeconds();
  const startedAt = performance.now();
  await sleep(WINDOW_MS);
  const seconds = (performance.now() - startedAt) / 1000;
  const cpu = (cpuSeconds() - before) / seconds;
  const pings = connections.reduce((sum, c) => sum + c.pings, 0) - pingsBefore;
  const alive = connections.filter((c) => !c.socket.destroyed).length;
  closeAll(connections);
  if (alive !== CONNECTIONS) {
    throw new Error(`${CONNECTIONS - alive} connections were cut while answering pings`);
  }
  await sleep(1000);
  return { cpu, pings: pings / seconds };
}

const env = { HB_INTERVAL_MS: String(INTERVAL_MS), HB_TIMEOUT_MS: String(TIMEOUT_MS) };
const row = (label: string, cpu: number, pings?: number): string =>
  `  ${label.padEnd(38)} ${(cpu * 100).toFixed(2).padStart(6)} % of a core` +
  (pings === undefined ? '' : `  (${Math.round(pings)} pings/s)`);

pinSelf(1);
console.log(`heartbeat CPU, ${CONNECTIONS} idle connections answering pings, ${WINDOW_MS / 1000} s window, server on core 0:`);
const baseline = await startServer(new URL('./servers/echo-contenders.js', import.meta.url).pathname, 0, {
  ...env,
  CONTENDER: 'ws-heartbeat',
});
let wsPerPing: number;
try {
  const ws = await idleCpu(baseline.port, baseline.cpuSeconds, '/');
  wsPerPing = (ws.cpu / ws.pings) * 1e6;
  console.log(row(`raw ws, ws.ping() every ${INTERVAL_MS} ms`, ws.cpu, ws.pings));
} finally {
  await baseline.stop();
}
const server = await startServer(new URL('./servers/heartbeat-server.js', import.meta.url).pathname, 0, env);
try {
  const off = await idleCpu(server.port, server.cpuSeconds, '/no-heartbeat');
  console.log(row('this plugin, heartbeat off', off.cpu));
  const on = await idleCpu(server.port, server.cpuSeconds, '/heartbeat');
  console.log(row(`this plugin, heartbeat on, ${INTERVAL_MS} ms`, on.cpu, on.pings));
  // Whole CPU per ping, as for raw ws (which has no heartbeat-off run to subtract).
  const perPing = (on.cpu / on.pings) * 1e6;
  const atDefault = ((on.cpu - off.cpu) * INTERVAL_MS) / DEFAULT_INTERVAL_MS;
  console.log(
    `  cost per ping/pong cycle, sweep included: ${perPing.toFixed(1)} µs of server CPU ` +
      `(raw ws: ${wsPerPing.toFixed(1)} µs, ${(perPing / wsPerPing).toFixed(2)}x)`,
  );
  console.log(
    `  at the default ${DEFAULT_INTERVAL_MS / 1000} s interval: ${(atDefault * 100).toFixed(2)} % of a core ` +
      `for ${CONNECTIONS} idle connections`,
  );
} finally {
  await server.stop();
}
