import type { Connection } from '../gateway/connection.js';
import { DeadlineQueue } from '../gateway/deadline-queue.js';
import type { LogThrottle } from '../limits/log-throttle.js';
import { describeError } from '../gateway/realtime-exception.filter.js';
import { CloseCode } from '../protocol/close-codes.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { AUTH_EVENT, encodeError, encodeReply, type MessageId } from '../protocol/envelope.js';
import type { HandshakeChecker } from './handshake.js';
import { TokenRejectedError } from './jwt-verifier.js';
import type { RealtimePrincipal } from './principal.js';

/** What {@link TokenLifetime} calls when a connection without a token signs in. */
export interface SignInHooks {
  /** Counts the connection under `sub`; returns why not (it is then refused). */
  admit(connection: Connection, sub: string): string | undefined;
  /** The connection now has its principal. */
  signedIn(connection: Connection): Promise<void>;
}

/**
 * A connection's token after the handshake: the 4001 close at `exp` and the in-band
 * `auth` refresh, which passes the same checks as the handshake.
 */
export class TokenLifetime {
  /**
   * @param signIn what happens when an in-band `auth` gives an identity to a connection that
   * had none (a public gateway's): `admit` counts it against its user's limits (a refusal
   * refuses the sign-in), `signedIn` lets the rooms hub count it, before the success reply.
   */
  /** Every connection's token expiry, under one timer. */
  private readonly deadlines = new DeadlineQueue<Connection>((connection) => {
    connection.send(encodeError(undefined, ErrorCode.UNAUTHORIZED, 'token expired'));
    connection.close(CloseCode.TOKEN_EXPIRED, 'token expired', 'token-expired');
  });

  constructor(
    private readonly handshake: HandshakeChecker,
    private readonly log: LogThrottle,
    private readonly signIn: SignInHooks = { admit: () => undefined, signedIn: () => Promise.resolve() },
  ) {}

  /** Attaches a verified principal and closes the connection with 4001 when its token expires. */
  attach(connection: Connection, principal: RealtimePrincipal): void {
    connection.principal = principal;
    const toleranceMs = (this.handshake.verifier?.clockToleranceSec ?? 0) * 1000;
    connection.expiry = this.deadlines.set(connection, principal.exp * 1000 + toleranceMs, connection.expiry);
  }

  /** Forgets a closed connection's deadline. */
  detach(connection: Connection): void {
    if (connection.expiry) {
      this.deadlines.remove(connection.expiry);
    }
  }

  /** Stops the expiry timer (the adapter is being disposed). */
  stop(): void {
    this.deadlines.stop();
  }

  /** In-band refresh: a valid token for the same `sub` moves the connection's deadline. */
  refresh(connection: Connection, id: MessageId | undefined, payload: unknown): void {
    const verifier = this.handshake.verifier;
    const token = (payload as { token?: unknown } | null | undefined)?.token;
    if (!verifier) {
      connection.send(encodeError(id, ErrorCode.BAD_REQUEST, 'this server does not use tokens'));
      return;
    }
    if (typeof token !== 'string') {
      connection.send(encodeError(id, ErrorCode.UNAUTHORIZED, 'data.token must be a string'));
      return;
    }
    // Refreshes can overlap; only the latest one may change the principal.
    const attempt = ++connection.refreshAttempts;
    const refuse = (message: string, detail: string): void => {
      this.log.log('warn', 'in-band auth refused', () => `in-band auth refused at ${connection.settings.path}: ${detail}`);
      connection.send(encodeError(id, ErrorCode.UNAUTHORIZED, message));
    };
    verifier
      .verify(token)
      .then(async (principal) => {
        if (connection.principal && connection.principal.sub !== principal.sub) {
          return refuse('token is for another subject', 'token for another sub');
        }
        const refusal = await this.handshake.authorize(principal, connection.request, connection.settings);
        if (refusal) {
          return refuse(refusal.message, refusal.detail);
        }
        if (!connection.isOpen || attempt !== connection.refreshAttempts) {
          return refuse('superseded', 'connection closed or a newer refresh arrived');
        }
        const signingIn = connection.principal === undefined;
        if (signingIn) {
          const refusal = this.signIn.admit(connection, principal.sub);
          if (refusal) {
            return refuse(refusal, `sign-in refused: ${refusal}`);
          }
        }
        this.attach(connection, principal);
        if (signingIn) {
          await this.signIn.signedIn(connection);
        }
        connection.send(encodeReply(AUTH_EVENT, id, { exp: principal.exp }));
      })
      .catch((error: unknown) => {
        if (error instanceof TokenRejectedError) {
          return refuse(error.message, error.detail);
        }
        this.log.log('error', 'in-band auth failed', () => `in-band auth failed: ${describeError(error)}`);
        refuse('invalid token', 'verification failed unexpectedly');
      });
  }
}
