import { JwtService } from '@nestjs/jwt';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { type JwtTokenHeader, RealtimeModule, type RealtimeAuthOptions } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { handMadeToken, now } from './support/tokens.js';
import { until } from './support/until.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';
import { AdminGateway, AuthLog, CapturingLogger, OpenGateway, SecureGateway } from './fixtures/auth-gateways.js';

const SECRET = 'auth-test-secret-with-enough-entropy-0123456789';
const AUDIENCE = 'realtime-tests';
const ISSUER = 'https://issuer.test';
const ORIGIN = 'https://app.example.com';
const jwt = new JwtService({ secret: SECRET });

/** A valid HS256 token for the test app, with optional claim overrides. */
function token(claims: Record<string, unknown> = {}, expiresInSec = 3600): string {
  return jwt.sign({ sub: 'alice', aud: AUDIENCE, iss: ISSUER, exp: now() + expiresInSec, ...claims });
}

const bearer = (value: string) => ({ headers: { authorization: `Bearer ${value}` } });

async function start(auth: RealtimeAuthOptions, logger = new CapturingLogger()): Promise<RunningApp & { logger: CapturingLogger }> {
  const running = await startApp(
    {
      // Every refusal is logged here (the suite asserts on them): a roomier log throttle.
      imports: [RealtimeModule.forRoot({ auth, allowedOrigins: [ORIGIN], limits: { logThrottle: { lines: 1000, intervalMs: 10_000 } } })],
      providers: [AuthLog, SecureGateway, AdminGateway, OpenGateway],
    },
    (app) => app.useLogger(logger),
  );
  return Object.assign(running, { logger });
}

