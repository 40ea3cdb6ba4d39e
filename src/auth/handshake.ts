import type { IncomingMessage } from 'node:http';
import type { GatewaySettings } from '../gateway/gateway-settings.js';
import { delayMs } from '../options/resolve-options.js';
import type { RealtimeModuleOptions } from '../realtime-options.interface.js';
import type { RealtimeAuthOptions } from './auth-options.interface.js';
import {
  type Authentication,
  AuthenticationError,
  checkedAuthentication,
  errorKind,
  type RealtimeAuthenticator,
} from './authenticator.interface.js';
import { untilDeadline } from '../limits/deadline.js';
import { JwtAuthenticator } from './jwt-authenticator.js';
import type { RealtimePrincipal } from './principal.interface.js';

/** Default deadline of the application's `verifyConnection` hook, in ms. */
export const DEFAULT_VERIFY_CONNECTION_TIMEOUT_MS = 3000;

/** A handshake refused before the upgrade: the HTTP answer and what to log. */
export interface HandshakeRefusal {
  status: 401 | 403 | 503;
  code: 'UNAUTHORIZED' | 'FORBIDDEN' | 'UNAVAILABLE';
  /** Sent to the client. */
  message: string;
  /** Logged; never contains a credential. */
  detail: string;
  headers?: Record<string, string>;
  /** What metrics count it as. */
  cause: 'unauthorized' | 'forbidden' | 'timeout';
}

/** The outcome of {@link HandshakeChecker.check}: who the connection is (nobody, on a public gateway), or why not. */
export type HandshakeOutcome = { authentication: Authentication | undefined } | { refusal: HandshakeRefusal };

/**
 * The authenticator the module's options ask for: the application's own, or JWT from
 * `auth`; none when every gateway is public.
 */
export function authenticatorOf(options: RealtimeModuleOptions): RealtimeAuthenticator | undefined {
  const auth = options.auth;
  const jwtKeys = auth && (auth.secret !== undefined || auth.publicKey !== undefined || auth.keyResolver !== undefined);
  if (options.authenticator) {
    if (typeof options.authenticator.authenticate !== 'function') {
      throw new TypeError('Realtime option authenticator must have an authenticate(request) method (a RealtimeAuthenticator)');
    }
    if (jwtKeys) {
      throw new TypeError('Realtime options: give either auth (JWT keys) or an authenticator, not both');
    }
    return options.authenticator;
  }
  return auth ? new JwtAuthenticator(auth) : undefined;
}

/**
 * Who a connection is, decided before `ws` upgrades it: the authenticator, then the
 * gateway's roles and the application's own hook. (The Origin is checked before, by the
 * upgrade gate.)
 */
export class HandshakeChecker {
  private readonly verifyTimeoutMs: number;

  constructor(
    readonly authenticator: RealtimeAuthenticator | undefined,
    private readonly auth: RealtimeAuthOptions = {},
  ) {
    this.verifyTimeoutMs = auth.verifyConnectionTimeoutMs ?? DEFAULT_VERIFY_CONNECTION_TIMEOUT_MS;
    delayMs('auth.verifyConnectionTimeoutMs', this.verifyTimeoutMs);
  }

  async check(request: IncomingMessage, gateway: GatewaySettings): Promise<HandshakeOutcome> {
    let authentication: Authentication | undefined;
    try {
      authentication = await this.authenticator?.authenticate(request);
      authentication &&= checkedAuthentication(authentication);
    } catch (error) {
      return { refusal: unauthorized(error) };
    }
    if (!authentication) {
      if (gateway.public) {
        return { authentication: undefined };
      }
      return { refusal: unauthorized(this.authenticator?.missing ?? new AuthenticationError('missing credentials')) };
    }
    // Without roles to require or a hook to ask, nothing to wait for.
    const refusal =
      gateway.roles.length > 0 || this.auth.verifyConnection ? await this.authorize(authentication.principal, request, gateway) : undefined;
    return refusal ? { refusal } : { authentication };
  }

  /**
   * The checks after the authenticator: the gateway's roles and the application's hook.
   * Run at the handshake and again on an in-band refresh, so new credentials cannot skip them.
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
  forbidden: [403, 'FORBIDDEN'],
  timeout: [503, 'UNAVAILABLE'],
} as const satisfies Record<HandshakeRefusal['cause'], readonly [HandshakeRefusal['status'], HandshakeRefusal['code']]>;

function refuse(cause: HandshakeRefusal['cause'], message: string, detail: string, headers?: Record<string, string>): HandshakeRefusal {
  const [status, code] = REFUSALS[cause];
  return { status, code, message, detail, headers, cause };
}

/** The 401 of credentials refused; an authenticator that throws something else refuses them too. */
function unauthorized(error: unknown): HandshakeRefusal {
  // Only the kind of an unexpected error is logged: its text may quote the credential.
  const rejected =
    error instanceof AuthenticationError
      ? error
      : new AuthenticationError('invalid credentials', `the authenticator threw ${errorKind(error)}`);
  return refuse('unauthorized', rejected.message, rejected.detail, { 'WWW-Authenticate': rejected.challenge ?? 'Bearer' });
}

/** Resolves with the hook's verdict, its error, or 'timeout'. */
function withDeadline(verdict: Promise<boolean>, ms: number): Promise<boolean | Error | 'timeout'> {
  const settled = verdict.then(
    (value) => value === true,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  return untilDeadline(settled, ms);
}
