// One closed-loop echo run against a server that is already up, shared by bench/echo and
// bench/encodings: fresh connections each time, the server's and the generator's CPU
// shares over the measured window only (not the warm-up, not the drain).
import { closeAll, type LoadConnection, type LoopResult, openConnections, timedLoop } from './ws-load.js';

/** One run's figures: the loop's, the server's CPU share, and the generator's. */
export type RunResult = LoopResult & { cpu: number; generatorCpu: number };

/** How to load one server in a run. */
export interface EchoLoad {
  readonly url: string;
  readonly connections: number;
  /** The request, as a masked client frame. */
  readonly frame: Buffer;
  /** Headers of connection `i`. */
  headers?(i: number): Record<string, string>;
  /** Protocol set-up, installed before the first frame is read; resolves when it is done. */
  prepare?(connection: LoadConnection): Promise<void>;
  /** The server's CPU seconds so far. */
  cpuSeconds(): number;
}

/** Runs `load` with `inFlight` requests outstanding per connection for `durationMs` (after 500 ms of warm-up). */
export async function echoRun(load: EchoLoad, inFlight: number, durationMs: number): Promise<RunResult> {
  const connections: LoadConnection[] = [];
  for (let i = 0; i < load.connections; i++) {
    let prepared: Promise<void> | undefined;
    const [connection] = await openConnections(load.url, 1, load.headers?.(i), (opened) => {
      prepared = load.prepare?.(opened);
    });
    await prepared;
    connections.push(connection!);
  }
  let cpu = 0;
  let generatorCpu = 0;
  let cpuBefore = 0;
  let generatorBefore = process.cpuUsage();
  let startedAt = 0;
  const result = await timedLoop(connections, load.frame, inFlight, durationMs, 500, {
    start: () => {
      cpuBefore = load.cpuSeconds();
      generatorBefore = process.cpuUsage();
      startedAt = performance.now();
    },
    end: () => {
      const seconds = (performance.now() - startedAt) / 1000;
      const generator = process.cpuUsage(generatorBefore);
      cpu = (load.cpuSeconds() - cpuBefore) / seconds;
      generatorCpu = (generator.user + generator.system) / 1e6 / seconds;
    },
  });
  closeAll(connections);
  return { ...result, cpu, generatorCpu };
}
