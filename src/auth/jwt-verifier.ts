import { JwtService } from '@nestjs/jwt';
import { createPublicKey, createSecretKey, KeyObject, X509Certificate } from 'node:crypto';
import { describeValue } from '../options/describe-value.js';
import { positiveInteger } from '../options/resolve-options.js';
import type { JwtAlgorithm, JwtKey, JwtTokenHeader, RealtimeAuthOptions } from './auth-options.interface.js';
import { AuthenticationError } from './authenticator.interface.js';
import type { RealtimePrincipal } from './principal.interface.js';

/** Default longest token, in characters. */
export const DEFAULT_MAX_TOKEN_LENGTH = 8192;

/** Why a token was refused: `message` is for the client, `detail` for the server log. */
export class TokenRejectedError extends AuthenticationError {
  constructor(message: string, detail: string) {
    super(message, detail);
    this.name = 'TokenRejectedError';
  }
}

const HMAC = /^HS/;

/**
 * Verifies tokens with `@nestjs/jwt` under pinned algorithms, requiring `exp` and a
 * string `sub`. Keys are turned into `KeyObject`s once, which makes an HS256 verify
 * about forty times cheaper than with a string secret, and the verify options are given
 * to the `JwtService` once rather than merged into a new object on every call.
 */
export class JwtVerifier {
  private readonly jwt: JwtService;
  private readonly algorithms: JwtAlgorithm[];
  private readonly staticKey: KeyObject | undefined;
  private readonly maxTokenLength: number;
  readonly clockToleranceSec: number;

  constructor(private readonly options: RealtimeAuthOptions) {
    const sources = [options.secret, options.publicKey, options.keyResolver].filter((s) => s !== undefined);
    if (sources.length !== 1) {
      throw new TypeError('Realtime auth needs exactly one of auth.secret, auth.publicKey or auth.keyResolver');
    }
    if (options.keyResolver && !options.algorithms?.length) {
      throw new TypeError('Realtime auth.keyResolver needs auth.algorithms to be pinned');
    }
    this.algorithms = options.algorithms?.length ? [...options.algorithms] : options.secret !== undefined ? ['HS256'] : ['RS256'];
    for (const algorithm of this.algorithms) {
      if (String(algorithm).toLowerCase() === 'none') {
        throw new TypeError('Realtime auth.algorithms must not include "none"');
      }
      if (options.secret !== undefined && !HMAC.test(algorithm)) {
        throw new TypeError(`Realtime auth.secret only works with HS* algorithms, not ${algorithm}`);
      }
      if (options.publicKey !== undefined && HMAC.test(algorithm)) {
        throw new TypeError(`Realtime auth.publicKey only works with asymmetric algorithms, not ${algorithm}`);
      }
    }
    if (options.secret !== undefined) {
      this.staticKey = toSecretKey(options.secret);
    } else if (options.publicKey !== undefined) {
      this.staticKey = asPublicKey(options.publicKey);
      if (!this.staticKey) {
        throw new TypeError('Realtime auth.publicKey must be a public key: PEM, DER bytes (SPKI, PKCS#1, X.509) or a public KeyObject');
      }
    }
    claimValues('auth.audience', options.audience);
    claimValues('auth.issuer', options.issuer);
    this.maxTokenLength = options.maxTokenLength ?? DEFAULT_MAX_TOKEN_LENGTH;
    this.clockToleranceSec = options.clockToleranceSec ?? 0;
    positiveInteger('auth.maxTokenLength', this.maxTokenLength);
    if (!Number.isFinite(this.clockToleranceSec) || this.clockToleranceSec < 0) {
      throw new TypeError('Realtime auth.clockToleranceSec must be a number of seconds >= 0');
    }
    this.jwt = new JwtService({
      // jsonwebtoken accepts KeyObjects; @nestjs/jwt's types only name string | Buffer.
      secret: this.staticKey as unknown as string | undefined,
      verifyOptions: {
        algorithms: this.algorithms,
        audience: options.audience as string | undefined,
        issuer: options.issuer as string | undefined,
        clockTolerance: this.clockToleranceSec,
      },
    });
  }

