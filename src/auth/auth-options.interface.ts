import type { IncomingMessage } from 'node:http';
import type { KeyObject } from 'node:crypto';
import type { RealtimePrincipal } from './principal.interface.js';

/** JWT signature algorithms that may be pinned. `none` is never accepted. */
export type JwtAlgorithm =
  'HS256' | 'HS384' | 'HS512' | 'RS256' | 'RS384' | 'RS512' | 'ES256' | 'ES384' | 'ES512' | 'PS256' | 'PS384' | 'PS512';

/** A verification key: a secret or a PEM public key, as text, bytes or a `KeyObject`. */
export type JwtKey = string | Buffer | KeyObject;

/** The protected header of a token, as given to a {@link RealtimeAuthOptions.keyResolver}. */
export interface JwtTokenHeader {
  /** The algorithm the token claims; only pinned algorithms are ever accepted. */
  alg: string;
  /** The key id, untrusted input: look it up, never use it as a path. */
  kid?: string;
  /** Other header fields; `jku`, `x5u` and `jwk` are never used to find keys. */
  [field: string]: unknown;
}

/** What an application's {@link RealtimeAuthOptions.verifyConnection} hook is given. */
export interface HandshakeInfo {
  /** The verified token's claims. */
  principal: RealtimePrincipal;
  /** The upgrade request (headers, remote address). */
  request: IncomingMessage;
  /** The gateway's path. */
  path: string;
}

/** JWT authentication at the handshake, in `RealtimeModule` options under `auth`. */
export interface RealtimeAuthOptions {
  /** Shared secret for HMAC tokens (default algorithm HS256). */
  secret?: JwtKey;
  /** Public key (PEM or KeyObject) for RSA/EC tokens (default algorithm RS256). */
  publicKey?: JwtKey;
  /** Finds the key for a token from its header (e.g. by `kid` from your JWKS cache). */
  keyResolver?: (header: JwtTokenHeader) => JwtKey | Promise<JwtKey>;
  /** Accepted algorithms. Default `['HS256']` with `secret`, `['RS256']` with `publicKey`; required with `keyResolver`. */
  algorithms?: JwtAlgorithm[];
  /** Required audience (`aud`), when set. */
  audience?: string | string[];
  /** Required issuer (`iss`), when set. */
  issuer?: string | string[];
  /** Leeway for `exp` and `nbf`, in seconds. Default 0. */
  clockToleranceSec?: number;
  /** Longest accepted token in characters; longer ones are refused with 401. Default 8192. */
  maxTokenLength?: number;
  /**
   * The application's own check, after the token is verified (e.g. a revoked-token list).
   * `false` or a throw refuses the connection with 403.
   */
  verifyConnection?: (info: HandshakeInfo) => boolean | Promise<boolean>;
  /** Deadline of `verifyConnection`, in ms; past it the connection is refused with 503. Default 3000. */
  verifyConnectionTimeoutMs?: number;
}
