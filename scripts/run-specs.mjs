// Runs spec files with node's test runner, one file at a time, in an order shuffled by a
// seed it prints, so that no file can lean on what another left behind. Replay an order
// with TEST_SEED=<seed>. Node flags given to this script (--enable-source-maps, --import)
// reach every spec's process.
//
//   node [node flags] scripts/run-specs.mjs <spec files…>
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { resolve } from 'node:path';

const files = process.argv.slice(2).map((file) => resolve(file));
if (files.length === 0) {
  console.error('usage: node scripts/run-specs.mjs <spec files…>');
  process.exit(2);
}
const seed = Number(process.env.TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
if (!Number.isInteger(seed) || seed < 0) {
  console.error(`TEST_SEED must be a non-negative integer, got ${process.env.TEST_SEED}`);
  process.exit(2);
}

// A seeded shuffle (mulberry32, Fisher-Yates): the same seed gives the same order.
let state = seed;
const random = () => {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
for (let i = files.length - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [files[i], files[j]] = [files[j], files[i]];
}
console.log(`spec files in shuffled order, seed ${seed} (TEST_SEED=${seed} replays it)`);

const stream = run({ files, concurrency: 1 });
stream.on('test:fail', () => {
  process.exitCode = 1;
});
stream.compose(spec).pipe(process.stdout);
