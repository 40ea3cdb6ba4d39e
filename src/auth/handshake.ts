import type { IncomingMessage } from 'node:http';
import { type GatewaySettings, positiveInteger } from '../gateway/gateway-settings.js';
import type { RealtimeAuthOptions } from './auth-options.interface.js';
import { JwtVerifier, TokenRejectedError } from './jwt-verifier.js';
import type { RealtimePrincipal } from './principal.js';
import { extractToken } from './token-extractor.js';

/** Default deadline of the application's `verifyConnection` hook, in ms. */
export const DEFAULT_VERIFY_CONNECTION_TIMEOUT_MS = 3000;

/** A handshake refused before the upgrade: the HTTP answer and what to log. */
export interface HandshakeRefusal {
  status: 401 | 403 | 503;
  code: 'UNAUTHORIZED' | 'FORBIDDEN' | 'UNAVAILABLE';
  /** Sent to the client. */
  message: string;
  /** Logged; never contains the token. */
  detail: string;
  headers?: Record<string, string>;
  /** What metrics count it as. */
  cause: 'unauthorized' | 'origin' | 'forbidden' | 'timeout';
}

/** The outcome of {@link HandshakeChecker.check}. */
export type HandshakeOutcome = { principal: RealtimePrincipal | undefined } | { refusal: HandshakeRefusal };

/**
 * Everything decided about a connection before `ws` upgrades it: Origin, token,
 * gateway roles and the application's own hook, in that order.
 */
export class HandshakeChecker {
  private readonly verifyTimeoutMs: number;

  constructor(
    readonly verifier: JwtVerifier | undefined,
    private readonly auth: RealtimeAuthOptions = {},
  ) {
    this.verifyTimeoutMs = auth.verifyConnectionTimeoutMs ?? DEFAULT_VERIFY_CONNECTION_TIMEOUT_MS;
    positiveInteger('auth.verifyConnectionTimeoutMs', this.verifyTimeoutMs);
  }

  async check(request: IncomingMessage, gateway: GatewaySettings): Promise<HandshakeOutcome> {
    const origin = request.headers.origin;
    if (gateway.allowedOrigins && origin !== undefined && !gateway.allowedOrigins.has(origin)) {
      return { refusal: refuse('origin', 'origin not allowed', `origin ${JSON.stringify(origin.slice(0, 200))} is not in the allowlist`) };
    }
    const extracted = extractToken(request);
    if (!extracted && gateway.public) {
      return { principal: undefined };
    }
    if (!extracted) {
      return {
        refusal: refuse('unauthorized', 'missing token', 'no token in header, subprotocol or query', {
          'WWW-Authenticate': 'Bearer',
        }),
      };
    }
    if (!this.verifier) {
      // Public gateway, server without auth: a token cannot be checked, so it is not trusted.
      return { principal: undefined };
    }
    let principal: RealtimePrincipal;
    try {
      principal = await this.verifier.verify(extracted.token);
    } catch (error) {
      const rejected = error instanceof TokenRejectedError ? error : new TokenRejectedError('invalid token', String(error));
      return {
        refusal: refuse('unauthorized', rejected.message, `${rejected.detail} (token from ${extracted.source})`, {
          'WWW-Authenticate': `Bearer error="invalid_token", error_description="${rejected.message}"`,
        }),
      };
    }
    const refusal = await this.authorize(principal, request, gateway);
    return refusal ? { refusal } : { principal };
  }

  /**
   * The checks after the token: the gateway's roles and the application's hook. Run at
   * the handshake and again on an in-band refresh, so a new token cannot skip them.
   */
  async authorize(
    principal: RealtimePrincipal,
    request: IncomingMessage | undefined,
    gateway: GatewaySettings,
  ): Promise<HandshakeRefusal | undefined> {
    const roles = Array.isArray(principal.roles) ? principal.roles : [];
    const missing = gateway.roles.filter((role) => !roles.includes(role));
    if (missing.length > 0) {
      return refuse('forbidden', 'missing role', `sub ${principal.sub} lacks role(s) ${missing.join(', ')}`);
    }
    const hook = this.auth.verifyConnection;
    if (hook) {
      if (!request) {
        throw new Error('the upgrade request was not kept for verifyConnection');
      }
      const verdict = await withDeadline(
        Promise.resolve().then(() => hook({ principal, request, path: gateway.path })),
        this.verifyTimeoutMs,
      );
      if (verdict === 'timeout') {
        return refuse('timeout', 'try again later', `verifyConnection took over ${this.verifyTimeoutMs} ms`);
      }
      if (verdict !== true) {
        const why = verdict instanceof Error ? `verifyConnection threw: ${verdict.message}` : 'verifyConnection refused';
        return refuse('forbidden', 'connection refused', `${why} (sub ${principal.sub})`);
      }
    }
    return undefined;
  }
}

/** The HTTP answer of each cause of refusal. */
const REFUSALS = {
  unauthorized: [401, 'UNAUTHORIZED'],
  origin: [403, 'FORBIDDEN'],
  forbidden: [403, 'FORBIDDEN'],
  timeout: [503, 'UNAVAILABLE'],
} as const satisfies Record<HandshakeRefusal['cause'], readonly [HandshakeRefusal['status'], HandshakeRefusal['code']]>;

function refuse(cause: HandshakeRefusal['cause'], message: string, detail: string, headers?: Record<string, string>): HandshakeRefusal {
  const [status, code] = REFUSALS[cause];
  return { status, code, message, detail, headers, cause };
}

/** Resolves with the hook's verdict, its error, or 'timeout'. */
function withDeadline(verdict: Promise<boolean>, ms: number): Promise<boolean | Error | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    // Unref'd: a hook that never settles must not keep a closing process alive.
    timer = setTimeout(() => resolve('timeout'), ms).unref();
  });
  const settled = verdict.then(
    (value) => value === true,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  return Promise.race([settled, deadline]).finally(() => clearTimeout(timer));
}
