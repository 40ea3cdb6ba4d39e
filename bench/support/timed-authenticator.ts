// The diagnostic of PLUGIN_VARIANT=timed-auth (bench/handshakes.ts): the plugin's own JWT
// authenticator, the one `auth: { secret }` makes, with the synchronous part of each
// handshake's authentication timed inside the server while it takes the load (token
// extraction, the HS256 verify and the claims checks all run before its first await), and
// the same calls timed in a tight loop before the server listens. The server prints both
// to stderr when it exits.
import { JwtService } from '@nestjs/jwt';
import type { IncomingMessage } from 'node:http';
import { createSecretKey } from 'node:crypto';
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';
import { JwtAuthenticator, type RealtimeAuthenticator, type RealtimeAuthOptions } from '../../src/index.js';

/** Tight-loop calls: a warm-up, then the timed ones, each with a token of its own. */
const LOOP_WARM_UP = 1000;
const LOOP_TIMED = 3000;

/** Times `call` into `histogram`, in ns (at least 1: a histogram records no zero). */
function timed<T>(histogram: RecordableHistogram, call: () => T): T {
  const start = process.hrtime.bigint();
  const result = call();
  histogram.record(Math.max(1, Number(process.hrtime.bigint() - start)));
  return result;
}

/** A histogram of ns as printed: p10, p50 and p90 in µs, the mean and the count. */
function describe(histogram: RecordableHistogram): string {
  const us = (ns: number): string => (ns / 1000).toFixed(1);
  return (
    `p10 ${us(histogram.percentile(10))}  p50 ${us(histogram.percentile(50))}  p90 ${us(histogram.percentile(90))} µs ` +
    `(mean ${us(histogram.mean)}, ${histogram.count} calls)`
  );
}

/**
 * A JWT authenticator for `secret` that times itself: first in a tight loop (run here),
 * then on every handshake; both are printed to stderr when the process exits.
 */
export async function timedJwtAuthenticator(secret: string, options: Omit<RealtimeAuthOptions, 'secret'>): Promise<RealtimeAuthenticator> {
  const inner = new JwtAuthenticator({ ...options, secret });
  const signer = new JwtService({ secret: createSecretKey(Buffer.from(secret)) });
  // Signed first, so that the loop times the authenticator alone.
  const requests = Array.from({ length: LOOP_WARM_UP + LOOP_TIMED }, (_, i) => {
    const token = signer.sign({ sub: `loop${i}` }, { expiresIn: '1h' });
    return { headers: { authorization: `Bearer ${token}` }, url: '/echo' } as unknown as IncomingMessage;
  });
  const loop = createHistogram();
  for (const [i, request] of requests.entries()) {
    const authentication = i < LOOP_WARM_UP ? inner.authenticate(request) : timed(loop, () => inner.authenticate(request));
    if ((await authentication)?.principal.sub !== `loop${i}`) {
      throw new Error('the timed authenticator did not verify its own token');
    }
  }
  const live = createHistogram();
  process.once('exit', () => {
    process.stderr.write(
      `\n  authentication's synchronous part, in the plugin's server (PLUGIN_VARIANT=timed-auth):\n` +
        `    in a tight loop before listening: ${describe(loop)}\n` +
        `    on the benchmark's handshakes:    ${describe(live)}\n`,
    );
  });
  return {
    missing: inner.missing,
    authenticate: (request) => timed(live, () => inner.authenticate(request)),
    refresh: (data) => inner.refresh(data),
  };
}