describe('JWT authentication at the handshake (HS256)', () => {
  let app: RunningApp & { logger: CapturingLogger };
  const url = (path = '/secure') => app.wsUrl(path);
  const verifyConnectionTimeoutMs = 200;
  /** How many of the hook's calls for the sub `slow` (each 5 s long) have finished. */
  let slowHooksFinished = 0;

  before(async () => {
    app = await start({
      secret: SECRET,
      audience: AUDIENCE,
      issuer: ISSUER,
      verifyConnectionTimeoutMs,
      verifyConnection: async ({ principal }) => {
        if (principal.sub === 'slow') {
          await new Promise((resolve) => setTimeout(resolve, 5000).unref());
          slowHooksFinished++;
        }
        return principal.sub !== 'revoked' && principal.revoked !== true;
      },
    });
  });
  after(() => app.close());

  /** The lines the app logs from now on: a test asserts on the lines it made itself. */
  function logFromHere(): () => string[] {
    const from = app.logger.lines.length;
    return () => app.logger.lines.slice(from);
  }

  async function expectRefused(
    status: number,
    message: string | RegExp,
    options: Parameters<typeof refusedUpgrade>[1] = {},
    path = '/secure',
  ): Promise<void> {
    const before = app.app.get(AuthLog).connectedSubs.length;
    const refused = await refusedUpgrade(url(path), options);
    assert.equal(refused.status, status, refused.body);
    const body = JSON.parse(refused.body) as { error: string; message: string };
    assert.equal(body.error, status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'FORBIDDEN' : 'UNAVAILABLE');
    typeof message === 'string' ? assert.equal(body.message, message) : assert.match(body.message, message);
    if (status === 401) {
      assert.match(String(refused.headers['www-authenticate']), /^Bearer/);
    }
    assert.equal(app.app.get(AuthLog).connectedSubs.length, before, 'a WebSocket was opened');
  }

  it('accepts a valid token from the Authorization header and gives handlers its principal', async () => {
    const client = await TestClient.connect(url(), bearer(token({ roles: ['reader'] })));
    assert.deepEqual((await client.request({ event: 'whoami', id: 1 })).data, { sub: 'alice', roles: ['reader'] });
    assert.equal(app.app.get(AuthLog).connectedSubs.at(-1), 'alice');
    client.close();
  });

  it('accepts a token from the bearer.<jwt> subprotocol entry and selects only realtime.v1', async () => {
    const client = await TestClient.connect(url(), {}, ['realtime.v1', `bearer.${token()}`]);
    assert.equal(client.socket.protocol, 'realtime.v1');
    assert.equal(((await client.request({ event: 'whoami', id: 1 })).data as { sub: string }).sub, 'alice');
    client.close();
  });

  it('accepts a token from the access_token query parameter', async () => {
    const client = await TestClient.connect(`${url()}?access_token=${token()}`);
    assert.equal(((await client.request({ event: 'whoami', id: 1 })).data as { sub: string }).sub, 'alice');
    client.close();
  });

  it('never logs a token, whatever the shape of the URL that carries it', async () => {
    // Every form the extractor accepts: each authenticates with a valid token, and is
    // refused with a valid token from a foreign Origin (403) and with a forged one (401).
    const forms = [
      (value: string) => `?access_token=${value}`,
      (value: string) => `??access_token=${value}`,
      (value: string) => `?x=1&access_token=${value}`,
      (value: string) => `?x=a;b&access_token=${value}&y=2`,
      (value: string) => `?access%5Ftoken=${value}`,
      (value: string) => `?access_token=${value}&access_token=other`,
      (value: string) => `?&&access_token=${value}&`,
    ];
    const lines = logFromHere();
    const logged: string[] = [];
    for (const [index, form] of forms.entries()) {
      const valid = token({ form: index });
      const client = await TestClient.connect(`${url()}${form(valid)}`);
      assert.equal(((await client.request({ event: 'whoami', id: 1 })).data as { sub: string }).sub, 'alice', form('T'));
      client.close();
      await expectRefused(403, 'origin not allowed', { headers: { origin: 'https://evil.example.com' } }, `/secure${form(valid)}`);
      const forged = `${valid.slice(0, -4)}AAAA`;
      await expectRefused(401, 'invalid token', {}, `/secure${form(forged)}`);
      logged.push(valid, forged);
    }
    // This test's refusals, each logged once, with its reason and the bare path: first
    // that the lines are there, then that no token and no query string is in them.
    const refusals = (status: string) => lines().filter((line) => line.includes(`upgrade refused (${status})`));
    await until(() => refusals('401 UNAUTHORIZED').length >= forms.length, 'the 401 lines');
    assert.deepEqual(
      refusals('403 FORBIDDEN'),
      forms.map(
        () => 'warn upgrade refused (403 FORBIDDEN) at /secure from 127.0.0.1: origin "https://evil.example.com" is not in the allowlist',
      ),
    );
    assert.deepEqual(
      refusals('401 UNAUTHORIZED'),
      forms.map(() => 'warn upgrade refused (401 UNAUTHORIZED) at /secure from 127.0.0.1: invalid signature (token from query)'),
    );
    for (const value of logged) {
      // Neither the token nor its signature alone, in this test's lines or anywhere in the log.
      assert.ok(!app.logger.text.includes(value.split('.')[2]!), `a token reached the log: ${value}`);
    }
    assert.ok(!/access_token|access%5Ftoken|\?/.test(lines().join('\n')), `a query string reached the log:\n${lines().join('\n')}`);
  });

  it("looks past an Authorization header of another scheme (a browser's Basic credentials)", async () => {
    const client = await TestClient.connect(url(), { headers: { authorization: 'Basic dXNlcjpwYXNz' } }, [
      'realtime.v1',
      `bearer.${token()}`,
    ]);
    assert.equal(((await client.request({ event: 'whoami', id: 1 })).data as { sub: string }).sub, 'alice');
    client.close();
  });

  it('prefers the header over the query parameter', async () => {
    const client = await TestClient.connect(`${url()}?access_token=garbage`, bearer(token()));
    client.close();
    await expectRefused(401, 'invalid token', bearer('garbage'), `/secure?access_token=${token()}`);
  });

  describe('refuses with 401 before any WebSocket exists, and logs why without the token', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const base = () => ({ sub: 'alice', aud: AUDIENCE, iss: ISSUER, exp: now() + 600 });
    const header = (detail: string) => `${detail} (token from header)`;
    // [case, the upgrade's options, the refusal's message, what the log line says after "from 127.0.0.1: "]
    const cases: [string, () => Parameters<typeof refusedUpgrade>[1], string | RegExp, string | RegExp][] = [
      ['no token', () => ({}), 'missing token', 'no token in header, subprotocol or query'],
      // Announced, though empty (Node trims the header to "Bearer"): refused as a token, not taken as none.
      ['an empty Bearer', () => ({ headers: { authorization: 'Bearer ' } }), 'missing token', 'empty token (token from header)'],
      [
        'a non-Bearer Authorization',
        () => ({ headers: { authorization: `Basic ${token()}` } }),
        'missing token',
        'no token in header, subprotocol or query',
      ],
      ['garbage', () => bearer('garbage'), 'invalid token', header('jwt malformed')],
      ['a 2-segment token', () => bearer('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0'), 'invalid token', header('jwt malformed')],
      ['a 4-segment token', () => bearer(`${token()}.extra`), 'invalid token', header('jwt malformed')],
      [
        'a token over maxTokenLength (10 KB)',
        () => bearer(token({ pad: 'x'.repeat(10_000) })),
        'token too long',
        /^token of \d+ characters \(token from header\)$/,
      ],
      [
        'a wrong secret',
        () => bearer(new JwtService({ secret: 'another-secret-of-decent-length-xyz' }).sign(base())),
        'invalid token',
        header('invalid signature'),
      ],
      ['alg none', () => bearer(handMadeToken({ alg: 'none', typ: 'JWT' }, base())), 'invalid token', header('jwt signature is required')],
      ['alg None', () => bearer(handMadeToken({ alg: 'None' }, base())), 'invalid token', header('jwt signature is required')],
      [
        'alg NONE signed with the secret',
        () => bearer(handMadeToken({ alg: 'NONE' }, base(), { hmac: SECRET })),
        'invalid token',
        header('invalid algorithm'),
      ],
      [
        'an RS256 token',
        () => bearer(handMadeToken({ alg: 'RS256' }, base(), { rsa: rsa.privateKey })),
        'invalid token',
        header('invalid algorithm'),
      ],
      // Signed with the right secret under an HMAC algorithm that is not pinned: only HS256 is.
      [
        'an HS384 token signed with the secret',
        () => bearer(jwt.sign(base(), { algorithm: 'HS384' })),
        'invalid token',
        header('invalid algorithm'),
      ],
      [
        'an HS512 token signed with the secret',
        () => bearer(jwt.sign(base(), { algorithm: 'HS512' })),
        'invalid token',
        header('invalid algorithm'),
      ],
      ['an expired token', () => bearer(token({ exp: now() - 10 })), 'token expired', header('jwt expired')],
      ['nbf in the future', () => bearer(token({ nbf: now() + 600 })), 'token not yet valid', header('jwt not active')],
      ['no exp', () => bearer(jwt.sign({ sub: 'alice', aud: AUDIENCE, iss: ISSUER })), 'invalid token', header('token has no exp claim')],
      [
        'a string exp',
        () => bearer(handMadeToken({ alg: 'HS256' }, { ...base(), exp: String(now() + 600) }, { hmac: SECRET })),
        'invalid token',
        header('invalid exp value'),
      ],
      [
        'no sub',
        () => bearer(jwt.sign({ aud: AUDIENCE, iss: ISSUER, exp: now() + 600 })),
        'invalid token',
        header('token has no sub claim'),
      ],
      [
        'a wrong aud',
        () => bearer(token({ aud: 'other-service' })),
        'invalid token',
        header(`jwt audience invalid. expected: ${AUDIENCE}`),
      ],
      [
        'a wrong iss',
        () => bearer(token({ iss: 'https://evil.test' })),
        'invalid token',
        header(`jwt issuer invalid. expected: ${ISSUER}`),
      ],
      [
        'a jwk header with the attacker key',
        () =>
          bearer(
            handMadeToken({ alg: 'HS256', jwk: { kty: 'oct', k: Buffer.from('attacker').toString('base64url') } }, base(), {
              hmac: 'attacker',
            }),
          ),
        'invalid token',
        header('invalid signature'),
      ],
      [
        'jku and x5u headers',
        () =>
          bearer(
            handMadeToken({ alg: 'HS256', jku: 'https://evil.test/jwks', x5u: 'https://evil.test/cert' }, base(), { hmac: 'attacker' }),
          ),
        'invalid token',
        header('invalid signature'),
      ],
    ];
    for (const [name, options, message, detail] of cases) {
      it(name, async () => {
        const lines = logFromHere();
        const sent = options();
        await expectRefused(401, message, sent);
        // The refusal's own line, with its reason: there before the answer went out.
        const [line, ...more] = lines();
        assert.deepEqual(more, [], `more than one line logged:\n${lines().join('\n')}`);
        const prefix = 'warn upgrade refused (401 UNAUTHORIZED) at /secure from 127.0.0.1: ';
        assert.ok(line?.startsWith(prefix), `not a refusal line: ${line}`);
        typeof detail === 'string' ? assert.equal(line.slice(prefix.length), detail) : assert.match(line.slice(prefix.length), detail);
        // ...and neither the token, any of its parts, nor anything shaped like one.
        const credential = String(sent?.headers?.authorization ?? '').replace(/^\S+ /, '');
        for (const part of [credential, ...credential.split('.')].filter((part) => part.length >= 6)) {
          assert.ok(!lines().join('\n').includes(part), `a token or a part of one was logged: ${part}`);
        }
        assert.ok(!line.includes('eyJ'), `something that looks like a token was logged: ${line}`);
      });
    }

    it('a 100 KB token is refused by the HTTP server itself (431), no WebSocket', async () => {
      const refused = await refusedUpgrade(`${url()}?access_token=${'x'.repeat(100_000)}`);
      assert.equal(refused.status, 431);
    });
  });

  it('refuses a token lacking the gateway role with 403, and accepts one that has it', async () => {
    await expectRefused(403, 'missing role', bearer(token({ roles: ['reader'] })), '/admins');
    await expectRefused(403, 'missing role', bearer(token({ roles: 'non-admin' })), '/admins');
    const client = await TestClient.connect(url('/admins'), bearer(token({ sub: 'root', roles: ['admin'] })));
    assert.equal((await client.request({ event: 'whoami', id: 1 })).data, 'root');
    client.close();
  });

  it('answers a handler whose role is missing with FORBIDDEN, and the connection stays', async () => {
    const client = await TestClient.connect(url(), bearer(token()));
    assert.deepEqual(await client.request({ event: 'admin-only', id: 1, data: 'x' }), {
      event: 'error',
      id: 1,
      data: { code: 'FORBIDDEN', message: 'Forbidden resource' },
    });
    assert.equal(((await client.request({ event: 'whoami', id: 2 })).data as { sub: string }).sub, 'alice');
    client.close();
    const admin = await TestClient.connect(url(), bearer(token({ roles: ['admin'] })));
    assert.equal((await admin.request({ event: 'admin-only', id: 1, data: 'x' })).data, 'x');
    admin.close();
  });

  it('checks Origin by exact match (403 for a lookalike), and lets clients without Origin in', async () => {
    await expectRefused(403, 'origin not allowed', { ...bearer(token()), origin: 'https://app.example.com.evil.io' });
    await expectRefused(403, 'origin not allowed', { ...bearer(token()), origin: 'http://app.example.com' });
    const browser = await TestClient.connect(url(), { ...bearer(token()), origin: ORIGIN });
    browser.close();
    const server = await TestClient.connect(url(), bearer(token()));
    server.close();
  });

  it('lets the application refuse (403) and bounds its hook with a deadline (503)', async () => {
    await expectRefused(403, 'connection refused', bearer(token({ sub: 'revoked' })));
    const lines = logFromHere();
    const started = Date.now();
    await expectRefused(503, 'try again later', bearer(token({ sub: 'slow' })));
    const elapsed = Date.now() - started;
    // Refused while the hook (5 s) still ran, and not before its deadline (Date.now() and
    // the timer round to the millisecond apart).
    assert.equal(slowHooksFinished, 0, 'the refusal waited for the hook to finish');
    assert.ok(elapsed >= verifyConnectionTimeoutMs - 1, `refused after ${elapsed} ms, before the hook's ${verifyConnectionTimeoutMs} ms`);
    assert.match(lines().join('\n'), /verifyConnection took over 200 ms/);
  });

  it('lets a public gateway in without a token, and still refuses a bad one there', async () => {
    const anonymous = await TestClient.connect(url('/open'));
    assert.equal((await anonymous.request({ event: 'whoami', id: 1 })).data, null);
    anonymous.close();
    const known = await TestClient.connect(url('/open'), bearer(token()));
    assert.equal((await known.request({ event: 'whoami', id: 1 })).data, 'alice');
    known.close();
    await expectRefused(401, 'invalid token', bearer('garbage'), '/open');
  });

  it('closes with 4001 after an UNAUTHORIZED frame when the token expires; a refresh for another sub does not help', async () => {
    const exp = now() + 2;
    const client = await TestClient.connect(url(), bearer(token({ sub: 'expiring', exp })));
    assert.deepEqual(await client.request({ event: 'auth', id: 'r', data: { token: token({ sub: 'mallory' }) } }), {
      event: 'error',
      id: 'r',
      data: { code: 'UNAUTHORIZED', message: 'token is for another subject' },
    });
    assert.deepEqual(await client.request({ event: 'auth', id: 's', data: { token: 'garbage' } }), {
      event: 'error',
      id: 's',
      data: { code: 'UNAUTHORIZED', message: 'invalid token' },
    });
    assert.deepEqual(await client.nextJson(), {
      event: 'error',
      data: { code: 'UNAUTHORIZED', message: 'token expired' },
    });
    assert.deepEqual(await client.waitClosed(), { code: 4001, reason: 'token expired' });
    // Not before the token's exp (no clock tolerance is configured).
    assert.ok(Date.now() >= exp * 1000, `closed ${exp * 1000 - Date.now()} ms before the token's exp`);
    const disconnects = app.app.get(AuthLog).disconnects;
    await until(() => disconnects.some((reason) => reason.sub === 'expiring'), 'the disconnect hook');
    assert.deepEqual(
      disconnects.filter((reason) => reason.sub === 'expiring'),
      [{ code: 4001, reason: 'token expired', cause: 'token-expired', sub: 'expiring' }],
    );
  });

  it('runs the role and application checks again on an in-band refresh', async () => {
    const client = await TestClient.connect(url('/admins'), bearer(token({ roles: ['admin'] })));
    assert.deepEqual(await client.request({ event: 'auth', id: 1, data: { token: token({ roles: ['reader'] }) } }), {
      event: 'error',
      id: 1,
      data: { code: 'UNAUTHORIZED', message: 'missing role' },
    });
    const revoked = token({ roles: ['admin'], revoked: true });
    assert.deepEqual(await client.request({ event: 'auth', id: 2, data: { token: revoked } }), {
      event: 'error',
      id: 2,
      data: { code: 'UNAUTHORIZED', message: 'connection refused' },
    });
    assert.equal((await client.request({ event: 'auth', id: 3, data: { token: token({ roles: ['admin'] }) } })).event, 'auth');
    client.close();
  });

  it('moves the deadline on an in-band refresh for the same sub', async () => {
    // One short-lived token (0.5 to 1.5 s left) for two connections; only one refreshes.
    const exp = Math.floor((Date.now() + 1500) / 1000);
    const short = token({ exp });
    const client = await TestClient.connect(url(), bearer(short));
    const control = await TestClient.connect(url(), bearer(short));
    const fresh = token({}, 3600);
    const reply = await client.request({ event: 'auth', id: 1, data: { token: fresh } });
    assert.equal(reply.event, 'auth');
    assert.equal(reply.id, 1);
    assert.ok((reply.data as { exp: number }).exp >= now() + 3500);
    // The control connection's 4001 says the first token has expired: the connection that
    // refreshed would have been closed by the same timer, in the same turn, before it.
    assert.deepEqual(await control.waitClosed(), { code: 4001, reason: 'token expired' });
    assert.ok(Date.now() >= exp * 1000, `closed ${exp * 1000 - Date.now()} ms before the token's exp`);
    // Past the first token's expiry, the connection that refreshed still works: an expiry
    // frame or a close would come before this reply.
    const pong = await client.request({ event: 'ping', id: 2 });
    assert.deepEqual([pong.event, pong.id], ['pong', 2], JSON.stringify(pong));
    client.close();
  });
});

