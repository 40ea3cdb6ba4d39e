import type { INestApplicationContext } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import type { JwtKey } from '../auth/auth-options.interface.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';

/** Options of {@link signTestToken}. */
export interface TestTokenOptions {
  /** Lifetime in seconds (`exp`). Default 3600. */
  expiresInSeconds?: number;
  /**
   * The signing key, when the app verifies with a public key or a key resolver (a private
   * key for RS256/ES256, say). Default: the app's `auth.secret`.
   */
  key?: JwtKey;
}

/**
 * A token the app's gateways accept, for tests: `claims` (a `sub` at least) signed with the
 * app's own `auth.secret` (or `options.key`) under its first pinned algorithm, with its
 * audience and issuer when it requires them, and an `exp`.
 *
 * @example const token = await signTestToken(app, { sub: 'alice', roles: ['admin'] });
 */
export function signTestToken(
  app: INestApplicationContext,
  claims: { readonly sub: string } & Readonly<Record<string, unknown>>,
  options: TestTokenOptions = {},
): Promise<string> {
  const auth = app.get<RealtimeModuleOptions>(REALTIME_MODULE_OPTIONS, { strict: false }).auth;
  const key = options.key ?? auth?.secret;
  if (key === undefined) {
    throw new TypeError('signTestToken: the app has no auth.secret; pass the signing key as options.key');
  }
  const algorithm = auth?.algorithms?.[0] ?? (options.key === undefined ? 'HS256' : 'RS256');
  const audience = Array.isArray(auth?.audience) ? auth.audience[0] : auth?.audience;
  const issuer = Array.isArray(auth?.issuer) ? auth.issuer[0] : auth?.issuer;
  return new JwtService().signAsync(
    { ...claims },
    {
      ...(algorithm.startsWith('HS') ? { secret: key as string | Buffer } : { privateKey: key as string | Buffer }),
      algorithm,
      expiresIn: options.expiresInSeconds ?? 3600,
      ...(audience === undefined ? {} : { audience }),
      ...(issuer === undefined ? {} : { issuer }),
    },
  );
}
