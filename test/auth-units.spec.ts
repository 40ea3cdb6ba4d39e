import { JwtService } from '@nestjs/jwt';
import assert from 'node:assert/strict';
import { createPrivateKey, createSecretKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import type { JwtAlgorithm, RealtimeAuthOptions } from '../src/auth/auth-options.interface.js';
import { JwtVerifier, TokenRejectedError } from '../src/auth/jwt-verifier.js';
import { extractToken } from '../src/auth/token-extractor.js';
import { type SignInHooks, TokenLifetime } from '../src/auth/token-lifetime.js';
import type { LogThrottle } from '../src/limits/log-throttle.js';
import { AuthenticationError, type RealtimeAuthenticator } from '../src/auth/authenticator.interface.js';
import { authenticatorOf, HandshakeChecker } from '../src/auth/handshake.js';
import { JwtAuthenticator } from '../src/auth/jwt-authenticator.js';
import { principalOf } from '../src/auth/principal.js';
import type { RealtimePrincipal } from '../src/auth/principal.interface.js';
import { RequireRoles, RolesGuard } from '../src/auth/require-roles.decorator.js';
import { Connection } from '../src/gateway/connection.js';
import { registerConnection } from '../src/gateway/connection-registry.js';
import type { GatewaySettings } from '../src/gateway/gateway-settings.js';
import type { RealtimeTransport } from '../src/transport/transport.interface.js';
import type { ExecutionContext } from '@nestjs/common';
import { handMadeToken, now } from './support/tokens.js';
import { selfSignedCertificate } from './support/certificate.js';

const SECRET = 'unit-test-secret-with-enough-entropy-0123456789';
const jwt = new JwtService();
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PUBLIC_PEM = publicKey.export({ type: 'spki', format: 'pem' }).toString();

function hs256(claims: Record<string, unknown> = {}, secret: string = SECRET): string {
  return jwt.sign({ sub: 'alice', exp: now() + 3600, ...claims }, { secret, algorithm: 'HS256' });
}

function rs256(claims: Record<string, unknown> = {}): string {
  return jwt.sign({ sub: 'alice', exp: now() + 3600, ...claims }, { privateKey, algorithm: 'RS256' });
}

/** Resolves with the refusal a verify ends in; fails the test if it is not a TokenRejectedError. */
async function refusal(verifier: JwtVerifier, token: string): Promise<TokenRejectedError> {
  try {
    await verifier.verify(token);
  } catch (error) {
    assert.ok(error instanceof TokenRejectedError, `expected a TokenRejectedError, got ${String(error)}`);
    assert.equal(error.name, 'TokenRejectedError');
    return error;
  }
  assert.fail('the token was accepted');
}

describe('JwtVerifier: options', () => {
  it('refuses a negative or non-finite clock tolerance, and takes 0', () => {
    for (const clockToleranceSec of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new JwtVerifier({ secret: SECRET, clockToleranceSec }), TypeError, String(clockToleranceSec));
    }
    assert.equal(new JwtVerifier({ secret: SECRET, clockToleranceSec: 0 }).clockToleranceSec, 0);
    assert.equal(new JwtVerifier({ secret: SECRET, clockToleranceSec: 5 }).clockToleranceSec, 5);
  });

  it('refuses an audience or issuer that would check nothing (empty, a RegExp, a Set), and checks the ones it takes', async () => {
    for (const value of ['', [], ['my-api', ''], /^my-api$/, new Set(['my-api']), 42]) {
      for (const name of ['audience', 'issuer'] as const) {
        assert.throws(
          () => new JwtVerifier({ secret: SECRET, [name]: value } as RealtimeAuthOptions),
          new RegExp(`Realtime auth\\.${name} must be a non-empty string or a non-empty array of them`),
          `${name}: ${String(value)}`,
        );
      }
    }
    const verifier = new JwtVerifier({ secret: SECRET, audience: ['my-api', 'other-api'], issuer: 'https://id.example' });
    const signed = (claims: object): string => jwt.sign({ sub: 'alice', exp: now() + 60, ...claims }, { secret: SECRET });
    assert.equal((await verifier.verify(signed({ aud: 'other-api', iss: 'https://id.example' }))).sub, 'alice');
    assert.equal((await refusal(verifier, signed({ aud: 'third-api', iss: 'https://id.example' }))).message, 'invalid token');
    assert.equal((await refusal(verifier, signed({ aud: 'my-api', iss: 'https://evil.example' }))).message, 'invalid token');
  });

  it('takes only HS* algorithms with a secret, matched from the start of the name', () => {
    assert.throws(() => new JwtVerifier({ secret: SECRET, algorithms: ['RS256'] }), TypeError);
    assert.throws(() => new JwtVerifier({ secret: SECRET, algorithms: ['XHS256' as JwtAlgorithm] }), TypeError);
    assert.doesNotThrow(() => new JwtVerifier({ secret: SECRET, algorithms: ['HS512'] }));
  });

  it('refuses a publicKey that is no public key with a clear error, and takes one as DER', async () => {
    for (const key of ['not a key', createSecretKey(Buffer.from(SECRET))]) {
      assert.throws(() => new JwtVerifier({ publicKey: key as string }), /auth\.publicKey must be a public key/);
    }
    const der = publicKey.export({ type: 'spki', format: 'der' });
    assert.equal((await new JwtVerifier({ publicKey: der }).verify(rs256())).sub, 'alice');
  });

  it('refuses an empty secret, as text or bytes', () => {
    assert.throws(() => new JwtVerifier({ secret: '' }), TypeError);
    assert.throws(() => new JwtVerifier({ secret: Buffer.alloc(0) }), TypeError);
  });

  it('takes a secret given as a KeyObject', async () => {
    const verifier = new JwtVerifier({ secret: createSecretKey(Buffer.from(SECRET)) });
    assert.equal((await verifier.verify(hs256())).sub, 'alice');
  });
});