describe('overlapping in-band refreshes', () => {
  let app: RunningApp & { logger: CapturingLogger };
  // A refresh whose token has `hold: true` waits in the application's hook until released.
  let held!: () => void;
  let release!: () => void;
  const entered = new Promise<void>((resolve) => (held = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));

  before(async () => {
    app = await start({
      secret: SECRET,
      audience: AUDIENCE,
      issuer: ISSUER,
      verifyConnection: async ({ principal }) => {
        if (principal.hold === true) {
          held();
          await released;
        }
        return true;
      },
    });
  });
  after(() => {
    release();
    return app.close();
  });

  it('keeps the newer of two refreshes when the older one finishes last, and refuses the older as superseded', async () => {
    const client = await TestClient.connect(app.wsUrl('/secure'), bearer(token({ roles: ['initial'] })));
    client.send({ event: 'auth', id: 'older', data: { token: token({ roles: ['older'], hold: true }, 7200) } });
    await entered;
    const newer = { roles: ['newer'], exp: now() + 3600 };
    assert.deepEqual(await client.request({ event: 'auth', id: 'newer', data: { token: token(newer) } }), {
      event: 'auth',
      id: 'newer',
      data: { exp: newer.exp },
    });
    release();
    assert.deepEqual(await client.nextJson(), { event: 'error', id: 'older', data: { code: 'UNAUTHORIZED', message: 'superseded' } });
    assert.deepEqual((await client.request({ event: 'whoami', id: 'who' })).data, { sub: 'alice', roles: ['newer'] });
    assert.match(app.logger.text, /in-band auth refused at \/secure: connection closed or a newer refresh arrived/);
    client.close();
  });
});