  /** Verifies a token; resolves with its claims or rejects with a {@link TokenRejectedError}. */
  async verify(token: string): Promise<RealtimePrincipal> {
    if (token.length === 0) {
      throw new TokenRejectedError('missing token', 'empty token');
    }
    if (token.length > this.maxTokenLength) {
      throw new TokenRejectedError('token too long', `token of ${token.length} characters`);
    }
    // A resolved key goes with the call; the static one is the service's own.
    const resolved = this.staticKey ? undefined : { secret: (await this.resolveKey(token)) as unknown as string };
    let claims: Record<string, unknown>;
    try {
      claims = this.jwt.verify<Record<string, unknown>>(token, resolved);
    } catch (error) {
      throw describeJwtError(error);
    }
    if (typeof claims.exp !== 'number') {
      throw new TokenRejectedError('invalid token', 'token has no exp claim');
    }
    if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
      throw new TokenRejectedError('invalid token', 'token has no sub claim');
    }
    return claims as RealtimePrincipal;
  }

  private async resolveKey(token: string): Promise<KeyObject> {
    const decoded = this.jwt.decode<{ header?: JwtTokenHeader } | null>(token, { complete: true });
    if (!decoded?.header || typeof decoded.header.alg !== 'string') {
      throw new TokenRejectedError('invalid token', 'jwt malformed');
    }
    if (!this.algorithms.includes(decoded.header.alg as JwtAlgorithm)) {
      throw new TokenRejectedError('invalid token', `algorithm ${JSON.stringify(decoded.header.alg.slice(0, 32))} is not accepted`);
    }
    if (decoded.header.kid !== undefined && typeof decoded.header.kid !== 'string') {
      // The resolver is promised a string: an array or an object could pass its checks.
      throw new TokenRejectedError('invalid token', "the token header's kid is not a string");
    }
    let key: JwtKey;
    try {
      key = await this.options.keyResolver!(decoded.header as JwtTokenHeader);
    } catch (error) {
      throw new TokenRejectedError('invalid token', `no key for the token: ${(error as Error).message}`);
    }
    // The key's own kind, never the token's alg, decides how it is used: a public key
    // cannot be turned into an HMAC secret by a token that claims HS256.
    if (typeof key === 'string' || key instanceof KeyObject) {
      return asPublicKey(key) ?? toSecretKey(key);
    }
    let resolved = resolvedBytes.get(key);
    if (!resolved) {
      resolved = asPublicKey(key) ?? toSecretKey(key);
      resolvedBytes.set(key, resolved);
    }
    return resolved;
  }
}

/**
 * Throws unless a required claim's value is left out, a non-empty string or a non-empty
 * list of them. `jsonwebtoken` checks nothing for an empty string (`JWT_AUDIENCE=` in a
 * `.env` file), nor an issuer given as a RegExp or a Set: the check would be off, silently.
 */
function claimValues(name: string, value: unknown): void {
  if (value === undefined) {
    return;
  }
  const values: unknown[] = Array.isArray(value) ? value : [value];
  if (values.length === 0 || !values.every((v) => typeof v === 'string' && v.length > 0)) {
    throw new TypeError(`Realtime ${name} must be a non-empty string or a non-empty array of them, got ${describeValue(value)}`);
  }
}

function toSecretKey(key: JwtKey): KeyObject {
  if (key instanceof KeyObject) {
    return key;
  }
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  if (bytes.length === 0) {
    throw new TypeError('Realtime auth secret must not be empty');
  }
  return createSecretKey(bytes);
}

/**
 * The keys made of the bytes a `keyResolver` returned, by the very `Buffer`: a resolver that
 * hands out the same bytes again (a JWKS cache) costs no second look at them.
 */
const resolvedBytes = new WeakMap<Buffer, KeyObject>();

/**
 * A resolved key as a public key when it is one: a public `KeyObject`; PEM anywhere in the
 * text (a file may start with "Bag Attributes" or a certificate's text); or bytes that
 * parse as DER: a SubjectPublicKeyInfo, a PKCS#1 RSA public key, or an X.509 certificate
 * (a JWKS's `x5c` entry). Anything else is a secret (undefined).
 */
function asPublicKey(key: JwtKey): KeyObject | undefined {
  if (key instanceof KeyObject) {
    return key.type === 'secret' ? undefined : key;
  }
  if ((typeof key === 'string' ? key : key.toString('latin1')).includes('-----BEGIN')) {
    return createPublicKey(key);
  }
  if (typeof key === 'string') {
    return undefined;
  }
  const parses: (() => KeyObject)[] = [
    () => createPublicKey({ key, format: 'der', type: 'spki' }),
    () => createPublicKey({ key, format: 'der', type: 'pkcs1' }),
    () => new X509Certificate(key).publicKey,
  ];
  for (const parse of parses) {
    try {
      return parse();
    } catch {
      // Not this structure: the next, and bytes that are none of them are a secret.
    }
  }
  return undefined;
}

function describeJwtError(error: unknown): TokenRejectedError {
  const name = (error as Error | undefined)?.name;
  const detail = (error as Error | undefined)?.message ?? String(error);
  if (name === 'TokenExpiredError') {
    return new TokenRejectedError('token expired', detail);
  }
  if (name === 'NotBeforeError') {
    return new TokenRejectedError('token not yet valid', detail);
  }
  return new TokenRejectedError('invalid token', detail);
}
