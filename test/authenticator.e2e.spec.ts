import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Test } from '@nestjs/testing';
import type { IncomingMessage } from 'node:http';
import type { INestApplication } from '@nestjs/common';
import { type Authentication, RealtimeModule, type RealtimeModuleOptions } from '../src/index.js';
import { ApiKeyAuthenticator } from './fixtures/api-key-authenticator.js';
import { AdminGateway, AuthLog, CapturingLogger, OpenGateway, SecureGateway } from './fixtures/auth-gateways.js';
import { startApp, type RunningApp } from './support/app.js';
import { refusedUpgrade, TestClient } from './support/ws-client.js';

const ORIGIN = 'https://app.example.com';
const READER_KEY = 'reader-key-0123456789abcdef';
const ADMIN_KEY = 'admin-key-0123456789abcdefgh';

describe('a custom authenticator (API keys), through the public API only', () => {
  let app: RunningApp;
  const logger = new CapturingLogger();
  const key = (value: string) => ({ headers: { 'x-api-key': value } });
  /** The reader's key alone, for authenticators made in a test. */
  const readerOnly = () => new Map([[READER_KEY, { sub: 'reporting-service' }]]);

  /** Another app with `/secure` alone, under `options`. */
  function startSecure(options: RealtimeModuleOptions, configure?: (nest: INestApplication) => void): Promise<RunningApp> {
    return startApp({ imports: [RealtimeModule.forRoot(options)], providers: [AuthLog, SecureGateway] }, configure);
  }

  before(async () => {
    const authenticator = new ApiKeyAuthenticator(
      new Map([
        [READER_KEY, { sub: 'reporting-service' }],
        [ADMIN_KEY, { sub: 'ops-service', roles: ['admin'] }],
      ]),
    );
    app = await startApp(
      {
        imports: [RealtimeModule.forRoot({ authenticator, allowedOrigins: [ORIGIN] })],
        providers: [AuthLog, SecureGateway, AdminGateway, OpenGateway],
      },
      (nest) => nest.useLogger(logger),
    );
  });
  after(() => app.close());

  it('lets a valid key in, with the principal it gives', async () => {
    const client = await TestClient.connect(app.wsUrl('/secure'), key(READER_KEY));
    assert.deepEqual((await client.request({ event: 'whoami', id: 1 })).data, { sub: 'reporting-service', roles: [] });
    client.close();
  });

  it('refuses a missing or unknown key with 401 and its own challenge, and never logs the key', async () => {
    const missing = await refusedUpgrade(app.wsUrl('/secure'));
    assert.equal(missing.status, 401);
    assert.deepEqual(JSON.parse(missing.body), { error: 'UNAUTHORIZED', message: 'missing api key' });
    assert.equal(missing.headers['www-authenticate'], 'ApiKey');
    const unknown = await refusedUpgrade(app.wsUrl('/secure'), key('stolen-key-that-does-not-exist'));
    assert.equal(unknown.status, 401);
    assert.deepEqual(JSON.parse(unknown.body), { error: 'UNAUTHORIZED', message: 'invalid api key' });
    assert.ok(!logger.text.includes('stolen-key'), 'a key reached the log');
    assert.match(logger.text, /upgrade refused \(401 UNAUTHORIZED\) at \/secure from 127\.0\.0\.1: unknown key of 30 characters/);
  });

  it('still checks the gateway roles and the Origin around it', async () => {
    assert.equal((await refusedUpgrade(app.wsUrl('/admins'), key(READER_KEY))).status, 403);
    const admin = await TestClient.connect(app.wsUrl('/admins'), key(ADMIN_KEY));
    assert.equal((await admin.request({ event: 'whoami', id: 1 })).data, 'ops-service');
    admin.close();
    const foreign = await refusedUpgrade(app.wsUrl('/secure'), {
      headers: { 'x-api-key': READER_KEY, origin: 'https://evil.example.com' },
    });
    assert.equal(foreign.status, 403);
  });

  it('lets a public gateway in without a key, but refuses a bad one there', async () => {
    const anonymous = await TestClient.connect(app.wsUrl('/open'));
    assert.equal((await anonymous.request({ event: 'whoami', id: 1 })).data, null);
    anonymous.close();
    assert.equal((await refusedUpgrade(app.wsUrl('/open'), key('nope'))).status, 401);
  });

  it('answers an in-band auth with BAD_REQUEST: these credentials cannot be refreshed', async () => {
    const client = await TestClient.connect(app.wsUrl('/secure'), key(READER_KEY));
    assert.deepEqual(await client.request({ event: 'auth', id: 7, data: { token: 'x' } }), {
      event: 'error',
      id: 7,
      data: { code: 'BAD_REQUEST', message: 'these credentials cannot be refreshed in-band' },
    });
    client.close();
  });

  it('logs only the kind of an error an authenticator throws, never its text, and survives one thrown at once', async () => {
    const secretish = 'sk_live_do_not_log_me_0123456789';
    class Careless extends ApiKeyAuthenticator {
      override async authenticate(request: IncomingMessage): Promise<Authentication | undefined> {
        if (request.headers['x-api-key'] === secretish) {
          throw new Error(`database said: no row for ${secretish}`);
        }
        return super.authenticate(request);
      }
      // Not async: throws before any promise exists.
      refresh(data: unknown): Promise<Authentication> {
        throw new TypeError(`cannot refresh ${JSON.stringify(data)}`);
      }
    }
    const careless = new CapturingLogger();
    const other = await startApp(
      {
        imports: [RealtimeModule.forRoot({ authenticator: new Careless(new Map([[READER_KEY, { sub: 'reporting-service' }]])) })],
        providers: [AuthLog, SecureGateway],
      },
      (nest) => nest.useLogger(careless),
    );
    try {
      const refused = await refusedUpgrade(other.wsUrl('/secure'), key(secretish));
      assert.equal(refused.status, 401);
      assert.deepEqual(JSON.parse(refused.body), { error: 'UNAUTHORIZED', message: 'invalid credentials' });
      const client = await TestClient.connect(other.wsUrl('/secure'), key(READER_KEY));
      assert.deepEqual(await client.request({ event: 'auth', id: 1, data: { key: secretish } }), {
        event: 'error',
        id: 1,
        data: { code: 'UNAUTHORIZED', message: 'invalid token' },
      });
      assert.equal((await client.request({ event: 'whoami', id: 2 })).event, 'whoami');
      client.close();
      assert.match(careless.text, /the authenticator threw Error/);
      assert.match(careless.text, /in-band auth failed: the authenticator threw TypeError/);
      assert.ok(!careless.text.includes(secretish), 'a credential reached the log');
    } finally {
      await other.close();
    }
  });

  it('refuses an authentication whose expiresAt is no finite number with 401, saying why in the log', async () => {
    const given = new Map<string, unknown>([
      ['nan-expiry-key-0123456789ab', { principal: { sub: 'svc' }, expiresAt: Number.NaN }],
      ['text-expiry-key-0123456789a', { principal: { sub: 'svc' }, expiresAt: 'tomorrow' }],
    ]);
    class Sloppy extends ApiKeyAuthenticator {
      override async authenticate(request: IncomingMessage): Promise<Authentication | undefined> {
        const made = given.get(String(request.headers['x-api-key']));
        return made ? (made as Authentication) : super.authenticate(request);
      }
      refresh(data: unknown): Promise<Authentication> {
        return Promise.resolve(given.get((data as { key: string }).key) as Authentication);
      }
    }
    const sloppyLog = new CapturingLogger();
    const other = await startApp(
      {
        imports: [RealtimeModule.forRoot({ authenticator: new Sloppy(new Map([[READER_KEY, { sub: 'reporting-service' }]])) })],
        providers: [AuthLog, SecureGateway],
      },
      (nest) => nest.useLogger(sloppyLog),
    );
    try {
      for (const bad of given.keys()) {
        const refused = await refusedUpgrade(other.wsUrl('/secure'), key(bad));
        assert.equal(refused.status, 401, bad);
        assert.deepEqual(JSON.parse(refused.body), { error: 'UNAUTHORIZED', message: 'invalid credentials' });
      }
      assert.match(sloppyLog.text, /expiresAt that is not a finite number/);
      const client = await TestClient.connect(other.wsUrl('/secure'), key(READER_KEY));
      assert.deepEqual(await client.request({ event: 'auth', id: 1, data: { key: 'nan-expiry-key-0123456789ab' } }), {
        event: 'error',
        id: 1,
        data: { code: 'UNAUTHORIZED', message: 'invalid credentials' },
      });
      assert.equal((await client.request({ event: 'whoami', id: 2 })).event, 'whoami');
      client.close();
    } finally {
      await other.close();
    }
  });

  it('refuses an in-band auth whose check hangs once the handshake deadline passed, and keeps the credentials it had', async () => {
    class Hanging extends ApiKeyAuthenticator {
      refresh(): Promise<Authentication> {
        return new Promise<Authentication>(() => undefined);
      }
    }
    const other = await startSecure({ authenticator: new Hanging(readerOnly()), limits: { handshakeTimeoutMs: 200 } });
    try {
      const client = await TestClient.connect(other.wsUrl('/secure'), key(READER_KEY));
      assert.deepEqual(await client.request({ event: 'auth', id: 1, data: { key: 'whatever' } }), {
        event: 'error',
        id: 1,
        data: { code: 'UNAUTHORIZED', message: 'the credentials could not be checked in time' },
      });
      assert.deepEqual((await client.request({ event: 'whoami', id: 2 })).data, { sub: 'reporting-service', roles: [] });
      client.close();
    } finally {
      await other.close();
    }
  });

  it('answers an in-band auth once when its verifyConnection hook refuses after the deadline', async () => {
    class Refreshable extends ApiKeyAuthenticator {
      refresh(): Promise<Authentication> {
        return Promise.resolve({ principal: { sub: 'reporting-service', roles: [] } });
      }
    }
    let hookCalls = 0;
    let hookAnswered!: () => void;
    const answered = new Promise<void>((resolve) => (hookAnswered = resolve));
    const other = await startSecure({
      authenticator: new Refreshable(readerOnly()),
      auth: {
        verifyConnectionTimeoutMs: 5000,
        // The handshake passes; the refresh's check says no, long after the deadline.
        verifyConnection: async () => {
          if (hookCalls++ === 0) {
            return true;
          }
          await new Promise((resolve) => setTimeout(resolve, 400));
          hookAnswered();
          return false;
        },
      },
      limits: { handshakeTimeoutMs: 100 },
    });
    try {
      const client = await TestClient.connect(other.wsUrl('/secure'), key(READER_KEY));
      assert.deepEqual(await client.request({ event: 'auth', id: 1, data: {} }), {
        event: 'error',
        id: 1,
        data: { code: 'UNAUTHORIZED', message: 'the credentials could not be checked in time' },
      });
      await answered;
      // The hook's late "no" is not a second answer: the next frame is whoami's reply.
      assert.equal((await client.request({ event: 'whoami', id: 2 })).event, 'whoami');
      client.close();
    } finally {
      await other.close();
    }
  });

  it('refuses to start with both JWT keys and an authenticator', async () => {
    const authenticator = new ApiKeyAuthenticator(new Map());
    await assert.rejects(
      Test.createTestingModule({
        imports: [RealtimeModule.forRoot({ authenticator, auth: { secret: 'a-secret-of-decent-length-0123456789' } })],
        providers: [AuthLog, SecureGateway],
      })
        .compile()
        .then((module) => module.createNestApplication({ logger: false }).init()),
      /give either auth \(JWT keys\) or an authenticator, not both/,
    );
    await assert.rejects(
      Test.createTestingModule({
        imports: [RealtimeModule.forRoot({ authenticator: {} as never })],
        providers: [AuthLog, SecureGateway],
      })
        .compile()
        .then((module) => module.createNestApplication({ logger: false }).init()),
      /authenticator must have an authenticate\(request\) method/,
    );
  });
});
