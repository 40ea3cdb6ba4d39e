/** The verified claims of a connection's token. */
export interface RealtimePrincipal {
  /** Subject: the user's id. */
  sub: string;
  /** Expiry, in seconds since the epoch (always there for a JWT; other authenticators may have none). */
  exp?: number;
  /** Roles, when the token carries a `roles` claim. */
  roles?: string[];
  /** Every other claim of the token. */
  [claim: string]: unknown;
}