describe('JwtVerifier: token shape', () => {
  const verifier = new JwtVerifier({ secret: SECRET });

  it('refuses an empty token as missing', async () => {
    assert.equal((await refusal(verifier, '')).message, 'missing token');
  });

  it('takes a token of exactly maxTokenLength characters and refuses one more', async () => {
    const token = hs256();
    assert.equal((await new JwtVerifier({ secret: SECRET, maxTokenLength: token.length }).verify(token)).sub, 'alice');
    const short = new JwtVerifier({ secret: SECRET, maxTokenLength: token.length - 1 });
    assert.equal((await refusal(short, token)).message, 'token too long');
  });

  it('requires a numeric exp', async () => {
    const noExp = jwt.sign({ sub: 'alice' }, { secret: SECRET, algorithm: 'HS256' });
    assert.equal((await refusal(verifier, noExp)).message, 'invalid token');
  });

  it('requires a non-empty string sub', async () => {
    for (const sub of ['', 42, undefined]) {
      const error = await refusal(verifier, hs256({ sub }));
      assert.equal(error.message, 'invalid token', String(sub));
    }
    assert.equal((await verifier.verify(hs256({ sub: 'b' }))).sub, 'b');
  });

  it('reports an expired token as expired and a future nbf as not yet valid', async () => {
    assert.equal((await refusal(verifier, hs256({ exp: now() - 10 }))).message, 'token expired');
    assert.equal((await refusal(verifier, hs256({ nbf: now() + 60 }))).message, 'token not yet valid');
  });
});