describe('JWT authentication with public keys', () => {
  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicPem = signing.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const claims = () => ({ sub: 'bob', exp: now() + 600 });
  let app: RunningApp & { logger: CapturingLogger };
  let resolverApp: RunningApp & { logger: CapturingLogger };
  /** An app whose key resolver knows `key-1` and records every kid it is asked for in `kids`. */
  const startResolverApp = (kids: unknown[]) =>
    start({
      algorithms: ['RS256'],
      keyResolver: ({ kid }) => {
        kids.push(kid);
        const keys: Record<string, string> = { 'key-1': publicPem };
        const key = typeof kid === 'string' ? keys[kid] : undefined;
        if (!key) {
          throw new Error('unknown kid');
        }
        return key;
      },
    });

  before(async () => {
    app = await start({ publicKey: publicPem });
    resolverApp = await startResolverApp([]);
  });
  after(async () => {
    await app.close();
    await resolverApp.close();
  });

  it('accepts an RS256 token signed with the private key', async () => {
    const client = await TestClient.connect(
      app.wsUrl('/secure'),
      bearer(handMadeToken({ alg: 'RS256' }, claims(), { rsa: signing.privateKey })),
    );
    assert.equal(((await client.request({ event: 'whoami', id: 1 })).data as { sub: string }).sub, 'bob');
    client.close();
  });

  it('refuses an RS256 token re-signed as HS256 with the public key', async () => {
    const forged = handMadeToken({ alg: 'HS256' }, claims(), { hmac: publicPem });
    assert.equal((await refusedUpgrade(app.wsUrl('/secure'), bearer(forged))).status, 401);
    const viaResolver = handMadeToken({ alg: 'HS256', kid: 'key-1' }, claims(), { hmac: publicPem });
    assert.equal((await refusedUpgrade(resolverApp.wsUrl('/secure'), bearer(viaResolver))).status, 401);
  });

  it('refuses a token signed by another key', async () => {
    const forged = handMadeToken({ alg: 'RS256' }, claims(), { rsa: other.privateKey });
    assert.equal((await refusedUpgrade(app.wsUrl('/secure'), bearer(forged))).status, 401);
  });

  it('finds keys by kid through the resolver, and treats a hostile kid as an unknown key', async () => {
    // An app of its own: the kids it records are this test's alone, whatever ran before.
    const kids: unknown[] = [];
    const own = await startResolverApp(kids);
    try {
      const good = handMadeToken({ alg: 'RS256', kid: 'key-1' }, claims(), { rsa: signing.privateKey });
      const client = await TestClient.connect(own.wsUrl('/secure'), bearer(good));
      assert.equal(((await client.request({ event: 'whoami', id: 1 })).data as { sub: string }).sub, 'bob');
      client.close();
      const hostile = handMadeToken({ alg: 'RS256', kid: '../../etc/passwd' }, claims(), { rsa: signing.privateKey });
      const refused = await refusedUpgrade(own.wsUrl('/secure'), bearer(hostile));
      assert.equal(refused.status, 401);
      assert.deepEqual(kids, ['key-1', '../../etc/passwd']);
      assert.match(own.logger.text, /no key for the token: unknown kid/);
    } finally {
      await own.close();
    }
  });
});

