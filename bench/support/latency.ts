// Latency percentiles with an HDR histogram (hdr-histogram-js): constant memory whatever
// the sample count, 3 significant digits, values recorded in microseconds.
import * as hdr from 'hdr-histogram-js';

/** Percentiles of one run, in milliseconds. */
export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

/** Records latencies given in milliseconds; reads percentiles in milliseconds. */
export class LatencyRecorder {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000, // two minutes, in µs
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });

  /** Records one latency of `ms` milliseconds (clamped to the trackable range). */
  record(ms: number): void {
    this.histogram.recordValue(Math.min(120_000_000, Math.max(1, Math.round(ms * 1000))));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  /** p50, p99, p99.9 and max, in ms; NaN when nothing was recorded. */
  percentiles(): Percentiles {
    const count = this.histogram.totalCount;
    const at = (p: number): number => (count === 0 ? NaN : this.histogram.getValueAtPercentile(p) / 1000);
    return { count, p50: at(50), p99: at(99), p999: at(99.9), max: count === 0 ? NaN : this.histogram.maxValue / 1000 };
  }

  reset(): void {
    this.histogram.reset();
  }
}

/** The median of `values` (the upper one of an even count). */
export function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

/** Fisher–Yates shuffle into a new array: each round runs contenders in a fresh order. */
export function shuffled<T>(values: readonly T[]): T[] {
  const copy = [...values];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j]!, copy[i]!];
  }
  return copy;
}

/**
 * The flag of a contender with a run in which the server used less than 85% of its core:
 * empty when every run was server-bound.
 */
export function notServerBound(results: readonly { cpu: number; generatorCpu: number }[]): string {
  const cpu = Math.min(...results.map((result) => result.cpu));
  const generator = Math.max(...results.map((result) => result.generatorCpu));
  return cpu < 0.85
    ? `  <- a run at ${Math.round(cpu * 100)}% server CPU (generator up to ${Math.round(generator * 100)}%): not server-bound`
    : '';
}

/**
 * The contenders `BENCH_CONTENDERS` (comma-separated keys) names, or `defaults` (every
 * one when not given); an unknown key is an error that lists the known ones.
 */
export function pickContenders<T extends { readonly key: string }>(all: readonly T[], defaults?: readonly string[]): T[] {
  const keys = process.env.BENCH_CONTENDERS?.split(',') ?? defaults ?? all.map((contender) => contender.key);
  const unknown = keys.filter((key) => !all.some((contender) => contender.key === key));
  if (unknown.length > 0) {
    throw new Error(`BENCH_CONTENDERS: unknown ${unknown.join(', ')}; known: ${all.map((contender) => contender.key).join(', ')}`);
  }
  return all.filter((contender) => keys.includes(contender.key));
}
