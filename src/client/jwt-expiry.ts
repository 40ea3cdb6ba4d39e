/** The times a JWT's claims give, in ms since the epoch. */
export interface TokenTimes {
  /** `exp`: when it expires. */
  readonly expiresAt: number;
  /** `iat`: when it was issued, when the token says. */
  readonly issuedAt: number | undefined;
}

/** The `exp` (and `iat`) claims of a JWT in ms since the epoch, or undefined when it has no `exp` or is not a JWT. No verification. */
export function tokenTimes(token: string): TokenTimes | undefined {
  const payload = token.split('.')[1];
  if (!payload) {
    return undefined;
  }
  try {
    const json = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const { exp, iat } = JSON.parse(json) as { exp?: unknown; iat?: unknown };
    if (typeof exp !== 'number' || !Number.isFinite(exp)) {
      return undefined;
    }
    return { expiresAt: exp * 1000, issuedAt: typeof iat === 'number' && Number.isFinite(iat) ? iat * 1000 : undefined };
  } catch {
    return undefined;
  }
}