describe('JWT authentication with a key resolver', () => {
  // The resolver has a key for every token: only the pinned algorithm keeps the others out.
  const asked: JwtTokenHeader[] = [];
  const claims = () => ({ sub: 'carol', exp: now() + 600 });
  let app: RunningApp & { logger: CapturingLogger };

  before(async () => {
    app = await start({
      algorithms: ['HS256'],
      keyResolver: (header) => {
        asked.push(header);
        return SECRET;
      },
    });
  });
  after(() => app.close());

  it('accepts a pinned-algorithm token with the key the resolver gives', async () => {
    asked.length = 0;
    const client = await TestClient.connect(app.wsUrl('/secure'), bearer(jwt.sign(claims(), { keyid: 'k1' })));
    assert.deepEqual((await client.request({ event: 'whoami', id: 1 })).data, { sub: 'carol', roles: [] });
    assert.deepEqual(asked, [{ alg: 'HS256', typ: 'JWT', kid: 'k1' }]);
    client.close();
  });

  it('refuses a token whose alg is not pinned without asking the resolver, though it has the key', async () => {
    asked.length = 0;
    const hs384 = jwt.sign(claims(), { algorithm: 'HS384', keyid: 'k1' });
    const refused = await refusedUpgrade(app.wsUrl('/secure'), bearer(hs384));
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAUTHORIZED', message: 'invalid token' });
    assert.deepEqual(asked, [], 'the resolver was asked for a key of an algorithm that is not pinned');
    assert.match(
      app.logger.text,
      /401 UNAUTHORIZED\) at \/secure from 127\.0\.0\.1: algorithm "HS384" is not accepted \(token from header\)/,
    );
  });

  it('refuses with 401 a token the verifier throws on (not a rejection), and logs the error kind, never its text', async () => {
    asked.length = 0;
    // typ JWT with a payload that is not JSON: decoding it for the resolver throws a
    // SyntaxError, whose message quotes the start of the payload.
    const payload = 'sk_live_4242 (a payload that is not JSON)';
    const token = handMadeToken({ alg: 'HS256', typ: 'JWT', kid: 'k1' }, payload, { hmac: SECRET });
    const refused = await refusedUpgrade(app.wsUrl('/secure'), bearer(token));
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAUTHORIZED', message: 'invalid token' });
    assert.equal(refused.headers['www-authenticate'], 'Bearer error="invalid_token", error_description="invalid token"');
    assert.deepEqual(asked, []);
    // The refusal's line is there, with the error's kind; then nothing of the token is.
    assert.match(app.logger.text, /401 UNAUTHORIZED\) at \/secure from 127\.0\.0\.1: verification threw SyntaxError \(token from header\)/);
    for (const secret of [token, token.split('.')[1]!, token.split('.')[2]!, 'sk_live']) {
      assert.ok(!app.logger.text.includes(secret), `logged: ${secret}`);
    }
    // The server goes on: the next token is let in.
    const client = await TestClient.connect(app.wsUrl('/secure'), bearer(jwt.sign(claims(), { keyid: 'k1' })));
    client.close();
  });
});

