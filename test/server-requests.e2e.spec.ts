import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ClientReplyError, RealtimeHub, RealtimeModule } from '../src/index.js';
import { RealtimeClient, RealtimeClientError } from '../src/client/index.js';
import { AskerGateway, AskLog } from './fixtures/asking-gateways.js';
import { startApp, type RunningApp } from './support/app.js';
import { handMadeToken, now } from './support/tokens.js';
import { until } from './support/until.js';
import { TestClient } from './support/ws-client.js';

const SECRET = 'server-requests-secret-0123456789abcdef';

function tokenFor(sub: string): string {
  return handMadeToken({ alg: 'HS256', typ: 'JWT' }, { sub, exp: now() + 3600 }, { hmac: SECRET });
}

describe('server-to-client requests (protocol §8)', () => {
  let app: RunningApp;
  let log: AskLog;
  const clients: TestClient[] = [];
  const sdks: RealtimeClient[] = [];

  async function start(): Promise<void> {
    app = await startApp({
      imports: [RealtimeModule.forRoot({ auth: { secret: SECRET } })],
      providers: [AskLog, AskerGateway],
    });
    log = app.app.get(AskLog);
  }

  async function connect(): Promise<TestClient> {
    const client = await TestClient.connect(app.wsUrl('/asker'), { headers: { authorization: `Bearer ${tokenFor('alice')}` } });
    clients.push(client);
    return client;
  }

  function sdk(): RealtimeClient {
    const client = new RealtimeClient(app.wsUrl('/asker'), {
      WebSocket,
      token: tokenFor('alice'),
      pingIntervalMs: false,
      backoff: { initialMs: 20, maxMs: 100 },
    });
    sdks.push(client);
    return client;
  }

  afterEach(async () => {
    clients.splice(0).forEach((client) => client.close());
    sdks.splice(0).forEach((client) => client.disconnect());
    await app?.close();
  });

  describe('on the wire', () => {
    it('sends {event, sid, data}, sids counted from 1 per connection apart from client ids, and resolves with the reply', async () => {
      await start();
      const client = await connect();
      client.send({ event: 'ask', id: 1, data: { event: 'confirm', data: { order: 7 } } });
      assert.deepEqual(await client.nextJson(), { event: 'confirm', sid: 1, data: { order: 7 } });
      // A second request while the first waits; the client's own ids (1 and 2 here) play no part.
      client.send({ event: 'ask', id: 2, data: { event: 'pick' } });
      assert.deepEqual(await client.nextJson(), { event: 'pick', sid: 2, data: null });
      // Answered out of order, each reaches its own request.
      client.send({ event: 'pick', sid: 2, data: 'blue' });
      assert.deepEqual(await client.nextJson(), { event: 'ask', id: 2, data: { reply: 'blue' } });
      client.send({ event: 'confirm', sid: 1, data: { ok: true } });
      assert.deepEqual(await client.nextJson(), { event: 'ask', id: 1, data: { reply: { ok: true } } });
      // Another connection counts its own sids from 1.
      const other = await connect();
      other.send({ event: 'ask', id: 'x', data: { event: 'confirm' } });
      assert.deepEqual(await other.nextJson(), { event: 'confirm', sid: 1, data: null });
    });

    it("fails with the client's error code and message, or BAD_REQUEST for a malformed failure", async () => {
      await start();
      const client = await connect();
      client.send({ event: 'ask', id: 1, data: { event: 'confirm' } });
      await client.nextJson();
      client.send({ event: 'error', sid: 1, data: { code: 'DECLINED', message: 'not today' } });
      assert.deepEqual(await client.nextJson(), { event: 'ask', id: 1, data: { failed: { code: 'DECLINED', message: 'not today' } } });
      for (const [id, failure] of [
        [2, { code: 'not a code', message: 'x' }],
        [3, 'DECLINED'],
        [4, null],
      ] as const) {
        client.send({ event: 'ask', id, data: { event: 'confirm' } });
        const { sid } = await client.nextJson();
        client.send({ event: 'error', sid, data: failure });
        assert.deepEqual(await client.nextJson(), {
          event: 'ask',
          id,
          data: { failed: { code: 'BAD_REQUEST', message: 'the client answered "confirm" with a malformed error' } },
        });
      }
    });

    it('fails with TIMEOUT after timeoutMs, and then discards the late reply without an answer', async () => {
      await start();
      const client = await connect();
      client.send({ event: 'ask', id: 1, data: { event: 'confirm', timeoutMs: 50 } });
      assert.deepEqual(await client.nextJson(), { event: 'confirm', sid: 1, data: null });
      assert.deepEqual(await client.nextJson(), {
        event: 'ask',
        id: 1,
        data: { failed: { code: 'TIMEOUT', message: 'the client did not answer "confirm" within 50 ms' } },
      });
      client.send({ event: 'confirm', sid: 1, data: 'too late' });
      // Frames keep their order: the pong comes next, so nothing answered the late reply.
      assert.deepEqual((await client.request({ event: 'ping', id: 'p' })).event, 'pong');
      assert.equal(client.pending, 0);
    });

    it('refuses a reply to a request never sent, and a bad sid, as invalid frames (BAD_REQUEST)', async () => {
      await start();
      const client = await connect();
      assert.deepEqual(await client.request({ event: 'confirm', sid: 1, data: 'yes' }), {
        event: 'error',
        data: { code: 'BAD_REQUEST', message: 'no request with "sid" 1 was sent to this client' },
      });
      for (const sid of [0, -1, 1.5, '1', null, 2 ** 53]) {
        assert.deepEqual(await client.request({ event: 'confirm', sid, data: 'yes' }), {
          event: 'error',
          data: { code: 'BAD_REQUEST', message: '"sid" must be a whole number of at least 1' },
        });
      }
      assert.deepEqual(await client.request({ event: 'confirm', sid: 1, id: 9 }), {
        event: 'error',
        id: 9,
        data: { code: 'BAD_REQUEST', message: 'a frame carries "id" (a request) or "sid" (a reply), not both' },
      });
    });

    it('fails with DISCONNECTED when the connection closes first, and at once for a connection already closed', async () => {
      await start();
      const client = await connect();
      // The request goes out before the handler's own reply.
      client.send({ event: 'ask-later', id: 1, data: { event: 'confirm', timeoutMs: 60_000 } });
      assert.deepEqual(await client.nextJson(), { event: 'confirm', sid: 1, data: null });
      assert.equal((await client.nextJson()).data, 'asked');
      client.close();
      await until(() => log.outcomes.length === 1, 'the request to fail');
      assert.deepEqual(log.outcomes[0], {
        event: 'confirm',
        code: 'DISCONNECTED',
        message: 'the connection closed before the client answered "confirm"',
        name: 'ClientReplyError',
      });
      const closed = app.app.get(RealtimeHub).request(log.sockets[0]!, 'again', undefined, { timeoutMs: 60_000 });
      await assert.rejects(closed, (error: unknown) => {
        assert.ok(error instanceof ClientReplyError);
        assert.deepEqual(
          [error.code, error.event, error.message],
          ['DISCONNECTED', 'again', 'the connection closed before "again" could be sent'],
        );
        return true;
      });
    });

    it('refuses a bad event or timeout with a TypeError before sending anything', async () => {
      await start();
      const client = await connect();
      client.send({ event: 'ask-later', id: 1, data: { event: 'confirm' } });
      assert.equal((await client.nextJson()).sid, 1);
      assert.equal((await client.nextJson()).data, 'asked');
      const hub = app.app.get(RealtimeHub);
      const socket = log.sockets[0]!;
      for (const [event, timeoutMs] of [
        ['error', 100],
        ['', 100],
        ['x'.repeat(129), 100],
        ['ok', 0],
        ['ok', -5],
        ['ok', Number.NaN],
        ['ok', 2 ** 31],
      ] as const) {
        assert.throws(() => hub.request(socket, event, undefined, { timeoutMs }), TypeError, `${event.slice(0, 10)} / ${timeoutMs}`);
      }
      assert.throws(() => hub.request({}, 'ok'), /not a client of a realtime gateway/);
      assert.equal((await client.request({ event: 'ping', id: 'p' })).event, 'pong');
    });
  });

  describe('with the client SDK (handle)', () => {
    it("answers with the handler's result, sync or async, and its data typed as asked", async () => {
      await start();
      const client = sdk();
      client.handle<{ order: number }>('confirm', async (data, frame) => ({ confirmed: data.order, sid: frame.sid }));
      client.handle('now', () => 'sync');
      assert.deepEqual(await client.request('ask', { event: 'confirm', data: { order: 7 } }), { reply: { confirmed: 7, sid: 1 } });
      assert.deepEqual(await client.request('ask', { event: 'now' }), { reply: 'sync' });
    });

    it("sends a handler's failure back: its code when it has one, else INTERNAL; UNKNOWN_EVENT without a handler", async () => {
      await start();
      const client = sdk();
      client.handle('declined', () => {
        throw new RealtimeClientError('DECLINED', 'not today');
      });
      client.handle('broken', () => Promise.reject(new Error('the dialog crashed')));
      client.handle('unsendable', () => ({ big: 1n }));
      assert.throws(
        () => client.handle('', () => 'x'),
        /RealtimeClient\.handle\(\): the event must be a string of 1 to 128 characters other than "error", got ""/,
      );
      assert.throws(() => client.handle('error', () => 'x'), /other than "error"/);
      assert.throws(() => client.handle('ok', 'not a function' as never), /the handler of "ok" must be a function/);
      const removed = client.handle('gone', () => 'here');
      assert.deepEqual(await client.request('ask', { event: 'gone' }), { reply: 'here' });
      removed();
      const failures: unknown[] = [];
      for (const event of ['declined', 'broken', 'unsendable', 'gone', 'never']) {
        failures.push(await client.request('ask', { event }));
      }
      assert.deepEqual(failures, [
        { failed: { code: 'DECLINED', message: 'not today' } },
        { failed: { code: 'INTERNAL', message: 'the dialog crashed' } },
        { failed: { code: 'INTERNAL', message: 'Do not know how to serialize a BigInt' } },
        { failed: { code: 'UNKNOWN_EVENT', message: 'no handler for server request "gone"' } },
        { failed: { code: 'UNKNOWN_EVENT', message: 'no handler for server request "never"' } },
      ]);
      // A ClientReplyError that escapes a handler answers its request INTERNAL, not with the SDK's own codes.
      await assert.rejects(client.request('ask-unguarded', { event: 'declined' }), (error: unknown) => {
        assert.ok(error instanceof RealtimeClientError);
        assert.equal(error.code, 'INTERNAL');
        return true;
      });
    });

    it('does not answer on a new connection a request that came on an old one', async () => {
      await start();
      const client = sdk();
      const answers: ((value: string) => void)[] = [];
      client.handle('slow', () => new Promise<string>((resolve) => answers.push(resolve)));
      client.send('ask-later', { event: 'slow', timeoutMs: 60_000 });
      await until(() => answers.length === 1, 'the first request');
      // The server drops the connection; the client reconnects and is asked again: sid 1 once more.
      log.sockets[0]!.terminate();
      await until(() => log.outcomes.length === 1, 'the first request to fail');
      assert.equal(log.outcomes[0]!.code, 'DISCONNECTED');
      await until(() => client.state === 'open', 'the client to reconnect', 10_000);
      client.send('ask-later', { event: 'slow', timeoutMs: 60_000 });
      await until(() => answers.length === 2, 'the second request');
      // The old request's answer comes first: sent on the new connection, it would answer its sid 1.
      answers[0]!('stale');
      answers[1]!('fresh');
      await until(() => log.outcomes.length === 2, 'the second request to end');
      assert.deepEqual(log.outcomes[1], { event: 'slow', data: 'fresh' });
    });
  });
});
