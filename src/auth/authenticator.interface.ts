import type { IncomingMessage } from 'node:http';
import type { RealtimePrincipal } from './principal.interface.js';

/** Who a connection is, as an authenticator established it. */
export interface Authentication {
  /** What handlers see (`@Principal()`); its `sub` counts the user's connections and rates. */
  readonly principal: RealtimePrincipal;
  /** When the credentials expire, in ms since the epoch: the connection is closed with 4001 then. Omit: never. */
  readonly expiresAt?: number;
}

/**
 * Credentials refused: HTTP 401 at the handshake, or an `UNAUTHORIZED` reply to an in-band
 * `auth`. `message` goes to the client, `detail` to the server's log (never a credential),
 * `challenge` to the 401's `WWW-Authenticate` header.
 */
export class AuthenticationError extends Error {
  constructor(
    message: string,
    readonly detail: string = message,
    readonly challenge?: string,
  ) {
    super(message);
    this.name = 'AuthenticationError';
  }
}

/**
 * @internal `authentication` as an authenticator gave it, if its `expiresAt` is absent or a
 * finite number of ms; anything else is refused (401, or `UNAUTHORIZED` in-band) with a
 * log detail that says so. A `NaN` deadline would otherwise never expire, and hold back
 * every deadline behind it.
 */
export function checkedAuthentication(authentication: Authentication): Authentication {
  const expiresAt: unknown = authentication.expiresAt;
  if (expiresAt !== undefined && !(typeof expiresAt === 'number' && Number.isFinite(expiresAt))) {
    throw new AuthenticationError(
      'invalid credentials',
      'the authenticator gave an expiresAt that is not a finite number of ms since the epoch',
    );
  }
  return authentication;
}

/**
 * What a log line may say of an error an authenticator threw that is not an
 * {@link AuthenticationError}: its kind, never its text, which may quote the credential.
 */
export function errorKind(error: unknown): string {
  return error instanceof Error ? error.name : typeof error;
}

/**
 * Turns an upgrade request into an {@link Authentication}, before any WebSocket exists.
 * JWT (`auth` in the module's options) is the default; an API key, a session cookie or a
 * client certificate fit the same seam: `RealtimeModule.forRoot({ authenticator })`.
 * Origin checks, gateway roles and the application's `verifyConnection` hook run around
 * it, whichever it is.
 */
export interface RealtimeAuthenticator {
  /**
   * The request's identity. Resolves `undefined` when the request carries no credentials
   * at all: a public gateway then lets it in, others refuse it with `missing`.
   * Rejects with an {@link AuthenticationError} when the credentials are bad (on public
   * gateways too).
   */
  authenticate(request: IncomingMessage): Promise<Authentication | undefined>;
  /**
   * In-band refresh: the `data` of an `auth` event, for credentials that expire. A new
   * identity must have the same `sub`. Omit it when credentials cannot be refreshed.
   */
  refresh?(data: unknown): Promise<Authentication>;
  /** The 401 for a request without credentials. Default: `missing credentials`. */
  readonly missing?: AuthenticationError;
}
