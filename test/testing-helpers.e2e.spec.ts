import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import request from 'supertest';
import { JwtService } from '@nestjs/jwt';
import { RealtimeModule } from '../src/index.js';
import { RealtimeTestClient, RealtimeTestError, signTestToken } from '../src/testing/index.js';
import { AppModule } from '../sample-app/src/app.module.js';
import { loadConfig } from '../sample-app/src/config.js';

if (!process.env.TEST_LOGS) {
  Logger.overrideLogger(false);
}

describe('nestjs-realtime/testing in an application test (the sample app, as the README shows)', () => {
  it('signs a token with the app secret, requests, takes pushes, lists the untaken ones, sees refusals and closes', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.register(loadConfig({ JWT_SECRET: 'testing-helpers-secret-0123456789abcdef' }))],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.listen(0, '127.0.0.1');
    try {
      const token = await signTestToken(app, { sub: 'alice' });
      const echo = await RealtimeTestClient.connect(app, '/echo', { token });
      assert.deepEqual(await echo.request('echo', { message: 'hi' }), { message: 'Echo: hi' });
      await assert.rejects(
        echo.request('echo', { message: '' }),
        (error: unknown) => error instanceof RealtimeTestError && error.code === 'VALIDATION_FAILED' && error.details?.length === 1,
      );
      await request(app.getHttpServer()).get('/health').expect(200);

      const chat = await RealtimeTestClient.connect(app, '/chat', { token });
      const bob = await RealtimeTestClient.connect(app, '/chat', { token: await signTestToken(app, { sub: 'bob' }) });
      await chat.request('join', { room: 'lobby' });
      assert.deepEqual((await bob.request<{ members: string[] }>('join', { room: 'lobby' })).members, ['alice', 'bob']);
      await bob.request('send', { room: 'lobby', text: 'hello' });
      // bob is a member too: his own message came before the reply to his send, and waits untaken.
      const pending = bob.pendingPushes();
      assert.deepEqual(
        pending.map((push) => [push.event, push.room, push.offset]),
        [['message', 'lobby', 1]],
      );
      pending.length = 0; // a copy: the client's own list is untouched
      assert.equal((await bob.next('message')).offset, 1);
      assert.deepEqual(bob.pendingPushes(), []);
      const push = await chat.next<{ from: string; text: string }>('message');
      assert.deepEqual([push.room, push.offset, push.data.from, push.data.text], ['lobby', 1, 'bob', 'hello']);
      assert.deepEqual(chat.pendingPushes(), []);

      await assert.rejects(RealtimeTestClient.connect(app, '/echo'), /refused: HTTP 401/);
      await assert.rejects(RealtimeTestClient.connect(app, 'echo', { token }), /a gateway path starts with "\/"/);
      await assert.rejects(
        RealtimeTestClient.connect(app, '/echo', {
          token: await signTestToken(app, { sub: 'eve' }, { key: 'another-secret-0123456789abcdef0123' }),
        }),
        /HTTP 401/,
      );
      const waiting = echo.next('never');
      echo.close();
      assert.equal((await echo.closed()).code, 1000);
      // Nothing waits out its timeout once the connection is gone.
      await assert.rejects(waiting, /the connection closed \(1000/);
      await assert.rejects(echo.request('echo', { message: 'late' }), /not open/);
      await assert.rejects(echo.next('message'), /closed \(1000\)/);
      chat.close();
      bob.close();
    } finally {
      await app.close();
    }
  });

  it('signs with a private key given as PEM bytes (read from a file) under the asymmetric algorithm the app pins', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const moduleRef = await Test.createTestingModule({
      imports: [RealtimeModule.forRoot({ auth: { publicKey, algorithms: ['RS256'] } })],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    try {
      const token = await signTestToken(app, { sub: 'alice' }, { key: Buffer.from(privateKey) });
      const claims = new JwtService().verify<{ sub: string }>(token, { publicKey, algorithms: ['RS256'] });
      assert.equal(claims.sub, 'alice');
    } finally {
      await app.close();
    }
  });

  it('says what is missing when asked for a token by an app without RealtimeModule, or without a secret', async () => {
    const app = (await Test.createTestingModule({}).compile()).createNestApplication({ logger: false });
    try {
      await assert.rejects(signTestToken(app, { sub: 'alice' }), /the app does not import RealtimeModule/);
    } finally {
      await app.close();
    }
    const keyless = (await Test.createTestingModule({ imports: [RealtimeModule.forRoot({})] }).compile()).createNestApplication({
      logger: false,
    });
    try {
      await assert.rejects(signTestToken(keyless, { sub: 'alice' }), {
        name: 'TypeError',
        message: 'signTestToken: the app has no auth.secret; pass the signing key as options.key',
      });
    } finally {
      await keyless.close();
    }
  });
});