describe('JwtVerifier: keyResolver', () => {
  const algorithms: JwtAlgorithm[] = ['HS256', 'RS256'];

  function resolving(key: unknown, calls: string[] = []): JwtVerifier {
    return new JwtVerifier({
      algorithms,
      keyResolver: (header) => {
        calls.push(header.alg);
        return key as string;
      },
    } as RealtimeAuthOptions);
  }

  it('refuses a token whose header does not decode, without asking for a key', async () => {
    const calls: string[] = [];
    const verifier = resolving(SECRET, calls);
    for (const token of ['not-a-jwt', 'a.b.c']) {
      assert.equal((await refusal(verifier, token)).message, 'invalid token', token);
    }
    assert.deepEqual(calls, []);
  });

  it('refuses a header whose alg is not a string, without asking for a key', async () => {
    const calls: string[] = [];
    const verifier = resolving(SECRET, calls);
    const token = handMadeToken({ alg: 256, typ: 'JWT' }, { sub: 'alice', exp: now() + 60 }, { hmac: SECRET });
    assert.equal((await refusal(verifier, token)).message, 'invalid token');
    assert.deepEqual(calls, []);
  });

  it('refuses an algorithm that is not pinned, quoting at most 32 characters of it', async () => {
    const calls: string[] = [];
    const alg = `X${'y'.repeat(40)}`;
    const token = handMadeToken({ alg, typ: 'JWT' }, { sub: 'alice', exp: now() + 60 }, { hmac: SECRET });
    const error = await refusal(resolving(SECRET, calls), token);
    assert.equal(error.message, 'invalid token');
    assert.ok(error.detail.includes(JSON.stringify(alg.slice(0, 32))), error.detail);
    assert.ok(!error.detail.includes(alg.slice(0, 33)), error.detail);
    assert.deepEqual(calls, []);
  });

  it('refuses a header whose kid is not a string, without asking for a key', async () => {
    const calls: string[] = [];
    const verifier = resolving(SECRET, calls);
    for (const kid of [['../../x'], { toString: 1 }, 7, null]) {
      const token = handMadeToken({ alg: 'HS256', typ: 'JWT', kid }, { sub: 'alice', exp: now() + 60 }, { hmac: SECRET });
      const error = await refusal(verifier, token);
      assert.deepEqual([error.message, error.detail], ['invalid token', "the token header's kid is not a string"], JSON.stringify(kid));
    }
    assert.deepEqual(calls, []);
    const token = handMadeToken({ alg: 'HS256', typ: 'JWT', kid: 'key-1' }, { sub: 'alice', exp: now() + 60 }, { hmac: SECRET });
    assert.equal((await verifier.verify(token)).sub, 'alice');
  });

  it('refuses a token when the resolver throws', async () => {
    const verifier = new JwtVerifier({
      algorithms,
      keyResolver: () => {
        throw new Error('unknown kid');
      },
    });
    assert.equal((await refusal(verifier, hs256())).message, 'invalid token');
  });

  it('uses a secret the resolver gives as text, bytes or a KeyObject', async () => {
    for (const key of [SECRET, Buffer.from(SECRET), createSecretKey(Buffer.from(SECRET))]) {
      assert.equal((await resolving(key).verify(hs256())).sub, 'alice');
    }
  });

  it('uses a public key the resolver gives as PEM text or a KeyObject', async () => {
    for (const key of [PUBLIC_PEM, Buffer.from(PUBLIC_PEM), publicKey]) {
      assert.equal((await resolving(key).verify(rs256())).sub, 'alice');
    }
  });

  it('takes a public key given as bytes (PEM after other text, DER key or certificate) for a public key: never for an HMAC secret', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'realtime-cert-'));
    try {
      const made = selfSignedCertificate(directory);
      const certificate = new X509Certificate(readFileSync(made.cert));
      const certificateKey = createPrivateKey(readFileSync(made.key));
      const certified = handMadeToken({ alg: 'RS256', typ: 'JWT' }, { sub: 'alice', exp: now() + 60 }, { rsa: certificateKey });
      const preamble = 'Bag Attributes\n    friendlyName: the signing key of the identity provider, exported by openssl\n';
      const keys: [Buffer, string][] = [
        [Buffer.from(preamble + PUBLIC_PEM), rs256()],
        [publicKey.export({ type: 'spki', format: 'der' }), rs256()],
        [publicKey.export({ type: 'pkcs1', format: 'der' }), rs256()],
        [certificate.raw, certified], // a JWKS's x5c entry, decoded
      ];
      for (const [key, token] of keys) {
        assert.equal((await resolving(key).verify(token)).sub, 'alice');
        const forged = handMadeToken({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp: now() + 60 }, { hmac: key });
        assert.equal((await refusal(resolving(key), forged)).message, 'invalid token');
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('never uses a resolved public key as an HMAC secret (HS256 signed with the PEM)', async () => {
    const forged = handMadeToken({ alg: 'HS256', typ: 'JWT' }, { sub: 'mallory', exp: now() + 60 }, { hmac: PUBLIC_PEM });
    for (const key of [PUBLIC_PEM, publicKey]) {
      assert.equal((await refusal(resolving(key), forged)).message, 'invalid token');
    }
  });
});

describe('extractToken', () => {
  const request = (headers: Record<string, string>, url = '/ws'): IncomingMessage => ({ headers, url }) as unknown as IncomingMessage;

  it('reads a Bearer header, case-insensitively, trimmed', () => {
    assert.deepEqual(extractToken(request({ authorization: 'Bearer abc' })), { token: 'abc', source: 'header' });
    assert.deepEqual(extractToken(request({ authorization: 'bearer \tabc  ' })), { token: 'abc', source: 'header' });
    assert.deepEqual(extractToken(request({ authorization: 'Bearer ' })), { token: '', source: 'header' });
    // Node trims a header's value: a bare "Bearer" announces a token too (refused as invalid, never read as none).
    assert.deepEqual(extractToken(request({ authorization: 'Bearer' })), { token: '', source: 'header' });
    assert.equal(extractToken(request({ authorization: 'Bearerx' })), undefined);
  });

  it('does not take another scheme that merely contains "Bearer "', () => {
    assert.equal(extractToken(request({ authorization: 'Basic Bearer abc' })), undefined);
    assert.equal(extractToken(request({ authorization: 'XBearer abc' })), undefined);
  });

  it('reads a bearer.<jwt> subprotocol among others', () => {
    assert.deepEqual(extractToken(request({ 'sec-websocket-protocol': 'realtime.v1, bearer.abc' })), {
      token: 'abc',
      source: 'subprotocol',
    });
    assert.equal(extractToken(request({ 'sec-websocket-protocol': 'realtime.v1, xbearer.abc' })), undefined);
  });

  it('prefers the header to the subprotocol and the subprotocol to the query', () => {
    assert.deepEqual(extractToken(request({ authorization: 'Bearer h', 'sec-websocket-protocol': 'bearer.p' }, '/ws?access_token=q')), {
      token: 'h',
      source: 'header',
    });
    assert.deepEqual(extractToken(request({ 'sec-websocket-protocol': 'bearer.p' }, '/ws?access_token=q')), {
      token: 'p',
      source: 'subprotocol',
    });
  });

  it('reads access_token from the query string only', () => {
    assert.deepEqual(extractToken(request({}, '/ws?x=1&access_token=q')), { token: 'q', source: 'query' });
    assert.equal(extractToken(request({}, '/ws&access_token=q')), undefined);
    assert.equal(extractToken(request({}, '/ws?x=1')), undefined);
    assert.equal(extractToken(request({}, '/ws')), undefined);
  });
});

describe('authenticatorOf', () => {
  const own: RealtimeAuthenticator = { authenticate: () => Promise.resolve(undefined) };

  it('refuses an authenticator next to any JWT key', () => {
    for (const auth of [
      { secret: SECRET },
      { publicKey: PUBLIC_PEM },
      { keyResolver: () => SECRET, algorithms: ['HS256'] },
    ] as RealtimeAuthOptions[]) {
      assert.throws(() => authenticatorOf({ auth, authenticator: own }), TypeError, Object.keys(auth).join());
    }
  });

  it('takes an authenticator next to auth options that are not keys', () => {
    assert.equal(authenticatorOf({ auth: { verifyConnection: () => true, clockToleranceSec: 5 }, authenticator: own }), own);
  });
});

describe('HandshakeChecker', () => {
  const settings = (roles: string[] = [], isPublic = false): GatewaySettings =>
    ({ path: '/ws', roles, public: isPublic }) as unknown as GatewaySettings;
  const request = { headers: {}, url: '/ws' } as unknown as IncomingMessage;

  it('without an authenticator, refuses a private gateway with a Bearer challenge and admits a public one', async () => {
    const checker = new HandshakeChecker(undefined);
    const outcome = await checker.check(request, settings());
    assert.ok('refusal' in outcome);
    assert.equal(outcome.refusal.status, 401);
    assert.equal(outcome.refusal.code, 'UNAUTHORIZED');
    assert.deepEqual(outcome.refusal.headers, { 'WWW-Authenticate': 'Bearer' });
    assert.deepEqual(await checker.check(request, settings([], true)), { authentication: undefined });
  });

  it('refuses a principal that lacks one of the roles', async () => {
    const checker = new HandshakeChecker(undefined);
    const refusal = await checker.authorize({ sub: 'alice', roles: ['a'] }, request, settings(['a', 'b']));
    assert.equal(refusal?.status, 403);
    assert.equal(await checker.authorize({ sub: 'alice', roles: ['b', 'a'] }, request, settings(['a', 'b'])), undefined);
  });

  it('does not run verifyConnection without the upgrade request', async () => {
    const calls: unknown[] = [];
    const checker = new HandshakeChecker(undefined, {
      verifyConnection: (info) => {
        calls.push(info);
        return true;
      },
    });
    await assert.rejects(checker.authorize({ sub: 'alice' }, undefined, settings()));
    assert.deepEqual(calls, []);
  });
});

describe('JwtAuthenticator', () => {
  it('expires a connection at exp plus the clock tolerance', async () => {
    const exp = now() + 600;
    const authenticator = new JwtAuthenticator({ secret: SECRET, clockToleranceSec: 30 });
    const request = { headers: { authorization: `Bearer ${hs256({ exp })}` }, url: '/ws' } as unknown as IncomingMessage;
    assert.equal((await authenticator.authenticate(request))?.expiresAt, (exp + 30) * 1000);
    assert.equal((await authenticator.refresh({ token: hs256({ exp }) })).expiresAt, (exp + 30) * 1000);
  });

  it('refuses an in-band auth without a string token', async () => {
    const authenticator = new JwtAuthenticator({ secret: SECRET });
    for (const data of [null, undefined, {}, { token: 42 }]) {
      await assert.rejects(authenticator.refresh(data), (error: unknown) => {
        assert.ok(error instanceof AuthenticationError, String(error));
        assert.equal(error.message, 'data.token must be a string');
        return true;
      });
    }
  });
});

describe('RolesGuard and principalOf', () => {
  class Gateway {
    @RequireRoles('a', 'b')
    guarded(): void {}

    open(): void {}
  }

  function context(client: object, handler: () => void): ExecutionContext {
    return {
      getHandler: () => handler,
      getClass: () => Gateway,
      switchToWs: () => ({ getClient: () => client }),
    } as unknown as ExecutionContext;
  }

  function clientWith(principal: RealtimePrincipal | undefined): object {
    const socket = {};
    const connection = new Connection(socket, {} as RealtimeTransport, undefined, {} as GatewaySettings, new Set());
    registerConnection(socket, connection);
    connection.principal = principal;
    return socket;
  }

  const guard = new RolesGuard();

  it('requires every listed role', () => {
    assert.equal(guard.canActivate(context(clientWith({ sub: 'x', roles: ['b', 'a', 'c'] }), Gateway.prototype.guarded)), true);
    assert.equal(guard.canActivate(context(clientWith({ sub: 'x', roles: ['a'] }), Gateway.prototype.guarded)), false);
    assert.equal(guard.canActivate(context(clientWith({ sub: 'x' }), Gateway.prototype.guarded)), false);
  });

  it('refuses a client without a connection or principal, and lets anyone through an undecorated handler', () => {
    assert.equal(principalOf({}), undefined);
    assert.equal(guard.canActivate(context({}, Gateway.prototype.guarded)), false);
    assert.equal(guard.canActivate(context(clientWith(undefined), Gateway.prototype.guarded)), false);
    assert.equal(guard.canActivate(context(clientWith({ sub: 'x' }), Gateway.prototype.open)), true);
  });
});

describe('TokenLifetime', () => {
  const silentLog = { log: () => undefined } as unknown as LogThrottle;

  interface FakeConnection {
    principal: RealtimePrincipal | undefined;
    deadlineAt: number;
    deadlineIndex: number;
    refreshAttempts: number;
    isOpen: boolean;
    settings: GatewaySettings;
    request: undefined;
    frames: Record<string, unknown>[];
    closes: number[];
    sendFrame(frame: Record<string, unknown>): boolean;
    close(code: number): boolean;
    next(): Promise<Record<string, unknown>>;
  }

  function fakeConnection(principal?: RealtimePrincipal): FakeConnection {
    const waiting: ((frame: Record<string, unknown>) => void)[] = [];
    const connection: FakeConnection = {
      principal,
      deadlineAt: 0,
      deadlineIndex: -1,
      refreshAttempts: 0,
      isOpen: true,
      settings: { path: '/ws', roles: [], public: true } as unknown as GatewaySettings,
      request: undefined,
      frames: [],
      closes: [],
      sendFrame(frame) {
        this.frames.push(frame);
        waiting.shift()?.(frame);
        return true;
      },
      close(code) {
        this.closes.push(code);
        return true;
      },
      next: () => new Promise((resolve) => waiting.push(resolve)),
    };
    return connection;
  }
  const asConnection = (fake: FakeConnection) => fake as unknown as Connection;
  const jwtLifetime = (signIn?: SignInHooks) =>
    new TokenLifetime(new HandshakeChecker(new JwtAuthenticator({ secret: SECRET })), silentLog, signIn);

  it('closes with 4001 at the expiry, not before, and not after the identity stops expiring', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const lifetime = jwtLifetime();
    const expiring = fakeConnection();
    const renewed = fakeConnection();
    lifetime.attach(asConnection(expiring), { principal: { sub: 'a' }, expiresAt: 1_005_000 });
    lifetime.attach(asConnection(renewed), { principal: { sub: 'b' }, expiresAt: 1_005_000 });
    lifetime.attach(asConnection(renewed), { principal: { sub: 'b' } });
    assert.equal(renewed.deadlineIndex, -1, 'out of the deadline queue');
    assert.ok(expiring.deadlineIndex >= 0, 'in the deadline queue');
    t.mock.timers.tick(4_999);
    assert.deepEqual(expiring.closes, []);
    t.mock.timers.tick(1);
    assert.deepEqual(expiring.closes, [4001]);
    assert.deepEqual(expiring.frames, [{ event: 'error', data: { code: 'UNAUTHORIZED', message: 'token expired' } }]);
    t.mock.timers.tick(60_000);
    assert.deepEqual(renewed.closes, []);
    lifetime.stop();
  });

  it('does not close a detached connection, nor any after stop', (t) => {
    t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
    const lifetime = jwtLifetime();
    const detached = fakeConnection();
    const stopped = fakeConnection();
    lifetime.attach(asConnection(detached), { principal: { sub: 'a' }, expiresAt: 1_005_000 });
    lifetime.detach(asConnection(detached));
    assert.equal(detached.deadlineIndex, -1, 'out of the deadline queue');
    t.mock.timers.tick(10_000);
    assert.deepEqual(detached.closes, []);
    lifetime.attach(asConnection(stopped), { principal: { sub: 'b' }, expiresAt: 1_020_000 });
    lifetime.stop();
    t.mock.timers.tick(60_000);
    assert.deepEqual(stopped.closes, []);
  });

  it('answers BAD_REQUEST to an in-band auth when the server uses no tokens', () => {
    const connection = fakeConnection();
    new TokenLifetime(new HandshakeChecker(undefined), silentLog).refresh(asConnection(connection), 7, { token: hs256() });
    assert.equal(connection.frames.length, 1);
    assert.equal(connection.frames[0]?.id, 7);
    assert.equal((connection.frames[0]?.data as { code: string }).code, 'BAD_REQUEST');
  });

  it('signs a connection in with the default hooks', async () => {
    const connection = fakeConnection();
    const exp = now() + 600;
    jwtLifetime().refresh(asConnection(connection), 1, { token: hs256({ exp }) });
    assert.deepEqual(await connection.next(), { event: 'auth', id: 1, data: { exp } });
    assert.equal(connection.principal?.sub, 'alice');
  });

  it('runs the sign-in hooks only for a connection that had no identity', async () => {
    const calls: string[] = [];
    const hooks: SignInHooks = {
      admit: (_connection, sub) => {
        calls.push(`admit ${sub}`);
        return undefined;
      },
      signedIn: () => {
        calls.push('signedIn');
        return Promise.resolve();
      },
    };
    const lifetime = jwtLifetime(hooks);
    const signedIn = fakeConnection({ sub: 'alice' });
    lifetime.refresh(asConnection(signedIn), 1, { token: hs256() });
    assert.equal((await signedIn.next()).event, 'auth');
    assert.deepEqual(calls, []);
    const anonymous = fakeConnection();
    lifetime.refresh(asConnection(anonymous), 2, { token: hs256() });
    assert.equal((await anonymous.next()).event, 'auth');
    assert.deepEqual(calls, ['admit alice', 'signedIn']);
    lifetime.stop();
  });

  it("answers an authenticator's AuthenticationError with its own message", async () => {
    const authenticator: RealtimeAuthenticator = {
      authenticate: () => Promise.resolve(undefined),
      refresh: () => Promise.reject(new AuthenticationError('session revoked', 'revoked in the store')),
    };
    const connection = fakeConnection();
    new TokenLifetime(new HandshakeChecker(authenticator), silentLog).refresh(asConnection(connection), 3, {});
    assert.deepEqual(await connection.next(), { event: 'error', id: 3, data: { code: 'UNAUTHORIZED', message: 'session revoked' } });
  });
});
