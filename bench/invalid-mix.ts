// Scenario 6: 10% invalid messages mixed in. Throughput must hold, and every
// invalid message must get its error frame. The plugin's echo server of bench/echo
// (authenticated, `EchoDto` validated, heartbeat on, rate limits off) answers, closed loop,
// 100 connections x 16 in flight, (i) only valid echoes and (ii) nine valid echoes then one
// invalid, in turn. The invalid one is well-formed JSON with an id whose `message` is a
// number, so it fails `EchoDto` and must be answered by a VALIDATION_FAILED error frame
// carrying its id (docs/protocol.md §2). Valid requests use id 1 and invalid ones id 2,
// so that replies are sorted by their first bytes alone: `{"event":"echo","id":1,` or
// `{"event":"error","id":2,"data":{"code":"VALIDATION_FAILED"`; anything else is counted and
// shown. The invalid-frame budget (100 per 10 s per connection, then close 1008) is left at
// its default: validation failures do not count against it (protocol §2), and with each
// connection sending dozens to hundreds of invalid frames a second, a run would close
// connections if they did; closed connections are counted. (i) and (ii) alternate over a few rounds on the same
// server and the same connections; medians and the median of per-round ratios are reported.
// As a reference, stock Nest + ValidationPipe runs the same mix (its error is an
// `exception` event without id, so its errors are matched by count only);
// `BENCH_CONTENDERS=plugin` leaves it out. Each server is pinned to core 0, this raw-TCP
// load generator to core 1. Run: `npm run bench`.
import { JwtService } from '@nestjs/jwt';
import { median, notServerBound, pickContenders } from './support/latency.js';
import { type MixedFrame, type MixedResult, type ReplyPrefixes, mixedLoop } from './support/mixed-load.js';
import { pinSelf, type ServerProcess, startServer } from './support/server-process.js';
import { type LoadConnection, closeAll, maskedTextFrame, openConnections } from './support/ws-load.js';

const CONNECTIONS = 100;
const IN_FLIGHT = 16;
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 700);
const WARM_UP_MS = 200;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** The secret of bench/servers/echo-contenders.ts. */
const BENCH_SECRET = 'bench-secret-0123456789abcdef0123456789';

const valid = maskedTextFrame(JSON.stringify({ event: 'echo', id: 1, data: { message: 'hello from the benchmark, 64 bytes' } }));
const invalid = maskedTextFrame(JSON.stringify({ event: 'echo', id: 2, data: { message: 42 } }));
const MIXES: Record<'valid' | 'mixed', readonly MixedFrame[]> = {
  valid: [{ frame: valid, invalid: false }],
  mixed: [...Array.from({ length: 9 }, () => ({ frame: valid, invalid: false })), { frame: invalid, invalid: true }],
};
type Mix = keyof typeof MIXES;

interface Contender {
  readonly key: string;
  readonly name: string;
  /** Environment of its echo-contenders.ts process. */
  readonly env: Record<string, string>;
  readonly prefixes: ReplyPrefixes;
  /** What its error frame is, for the report. */
  readonly errorFrame: string;
  headers?(index: number): Record<string, string>;
}

const jwt = new JwtService({ secret: BENCH_SECRET });

const contenders: readonly Contender[] = [
  {
    key: 'plugin',
    name: 'this plugin (auth+validation+heartbeat)',
    env: { CONTENDER: 'plugin' },
    prefixes: {
      ok: Buffer.from('{"event":"echo","id":1,'),
      error: Buffer.from('{"event":"error","id":2,"data":{"code":"VALIDATION_FAILED"'),
    },
    errorFrame: 'VALIDATION_FAILED with the id',
    headers: (index) => ({ authorization: `Bearer ${jwt.sign({ sub: `user${index}` }, { expiresIn: '1h' })}` }),
  },
  {
    key: 'nest-ws-validation',
    name: 'stock Nest + ValidationPipe (reference)',
    env: { CONTENDER: 'nest-ws-validation' },
    prefixes: { ok: Buffer.from('{"event":"echo",'), error: Buffer.from('{"event":"exception"') },
    errorFrame: 'an `exception` event without id: matched by count only',
  },
];

