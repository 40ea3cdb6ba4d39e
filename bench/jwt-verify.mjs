// Cost of verifying one HS256 token at the handshake: the plugin's verifier (secret as a
// KeyObject, made once) against @nestjs/jwt with the secret as a string, in the same run.
// Run after a build: `npm run build && node bench/jwt-verify.mjs`.
import { JwtService } from '@nestjs/jwt';
import { JwtVerifier } from '../dist/src/auth/jwt-verifier.js';

const secret = 'bench-secret-0123456789abcdef0123456789abcdef';
const token = new JwtService({ secret }).sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 });
const plugin = new JwtVerifier({ secret });
const stock = new JwtService({ secret });

async function measure(name, verify, iterations) {
  for (let i = 0; i < 200; i++) await verify();
  const start = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) await verify();
  const us = Number(process.hrtime.bigint() - start) / 1000 / iterations;
  console.log(`${name.padEnd(44)} ${us.toFixed(1).padStart(8)} µs/verify`);
  return us;
}

const fast = await measure('plugin JwtVerifier (KeyObject secret)', () => plugin.verify(token), 20000);
const slow = await measure('@nestjs/jwt verify, string secret', () => stock.verify(token), 2000);
console.log(`ratio string/KeyObject: ${(slow / fast).toFixed(1)}x`);
