import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { refusedUpgrade, TestClient } from './support/ws-client.js';
import { loadConfig } from '../sample-app/src/config.js';
import { DEFAULTS } from '../src/options/resolve-options.js';
import { RealtimeTestClient } from '../src/testing/index.js';
import { only, refusedWith } from './support/realtime-assert.js';
import { copyProject, demoToken, startSampleApp, stopGroup } from './support/sample-app.js';
import { until, within } from './support/until.js';

const SECRET = 'sample-app-test-secret-0123456789abcdef';

// Its application flows go through the public test client (nestjs-realtime/testing, URL
// form: the app runs as a child process); exact frames, raw text and a client that ignores
// pings use the frame-level TestClient.
describe('sample app (protocol.md §6)', () => {
  let app: Awaited<ReturnType<typeof startSampleApp>>;
  /** `http://127.0.0.1:<port>` */
  let base: string;
  /** `ws://127.0.0.1:<port>`, the base URL of its gateways. */
  let wsBase: string;
  let token: string;

  const heartbeat = { intervalMs: 300, timeoutMs: 200 };

  before(async () => {
    app = await startSampleApp({
      JWT_SECRET: SECRET,
      HEARTBEAT_INTERVAL_MS: String(heartbeat.intervalMs),
      HEARTBEAT_TIMEOUT_MS: String(heartbeat.timeoutMs),
    });
    base = app.wsUrl.replace(/^ws:/, 'http:').replace(/\/echo$/, '');
    wsBase = app.wsUrl.replace(/\/echo$/, '');
    const response = await fetch(`${base}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'alice' }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { access_token: string; token_type: string; expires_in: number };
    assert.equal(body.token_type, 'Bearer');
    assert.ok(body.expires_in > 0);
    token = body.access_token;
  });

  const connect = (): Promise<RealtimeTestClient> => RealtimeTestClient.connect(wsBase, '/echo', { token });
  const connectRaw = (): Promise<TestClient> => TestClient.connect(app.wsUrl, { headers: { authorization: `Bearer ${token}` } });

  it('refuses /echo without a token with 401', async () => {
    const refused = await refusedUpgrade(app.wsUrl);
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.body), { error: 'UNAUTHORIZED', message: 'missing token' });
  });

  for (const format of ['text', 'json']) {
    it(`logs no token and no query string in ${format} logs, whatever the URL's shape`, async () => {
      const origin = 'https://app.example.com';
      const logging = await startSampleApp({ JWT_SECRET: SECRET, LOG_FORMAT: format, ALLOWED_ORIGINS: origin });
      try {
        const logBase = logging.wsUrl.replace(/^ws:/, 'http:').replace(/\/echo$/, '');
        const valid = await demoToken(logBase, 'mallory');
        const forged = `${valid.slice(0, -4)}AAAA`;
        const forms = ['?access_token=', '??access_token=', '?x=a;b&access_token=', '?access%5Ftoken=', '?a=1&&access_token='];
        for (const form of forms) {
          // A valid token from a foreign Origin (403), a forged one (401).
          const foreign = await refusedUpgrade(`${logging.wsUrl}${form}${valid}`, { headers: { origin: 'https://evil.example.com' } });
          assert.equal(foreign.status, 403);
          assert.equal((await refusedUpgrade(`${logging.wsUrl}${form}${forged}`)).status, 401);
        }
        await until(() => (logging.output().match(/upgrade refused \(401 UNAUTHORIZED\)/g) ?? []).length === forms.length, 'the 401 lines');
        await until(() => (logging.output().match(/upgrade refused \(403 FORBIDDEN\)/g) ?? []).length === forms.length, 'the 403 lines');
        const refusals = logging
          .output()
          .split('\n')
          .filter((line) => line.includes('upgrade refused'));
        if (format === 'json') {
          for (const line of refusals) {
            assert.equal((JSON.parse(line) as { context: string }).context, 'RealtimeWsAdapter');
          }
        }
        for (const secret of [valid, forged].map((value) => value.split('.')[2]!)) {
          assert.ok(!logging.output().includes(secret), 'a token signature reached the log');
        }
        assert.ok(!/access|\?/.test(refusals.join('\n')), `a query string reached the log:\n${refusals.join('\n')}`);
      } finally {
        logging.child.kill('SIGKILL');
      }
    });
  }

  it('refuses a bad demo login with 400', async () => {
    const response = await fetch(`${base}/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: '' }),
    });
    assert.equal(response.status, 400);
  });

  after(() => {
    if (app.child.exitCode === null) {
      app.child.kill('SIGKILL');
    }
  });

  it('echoes a JSON echo request', async () => {
    const client = await connectRaw();
    assert.deepEqual(await client.request({ event: 'echo', data: { message: 'hi' }, id: 1 }), {
      event: 'echo',
      id: 1,
      data: { message: 'Echo: hi' },
    });
    client.close();
  });

  it('echoes a raw text frame as raw text', async () => {
    const client = await connectRaw();
    client.send('hi');
    assert.equal((await client.next()).text, 'Echo: hi');
    client.close();
  });

  it('refuses an echo body that breaks its contract with VALIDATION_FAILED', async () => {
    const client = await connect();
    for (const data of [{ message: '' }, { message: 'x'.repeat(1001) }, { message: 1 }, { message: 'hi', extra: true }, 'hi', null]) {
      await assert.rejects(client.request('echo', data), refusedWith('VALIDATION_FAILED'), JSON.stringify(data));
    }
    assert.equal((await client.request<{ message: string }>('echo', { message: 'x'.repeat(1000) })).message.length, 1006);
    client.close();
  });

  it("answers an empty echo with the exact error frame the README's quick start shows", async () => {
    const client = await connectRaw();
    assert.deepEqual(await client.request({ event: 'echo', data: { message: '' }, id: 2 }), {
      event: 'error',
      id: 2,
      data: {
        code: 'VALIDATION_FAILED',
        message: 'validation failed: message: message must be longer than or equal to 1 characters',
        details: [{ property: 'message', constraints: { isLength: 'message must be longer than or equal to 1 characters' } }],
      },
    });
    client.close();
  });

  it('takes its heartbeat from HEARTBEAT_INTERVAL_MS / HEARTBEAT_TIMEOUT_MS', async () => {
    // From before the handshake, so that the server's silence clock starts after this one.
    const started = performance.now();
    const client = await TestClient.connect(app.wsUrl, { headers: { authorization: `Bearer ${token}` }, autoPong: false });
    const pings: number[] = [];
    client.socket.on('ping', () => pings.push(performance.now() - started));
    assert.equal((await client.waitClosed()).code, 1006);
    const elapsed = performance.now() - started;
    // A silent client is pinged after intervalMs, once (the next ping would be due after the
    // cut), and cut after intervalMs + timeoutMs: lower bounds (the sweep may be late, never early).
    assert.equal(pings.length, 1, `pinged at ${pings.map(Math.round).join(', ')} ms`);
    assert.ok(pings[0]! >= heartbeat.intervalMs, `pinged after ${Math.round(pings[0]!)} ms, before ${heartbeat.intervalMs}`);
    const cutAfter = heartbeat.intervalMs + heartbeat.timeoutMs;
    assert.ok(elapsed >= cutAfter, `terminated after ${Math.round(elapsed)} ms, before ${cutAfter}`);
    assert.deepEqual(loadConfig({ JWT_SECRET: 'x', HEARTBEAT_INTERVAL_MS: '1000' }).heartbeat, { intervalMs: 1000, timeoutMs: 10_000 });
    assert.deepEqual(loadConfig({ JWT_SECRET: 'x' }).heartbeat, { intervalMs: 25_000, timeoutMs: 10_000 });
    assert.throws(() => loadConfig({ JWT_SECRET: 'x', HEARTBEAT_TIMEOUT_MS: '-5' }), /HEARTBEAT_TIMEOUT_MS must be a positive/);
    assert.equal(loadConfig({ JWT_SECRET: 'x' }).compression, false);
    assert.equal(loadConfig({ JWT_SECRET: 'x', COMPRESSION: 'on' }).compression, true);
    assert.equal(loadConfig({ JWT_SECRET: 'x', COMPRESSION: 'Off' }).compression, false);
    assert.throws(() => loadConfig({ JWT_SECRET: 'x', COMPRESSION: 'yes please' }), /COMPRESSION must be "on" or "off", got "yes please"/);
    for (const blank of [' ', ',', ' , ']) {
      assert.throws(() => loadConfig({ JWT_SECRET: 'x', ALLOWED_ORIGINS: blank }), /ALLOWED_ORIGINS lists no origin/);
    }
    assert.deepEqual(loadConfig({ JWT_SECRET: 'x', ALLOWED_ORIGINS: 'https://a.example, https://b.example' }).allowedOrigins, [
      'https://a.example',
      'https://b.example',
    ]);
  });

  it('takes a Redis Cluster from REDIS_CLUSTER, and refuses a malformed one or one next to REDIS_URL', () => {
    assert.deepEqual(loadConfig({ JWT_SECRET: 'x', REDIS_CLUSTER: 'redis-1:7000, 10.0.0.2:7001,[::1]:7002' }).redisCluster, [
      { host: 'redis-1', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    assert.equal(loadConfig({ JWT_SECRET: 'x' }).redisCluster, undefined);
    for (const bad of ['redis-1', 'redis-1:0', 'redis-1:7000,', ':7000']) {
      assert.throws(() => loadConfig({ JWT_SECRET: 'x', REDIS_CLUSTER: bad }), /REDIS_CLUSTER must list host:port pairs/, bad);
    }
    assert.throws(() => loadConfig({ JWT_SECRET: 'x', REDIS_CLUSTER: 'a:1', REDIS_URL: 'redis://b:2' }), /exclude each other/);
  });

  it('runs the /chat contract: join with members, send to every member once, leave, come back', async () => {
    const alice = await RealtimeTestClient.connect(wsBase, '/chat', { token });
    const bob = await RealtimeTestClient.connect(wsBase, '/chat', { token: await demoToken(base, 'bob') });
    try {
      const joined = await alice.request<{ epoch: string }>('join', { room: 'general' });
      const epoch = joined.epoch;
      assert.deepEqual(joined, { room: 'general', members: ['alice'], offset: 0, epoch });
      assert.deepEqual(await bob.request('join', { room: 'general' }), { room: 'general', members: ['alice', 'bob'], offset: 0, epoch });
      const sent = await alice.request('send', { room: 'general', text: 'hello' });
      const received = await only<{ room: string; from: string; text: string; at: string }>(alice, 'message');
      assert.deepEqual({ ...received, data: undefined }, { offset: 1, event: 'message', room: 'general', data: undefined });
      const message = received.data;
      assert.deepEqual({ ...message, at: undefined }, { room: 'general', from: 'alice', text: 'hello', at: undefined });
      assert.equal(new Date(message.at).toISOString(), message.at);
      assert.deepEqual(sent, { room: 'general', at: message.at, offset: 1 });
      assert.deepEqual(await only(bob, 'message'), received);

      await assert.rejects(
        bob.request('send', { room: 'elsewhere', text: 'hi' }),
        refusedWith('FORBIDDEN', { message: 'join the room "elsewhere" before sending to it' }),
      );
      for (const data of [
        { room: 'bad room!' },
        { room: 'x'.repeat(129) },
        { room: 'general', text: '' },
        { room: 'general', text: 'x'.repeat(2001) },
      ]) {
        await assert.rejects(bob.request('text' in data ? 'send' : 'join', data), refusedWith('VALIDATION_FAILED'), JSON.stringify(data));
      }
      assert.deepEqual(await alice.request('leave', { room: 'general' }), { room: 'general' });
      assert.deepEqual(await bob.request('join', { room: 'general' }), { room: 'general', members: ['bob'], offset: 1, epoch });
      // Coming back from offset 0 (docs/protocol.md §7): recovered, and the one message replayed.
      await bob.request('leave', { room: 'general' });
      const back = await bob.request('join', { room: 'general', since: { offset: 0, epoch } });
      assert.deepEqual(back, { room: 'general', members: ['bob'], offset: 1, epoch, recovered: true });
      assert.deepEqual(await only(bob, 'message'), received);
      await assert.rejects(bob.request('join', { room: 'general', since: { offset: -1, epoch } }), refusedWith('VALIDATION_FAILED'));
    } finally {
      alice.close();
      bob.close();
    }
  });

  it('sends the /chat frames exactly: a room message with its keys in order, before the reply to its send; a replay right after the join reply', async () => {
    const alice = await TestClient.connect(`${wsBase}/chat`, { headers: { authorization: `Bearer ${token}` } });
    try {
      const joined = await alice.request({ event: 'join', id: 1, data: { room: 'wire' } });
      const epoch = (joined.data as { epoch: string }).epoch;
      assert.deepEqual(joined, { event: 'join', id: 1, data: { room: 'wire', members: ['alice'], offset: 0, epoch } });
      alice.send({ event: 'send', id: 2, data: { room: 'wire', text: 'hello' } });
      const received = await alice.nextJson();
      assert.deepEqual(Object.keys(received), ['offset', 'event', 'room', 'data']);
      assert.deepEqual({ ...received, data: undefined }, { offset: 1, event: 'message', room: 'wire', data: undefined });
      const at = (received.data as { at: string }).at;
      assert.deepEqual(await alice.nextJson(), { event: 'send', id: 2, data: { room: 'wire', at, offset: 1 } });
      // Coming back from offset 0 (docs/protocol.md §7): the message replayed right after the reply.
      await alice.request({ event: 'leave', id: 3, data: { room: 'wire' } });
      assert.deepEqual(await alice.request({ event: 'join', id: 4, data: { room: 'wire', since: { offset: 0, epoch } } }), {
        event: 'join',
        id: 4,
        data: { room: 'wire', members: ['alice'], offset: 1, epoch, recovered: true },
      });
      assert.deepEqual(await alice.nextJson(), received);
    } finally {
      alice.close();
    }
  });

  it('exposes Prometheus metrics at /metrics that follow connections, messages and refusals', async () => {
    const scrape = async (): Promise<string> => {
      const response = await fetch(`${base}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      return response.text();
    };
    const value = (text: string, series: string): number => {
      const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
      return line ? Number(line.slice(series.length + 1)) : 0;
    };
    const open = 'realtime_connections{gateway="/echo"}';
    const echoes = 'realtime_messages_in_total{gateway="/echo",event="echo"}';
    const clientCloses = 'realtime_disconnects_total{gateway="/echo",cause="client"}';
    const refusals = 'realtime_upgrades_refused_total{status="401",cause="unauthorized"}';
    const failures = 'realtime_errors_total{gateway="/echo",code="VALIDATION_FAILED"}';
    const before = await scrape();
    const client = await connect();
    await until(async () => value(await scrape(), open) === value(before, open) + 1, 'the open connection to show');
    await client.request('echo', { message: 'metrics' });
    await assert.rejects(client.request('echo', { message: '' }), refusedWith('VALIDATION_FAILED'));
    await refusedUpgrade(app.wsUrl);
    client.close();
    await within(client.closed(), 'the close');
    await until(async () => value(await scrape(), open) === value(before, open), 'the close to show');
    const after = await scrape();
    assert.equal(value(after, echoes) - value(before, echoes), 2);
    assert.equal(value(after, failures) - value(before, failures), 1);
    assert.equal(value(after, clientCloses) - value(before, clientCloses), 1);
    assert.equal(value(after, refusals) - value(before, refusals), 1);
    assert.ok(value(after, 'realtime_handler_duration_seconds_count{gateway="/echo",event="echo"}') >= 2);
    assert.match(after, /realtime_broker_up\{type="memory",status="ok"\} 1/);
  });

  it('answers GET /health with status ok and the broker', async () => {
    const response = await fetch(`${base}/health`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as { status: string; broker: { type: string } };
    assert.equal(body.status, 'ok');
    assert.equal(body.broker.type, 'memory');
  });

  it('serves a request that asks to upgrade to another protocol (HTTP/2 clients send Upgrade: h2c) as the HTTP request it also is', async () => {
    const answer = (method: string, path: string, body?: string): Promise<{ status: number; text: string }> =>
      new Promise((resolve, reject) => {
        const headers = {
          connection: 'Upgrade, HTTP2-Settings',
          upgrade: 'h2c',
          'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        };
        const sent = httpRequest(`${base}${path}`, { method, headers });
        sent.on('response', (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
        });
        sent.on('upgrade', (response, socket) => {
          socket.destroy();
          reject(new Error(`upgraded: ${response.statusCode}`));
        });
        sent.on('error', reject);
        sent.end(body);
      });
    const health = await answer('GET', '/health');
    assert.equal(health.status, 200);
    assert.equal((JSON.parse(health.text) as { status: string }).status, 'ok');
    // Node has not read the body of such a request: refused, not served without it.
    const withBody = await answer('POST', '/auth/token', JSON.stringify({ username: 'alice' }));
    assert.equal(withBody.status, 400);
    assert.match(withBody.text, /a request with a body cannot ask to upgrade to \\"h2c\\"/);
  });
});

describe('sample app shutdown', () => {
  it('closes 200 clients with 1001 (none 1006) and exits 0 on SIGTERM, before its shutdown deadline', async () => {
    // An app process of its own: SIGTERM ends it, and no other test shares it.
    const app = await startSampleApp({ JWT_SECRET: SECRET });
    try {
      const base = app.wsUrl.replace(/^ws:/, 'http:').replace(/\/echo$/, '');
      const wsBase = app.wsUrl.replace(/\/echo$/, '');
      // 10 users with 20 connections each: the default per-user limit is 20.
      const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => demoToken(base, `drain${i}`)));
      const clients = await Promise.all(
        Array.from({ length: 200 }, (_, i) => RealtimeTestClient.connect(wsBase, '/echo', { token: tokens[i % 10] })),
      );
      const exited = once(app.child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      const started = Date.now();
      app.child.kill('SIGTERM');
      const closes = await Promise.all(clients.map((client) => within(client.closed(), 'the drain')));
      assert.deepEqual([...new Set(closes.map((close) => close.code))], [1001]);
      const [code] = await exited;
      assert.equal(code, 0, app.output());
      // Drained, not cut at the deadline (the sample app keeps the default): the bound is the claim.
      const elapsed = Date.now() - started;
      const deadline = DEFAULTS.shutdown.timeoutMs;
      assert.ok(elapsed < deadline, `exit took ${elapsed} ms: the shutdown ran into its ${deadline} ms deadline`);
    } finally {
      if (app.child.exitCode === null && app.child.signalCode === null) {
        app.child.kill('SIGKILL');
      }
    }
  });
});

describe('the Nest CLI in this repository', () => {
  it('`nest start` builds the sample app and serves it', async () => {
    // It builds into dist/: a copy of the project, so the build never touches the dist/ these tests run from.
    const copy = copyProject();
    const cli = join(copy.dir, 'node_modules', '@nestjs', 'cli', 'bin', 'nest.js');
    try {
      const app = await startSampleApp(
        { JWT_SECRET: 'nest-start-test-secret-0123456789abcdef' },
        { args: [cli, 'start'], cwd: copy.dir, readyWithinMs: 60_000 },
      );
      try {
        const base = app.wsUrl.replace(/^ws/, 'http').replace(/\/echo$/, '');
        const health = await fetch(`${base}/health`);
        assert.equal(health.status, 200);
        const client = await RealtimeTestClient.connect(app.wsUrl.replace(/\/echo$/, ''), '/echo', {
          token: await demoToken(base, 'alice'),
        });
        assert.deepEqual(await client.request('echo', { message: 'hi' }), { message: 'Echo: hi' });
        client.close();
      } finally {
        // The CLI exits at SIGTERM without passing it on: the app, in its process group, gets it too.
        await stopGroup(app.child);
      }
    } finally {
      copy.remove();
    }
  });
});
