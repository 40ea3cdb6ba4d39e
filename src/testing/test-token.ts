import type { INestApplicationContext } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { KeyObject } from 'node:crypto';
import type { JwtAlgorithm, JwtKey } from '../auth/auth-options.interface.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import { REALTIME_MODULE_OPTIONS } from '../realtime.module-definition.js';

/** Options of {@link signTestToken}. */
export interface TestTokenOptions {
  /** Lifetime in seconds (`exp`), unless the claims carry an `exp`. Default 3600. */
  expiresInSeconds?: number;
  /**
   * The signing key, when the app verifies with a public key or a key resolver (a private
   * key for RS256 or ES256, say), or another secret (to test a refusal). Default: the app's
   * `auth.secret`.
   */
  key?: JwtKey;
  /** The algorithm. Default: the app's first pinned one that fits the key (HMAC for a secret), else HS256 or RS256. */
  algorithm?: JwtAlgorithm;
  /** A `kid` header, for apps that find keys with a key resolver. */
  keyId?: string;
}

const HMAC = /^HS/;

/**
 * A token the app's gateways accept, for tests: `claims` (a `sub` at least) signed with the
 * app's own `auth.secret` (or `options.key`) under the first algorithm the app pins that
 * fits the key, with the app's audience and issuer when it requires them (unless the claims
 * set their own), and an `exp`.
 *
 * @example const token = await signTestToken(app, { sub: 'alice', roles: ['admin'] });
 */
export async function signTestToken(
  app: INestApplicationContext,
  claims: { readonly sub: string } & Readonly<Record<string, unknown>>,
  options: TestTokenOptions = {},
): Promise<string> {
  let auth: RealtimeModuleOptions['auth'];
  try {
    auth = app.get<RealtimeModuleOptions>(REALTIME_MODULE_OPTIONS, { strict: false }).auth;
  } catch {
    throw new TypeError('signTestToken: the app does not import RealtimeModule (no realtime options to sign for)');
  }
  const key = options.key ?? auth?.secret;
  if (key === undefined) {
    throw new TypeError('signTestToken: the app has no auth.secret; pass the signing key as options.key');
  }
  // PEM text or bytes (a key file read as a Buffer) is a private key; other bytes are a secret.
  const symmetric =
    key instanceof KeyObject ? key.type === 'secret' : !(typeof key === 'string' ? key : key.toString('latin1')).includes('-----BEGIN');
  const algorithm =
    options.algorithm ?? auth?.algorithms?.find((candidate) => HMAC.test(candidate) === symmetric) ?? (symmetric ? 'HS256' : 'RS256');
  const audience = Array.isArray(auth?.audience) ? auth.audience[0] : auth?.audience;
  const issuer = Array.isArray(auth?.issuer) ? auth.issuer[0] : auth?.issuer;
  return new JwtService().signAsync(
    { ...claims },
    {
      ...(symmetric ? { secret: key as string | Buffer } : { privateKey: key as string | Buffer }),
      algorithm,
      ...(options.keyId === undefined ? {} : { keyid: options.keyId }),
      ...('exp' in claims ? {} : { expiresIn: options.expiresInSeconds ?? 3600 }),
      ...(audience === undefined || 'aud' in claims ? {} : { audience }),
      ...(issuer === undefined || 'iss' in claims ? {} : { issuer }),
    },
  );
}
