import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Test } from '@nestjs/testing';
import { RealtimeModule } from '../src/index.js';
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
  });
});