describe('authentication configuration', () => {
  it('refuses to start an authenticated gateway without auth options', async () => {
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({})], providers: [AuthLog, SecureGateway] }),
      /The gateway at \/secure requires authentication, but RealtimeModule has none/,
    );
  });

  it('refuses "none" among the pinned algorithms, and keys used with the wrong kind of algorithm', async () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const attempts: [RealtimeAuthOptions, RegExp][] = [
      [{ secret: SECRET, algorithms: ['none' as 'HS256'] }, /must not include "none"/],
      [{ secret: SECRET, algorithms: ['RS256'] }, /auth.secret only works with HS\* algorithms/],
      [{ publicKey, algorithms: ['HS256'] }, /auth.publicKey only works with asymmetric algorithms/],
      [{ keyResolver: () => SECRET }, /keyResolver needs auth.algorithms/],
      [{ secret: SECRET, publicKey }, /exactly one of/],
      [{ secret: SECRET, verifyConnectionTimeoutMs: -5 }, /auth.verifyConnectionTimeoutMs must be a positive integer/],
      [{ secret: SECRET, verifyConnectionTimeoutMs: 2 ** 31 }, /auth.verifyConnectionTimeoutMs must be at most 2147483647 ms/],
    ];
    for (const [auth, error] of attempts) {
      await assert.rejects(startApp({ imports: [RealtimeModule.forRoot({ auth })], providers: [OpenGateway] }), error);
    }
  });
});
