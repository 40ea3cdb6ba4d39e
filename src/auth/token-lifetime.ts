import type { Connection } from '../gateway/connection.js';
import { DeadlineQueue } from '../gateway/deadline-queue.js';
import type { LogThrottle } from '../limits/log-throttle.js';
import { CloseCode } from '../protocol/close-codes.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { AUTH_EVENT, errorFrame, type MessageId, replyFrame } from '../protocol/envelope.js';
import { type Authentication, AuthenticationError, checkedAuthentication, errorKind } from './authenticator.interface.js';
import { untilDeadline } from '../limits/deadline.js';
import type { HandshakeChecker } from './handshake.js';

/** Why an in-band refresh is refused: `message` for the client, `detail` for the log. */
interface RefreshRefusal {
  readonly message: string;
  readonly detail: string;
}

/** What {@link TokenLifetime} calls when a connection without an identity signs in. */
export interface SignInHooks {
  /** Counts the connection under `sub`; returns why not (it is then refused). */
  admit(connection: Connection, sub: string): string | undefined;
  /** The connection now has its principal. */
  signedIn(connection: Connection): Promise<void>;
  /** Whether the connection may have its credentials checked now (its address's handshake rate); true when left out. */
  mayCheck?(connection: Connection): boolean;
}

/**
 * A connection's credentials after the handshake: the 4001 close when they expire, and
 * the in-band `auth` refresh, which goes through the authenticator and the same checks
 * as the handshake.
 */
export class TokenLifetime {
  /** Every connection's expiry, under one timer. */
  private readonly deadlines = new DeadlineQueue<Connection>((connection) => {
    connection.sendFrame(errorFrame(undefined, ErrorCode.UNAUTHORIZED, 'token expired'));
    connection.close(CloseCode.TOKEN_EXPIRED, 'token expired', 'token-expired');
  });

  /**
   * @param signIn what happens when an in-band `auth` gives an identity to a connection that
   * had none (a public gateway's): `admit` counts it against its user's limits (a refusal
   * refuses the sign-in), `signedIn` lets the rooms hub count it, before the success reply.
   */
  constructor(
    private readonly handshake: HandshakeChecker,
    private readonly log: LogThrottle,
    private readonly signIn: SignInHooks = { admit: () => undefined, signedIn: () => Promise.resolve() },
    /** How long an in-band `auth` may take to be checked before it is refused (the handshake's deadline). */
    private readonly timeoutMs = 10_000,
  ) {}

  /** Attaches an identity, and closes the connection with 4001 when it expires (if it does). */
  attach(connection: Connection, authentication: Authentication): void {
    connection.principal = authentication.principal;
    if (authentication.expiresAt !== undefined) {
      this.deadlines.set(connection, authentication.expiresAt);
    } else {
      this.detach(connection);
    }
  }

  /** Forgets a connection's deadline (it closed, or its new identity does not expire). */
  detach(connection: Connection): void {
    this.deadlines.remove(connection);
  }

  /** Stops the expiry timer (the adapter is being disposed). */
  stop(): void {
    this.deadlines.stop();
  }

  /** In-band refresh: new credentials for the same `sub` move the connection's deadline. */
  refresh(connection: Connection, id: MessageId | undefined, payload: unknown): void {
    const authenticator = this.handshake.authenticator;
    if (!authenticator) {
      connection.sendFrame(errorFrame(id, ErrorCode.BAD_REQUEST, 'this server does not use tokens'));
      return;
    }
    if (!authenticator.refresh) {
      connection.sendFrame(errorFrame(id, ErrorCode.BAD_REQUEST, 'these credentials cannot be refreshed in-band'));
      return;
    }
    if (this.signIn.mayCheck?.(connection) === false) {
      connection.sendFrame(errorFrame(id, ErrorCode.RATE_LIMITED, 'too many credential checks from this address: slow down'));
      return;
    }
    // Refreshes can overlap; only the latest one may change the principal.
    const attempt = ++connection.refreshAttempts;
    const refuse = (message: string, detail: string): void => {
      this.log.log('warn', 'in-band auth refused', () => `in-band auth refused at ${connection.settings.path}: ${detail}`);
      connection.sendFrame(errorFrame(id, ErrorCode.UNAUTHORIZED, message));
    };
    // Through a promise from the start: an authenticator that throws at once is caught too.
    const checked = Promise.resolve(payload)
      .then((data) => authenticator.refresh!(data))
      .then(checkedAuthentication)
      .then(async (authentication): Promise<Authentication | RefreshRefusal> => {
        const { principal } = authentication;
        if (connection.principal && connection.principal.sub !== principal.sub) {
          return { message: 'token is for another subject', detail: 'token for another sub' };
        }
        return (await this.handshake.authorize(principal, connection.request, connection.settings)) ?? authentication;
      });
    // A check that hangs (a key lookup, a verifyConnection hook) is refused in time; what it
    // decides later is dropped, and the old credentials stand.
    untilDeadline(checked, this.timeoutMs)
      .then(async (outcome) => {
        if (outcome === 'timeout') {
          if (connection.isOpen) {
            refuse('the credentials could not be checked in time', `took over ${this.timeoutMs} ms`);
          }
          return;
        }
        if ('detail' in outcome) {
          return refuse(outcome.message, outcome.detail);
        }
        if (!connection.isOpen || attempt !== connection.refreshAttempts) {
          return refuse('superseded', 'connection closed or a newer refresh arrived');
        }
        const { principal } = outcome;
        const signingIn = connection.principal === undefined;
        if (signingIn) {
          const refusal = this.signIn.admit(connection, principal.sub);
          if (refusal) {
            return refuse(refusal, `sign-in refused: ${refusal}`);
          }
        }
        this.attach(connection, outcome);
        if (signingIn) {
          await this.signIn.signedIn(connection);
        }
        connection.sendFrame(replyFrame(AUTH_EVENT, id, { exp: principal.exp ?? null }));
      })
      .catch((error: unknown) => {
        if (error instanceof AuthenticationError) {
          return refuse(error.message, error.detail);
        }
        // Only the error's kind: its text may quote the credential (a parse error, a query's value).
        this.log.log('error', 'in-band auth failed', () => `in-band auth failed: the authenticator threw ${errorKind(error)}`);
        refuse('invalid token', 'verification failed unexpectedly');
      });
  }
}
