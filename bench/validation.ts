// Cost of DTO validation on the hot path, in the same run:
//  1. per call: the plugin's RealtimeValidationPipe against Nest's ValidationPipe on the
//     sample app's EchoDto (each call on a freshly parsed payload; parse cost subtracted);
//  2. end to end: echo throughput of a validated gateway against the same gateway with
//     validation off, one using Nest's ValidationPipe, and one with a single trivial Nest
//     interceptor (HeartbeatInterceptor) on top of validation, server pinned to core 0,
//     this load generator on core 1, 100 connections with 16 messages in flight each.
// Run: `npm run bench` (or, after `npm run build:bench`, `node dist/bench/validation.js`).
import 'reflect-metadata';
import { type ArgumentMetadata, ValidationPipe } from '@nestjs/common';
import { useContainer } from 'class-validator';
import { RealtimeValidationPipe } from '../src/index.js';
import { EchoDto } from '../sample-app/src/echo.dto.js';
import { closeAll, closedLoop, maskedTextFrame, openConnections } from './support/ws-load.js';
import { pinSelf, startServer } from './support/server-process.js';

const CONNECTIONS = 100;
const IN_FLIGHT = 16;
const RUN_MS = 1500;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

const metadata: ArgumentMetadata = { type: 'body', metatype: EchoDto, data: undefined };
const valid = JSON.stringify({ message: 'hello from the benchmark, 64 bytes or so!!' });
const invalid = JSON.stringify({ message: '', extra: true });

async function perCall(name: string, transform: (value: unknown) => unknown, text: string, iterations: number): Promise<number> {
  const run = async (count: number): Promise<number> => {
    const start = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      try {
        await transform(JSON.parse(text));
      } catch {
        // An invalid payload: the error is the result being measured.
      }
    }
    return Number(process.hrtime.bigint() - start) / count;
  };
  await run(iterations / 10);
  const ns = await run(iterations);
  console.log(`  ${name.padEnd(52)} ${(ns / 1000).toFixed(2).padStart(7)} µs/call`);
  return ns;
}

async function micro(): Promise<void> {
  console.log('1. per call, EchoDto (parse included, then subtracted):');
  const parse = await perCall('JSON.parse only', (value) => value, valid, 200_000);
  await pipesCompared(parse, 50_000, 20_000);
  console.log(
    "1b. the same, with class-validator's container set as for Nest (get() throws for its own constraint classes, fallbackOnErrors):",
  );
  // As Nest's documentation sets it for injectable constraints,
  // `useContainer(app.select(AppModule), { fallbackOnErrors: true })`: Nest's container
  // throws for a class it does not provide (class-validator's own constraint classes), and
  // class-validator falls back.
  useContainer(
    {
      get(type: Function): never {
        throw new Error(`Nest could not find ${type.name} element (this provider does not exist in the current context)`);
      },
    },
    { fallbackOnErrors: true },
  );
  try {
    await pipesCompared(parse, 20_000, 10_000);
  } finally {
    useContainer(undefined as unknown as { get(type: unknown): unknown });
  }
}

/** The plugin's pipe against Nest's on a valid and an invalid payload, with the cost of validation less `parse`. */
async function pipesCompared(parse: number, nestValidCalls: number, nestInvalidCalls: number): Promise<void> {
  const plugin = new RealtimeValidationPipe({});
  const nest = new ValidationPipe({ transform: true, whitelist: true, forbidNonWhitelisted: true });
  const pluginValid = await perCall('RealtimeValidationPipe, valid', (value) => plugin.transform(value, metadata), valid, 200_000);
  const nestValid = await perCall(
    'Nest ValidationPipe (transform), valid',
    (value) => nest.transform(value, metadata),
    valid,
    nestValidCalls,
  );
  const pluginInvalid = await perCall('RealtimeValidationPipe, invalid', (value) => plugin.transform(value, metadata), invalid, 50_000);
  const nestInvalid = await perCall(
    'Nest ValidationPipe (transform), invalid',
    (value) => nest.transform(value, metadata),
    invalid,
    nestInvalidCalls,
  );
  const cost = (ns: number): string => `${((ns - parse) / 1000).toFixed(2)} µs`;
  console.log(
    `  validation cost, valid: plugin ${cost(pluginValid)}, Nest ${cost(nestValid)} ` +
      `(${((nestValid - parse) / (pluginValid - parse)).toFixed(1)}x); ` +
      `invalid: plugin ${cost(pluginInvalid)}, Nest ${cost(nestInvalid)} ` +
      `(${((nestInvalid - parse) / (pluginInvalid - parse)).toFixed(1)}x)`,
  );
}

async function endToEnd(): Promise<void> {
  console.log(`2. echo throughput, ${CONNECTIONS} connections x ${IN_FLIGHT} in flight, server on core 0:`);
  pinSelf(1);
  const server = await startServer(new URL('./servers/validation-server.js', import.meta.url).pathname, 0);
  const frame = maskedTextFrame(JSON.stringify({ event: 'echo', id: 1, data: JSON.parse(valid) as unknown }));
  const paths = (process.env.BENCH_PATHS ?? '/unvalidated,/validated,/nest-validation-pipe,/intercepted').split(',');
  const results = new Map<string, number[]>(paths.map((path) => [path, []]));
  try {
    // Round 0 warms the server's JIT up on every path and is not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      for (const path of round % 2 === 0 ? paths : [...paths].reverse()) {
        const connections = await openConnections(`ws://127.0.0.1:${server.port}${path}`, CONNECTIONS);
        const cpuBefore = server.cpuSeconds();
        const startedAt = Date.now();
        const rate = await closedLoop(connections, frame, IN_FLIGHT, RUN_MS);
        const cpu = (server.cpuSeconds() - cpuBefore) / ((Date.now() - startedAt) / 1000);
        closeAll(connections);
        if (round > 0) {
          results.get(path)!.push(rate);
        }
        const flag = cpu < 0.85 ? '  <- server not saturated: the load generator may be the bottleneck' : '';
        console.log(
          `  ${round === 0 ? 'warm-up ' : `round ${round} `}${path.padEnd(24)} ${Math.round(rate).toString().padStart(8)} msg/s  server CPU ${(cpu * 100).toFixed(0)}%${flag}`,
        );
      }
    }
  } finally {
    await server.stop();
  }
  // The median of the rounds: runs on a shared VM swing by a third now and then.
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(`  median: ${paths.map((path) => `${path} ${Math.round(median(results.get(path)!))}`).join(', ')} msg/s`);
  // Ratios paired within each round, whose runs are seconds apart, then their median:
  // this cancels most of the machine's drift between rounds.
  const ratios: [string, string, string][] = [
    ['/validated', '/unvalidated', 'validated/unvalidated'],
    ['/validated', '/nest-validation-pipe', "validated/Nest's ValidationPipe"],
    ['/intercepted', '/validated', 'validated + one no-op Nest interceptor / validated'],
  ];
  for (const [a, b, label] of ratios) {
    if (results.has(a) && results.has(b)) {
      const paired = results.get(a)!.map((rate, round) => rate / results.get(b)![round]!);
      console.log(`  ${label}: ${median(paired).toFixed(2)} (median of per-round ratios)`);
    }
  }
}

await micro();
await endToEnd();