interface Running {
  readonly contender: Contender;
  readonly server: ServerProcess;
  readonly connections: LoadConnection[];
  readonly runs: Record<Mix, MixedResult[]>;
}

/** Starts a contender's server and opens its connections, kept for every run. */
async function setUp(contender: Contender): Promise<Running> {
  const server = await startServer(new URL('./servers/echo-contenders.js', import.meta.url).pathname, 0, contender.env);
  const url = `ws://127.0.0.1:${server.port}/echo`;
  const connections = (
    await Promise.all(Array.from({ length: CONNECTIONS }, (_, index) => openConnections(url, 1, contender.headers?.(index))))
  ).flat();
  return { contender, server, connections, runs: { valid: [], mixed: [] } };
}

function run(running: Running, mix: Mix): Promise<MixedResult> {
  return mixedLoop(running.connections, MIXES[mix], running.contender.prefixes, {
    inFlight: IN_FLIGHT,
    durationMs: RUN_MS,
    warmUpMs: WARM_UP_MS,
    cpuSeconds: () => running.server.cpuSeconds(),
  });
}

const sum = (
  results: readonly MixedResult[],
  field: 'sent' | 'sentInvalid' | 'ok' | 'errors' | 'other' | 'unanswered' | 'closed',
): number => results.reduce((total, result) => total + result[field], 0);

function rateRow(label: string, results: readonly MixedResult[]): string {
  const flag = notServerBound(results);
  return `    ${label.padEnd(28)} ${Math.round(median(results.map((r) => r.rate)))
    .toString()
    .padStart(7)} msg/s${flag}`;
}

function report({ contender, runs }: Running): void {
  console.log(`  ${contender.name}; its error frame: ${contender.errorFrame}`);
  console.log(rateRow('all valid', runs.valid));
  console.log(rateRow('9 valid + 1 invalid per 10', runs.mixed));
  const ratios = runs.mixed.map((result, round) => result.rate / runs.valid[round]!.rate);
  console.log(`    mixed / all valid: ${median(ratios).toFixed(2)}x (median of per-round ratios)`);
  const all = [...runs.valid, ...runs.mixed];
  const sentInvalid = sum(all, 'sentInvalid');
  const errors = sum(all, 'errors');
  const sentValid = sum(all, 'sent') - sentInvalid;
  const ok = sum(all, 'ok');
  const other = sum(all, 'other');
  const unanswered = sum(all, 'unanswered');
  const closed = sum(all, 'closed');
  const every = sentInvalid === errors && other === 0 && unanswered === 0 && closed === 0;
  console.log(
    `    every invalid message got its error frame: ${every ? 'yes' : 'NO'} (sent ${sentInvalid}, errors ${errors})` +
      `  (target: every one answered, nothing dropped, throughput holds: ${every ? 'met' : 'NOT met'}, mixed / all valid ${median(ratios).toFixed(2)}x)`,
  );
  console.log(
    `    valid sent ${sentValid}, success replies ${ok}; other replies ${other}; unanswered after draining ${unanswered}; ` +
      `connections closed by the server ${closed}`,
  );
  const sample = all.find((result) => result.otherSample !== undefined)?.otherSample;
  if (sample !== undefined) {
    console.log(`    !!! an unexpected reply: ${sample}`);
  }
  if (!every || ok !== sentValid) {
    console.log('    !!! REPLIES DO NOT MATCH REQUESTS: see the counts above');
  }
}

pinSelf(1);
const running = await Promise.all(pickContenders(contenders).map(setUp));
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate both the servers' order and the mixes' order from round to round.
    for (const current of round % 2 === 0 ? running : [...running].reverse()) {
      for (const mix of (round % 2 === 0 ? ['valid', 'mixed'] : ['mixed', 'valid']) as Mix[]) {
        current.runs[mix].push(await run(current, mix));
      }
    }
  }
  console.log(
    `10% invalid messages (fail EchoDto), ${CONNECTIONS} connections x ${IN_FLIGHT} in flight, ${ROUNDS} rounds of ` +
      `${RUN_MS / 1000} s, server on core 0:`,
  );
  for (const current of running) {
    report(current);
  }
} finally {
  for (const current of running) {
    closeAll(current.connections);
  }
  await Promise.all(running.map((current) => current.server.stop()));
}
