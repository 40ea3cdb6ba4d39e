import type { IncomingMessage } from 'node:http';
import type { RealtimeAuthOptions } from './auth-options.interface.js';
import { type Authentication, AuthenticationError, errorKind, type RealtimeAuthenticator } from './authenticator.interface.js';
import { JwtVerifier } from './jwt-verifier.js';
import type { RealtimePrincipal } from './principal.interface.js';
import { extractToken } from './token-extractor.js';

/**
 * The default authenticator: a JWT from the `Authorization: Bearer` header, a
 * `bearer.<jwt>` subprotocol entry or the `access_token` query parameter, verified under
 * pinned algorithms with `exp` required. The connection ends at `exp` (plus the clock
 * tolerance), and an in-band `auth` with `{ token }` refreshes it.
 */
export class JwtAuthenticator implements RealtimeAuthenticator {
  /** The 401 of a request without a token. */
  readonly missing = new AuthenticationError('missing token', 'no token in header, subprotocol or query', 'Bearer');
  private readonly verifier: JwtVerifier;

  constructor(options: RealtimeAuthOptions) {
    this.verifier = new JwtVerifier(options);
  }

  /** The token's identity, expiring at its `exp` (plus the clock tolerance); undefined without a token. */
  async authenticate(request: IncomingMessage): Promise<Authentication | undefined> {
    const extracted = extractToken(request);
    if (!extracted) {
      return undefined;
    }
    return this.verify(extracted.token, ` (token from ${extracted.source})`);
  }

  /** An in-band `auth`: `data.token` verified as at the handshake. */
  async refresh(data: unknown): Promise<Authentication> {
    const token = (data as { token?: unknown } | null | undefined)?.token;
    if (typeof token !== 'string') {
      throw new AuthenticationError('data.token must be a string');
    }
    return this.verify(token, '');
  }

  private async verify(token: string, where: string): Promise<Authentication> {
    let principal: RealtimePrincipal;
    try {
      principal = await this.verifier.verify(token);
    } catch (error) {
      const message = error instanceof AuthenticationError ? error.message : 'invalid token';
      const detail = error instanceof AuthenticationError ? error.detail : `verification threw ${errorKind(error)}`;
      throw new AuthenticationError(message, detail + where, `Bearer error="invalid_token", error_description="${message}"`);
    }
    return { principal, expiresAt: (principal.exp! + this.verifier.clockToleranceSec) * 1000 };
  }
}
