import { Injectable, Module } from '@nestjs/common';
import assert from 'node:assert/strict';
import { resolveOptions, toOriginSet } from '../src/options/resolve-options.js';
import { afterEach, describe, it } from 'node:test';
import { RealtimeModule, RealtimeWsAdapter } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { RealtimeTestClient } from '../src/testing/index.js';
import { within } from './support/until.js';
import { OtherGateway, TestGateway, LifecycleLog } from './fixtures/test-gateways.js';

@Injectable()
class LimitsConfig {
  readonly maxPayload = 1024;
}

@Module({ providers: [LimitsConfig], exports: [LimitsConfig] })
class LimitsConfigModule {}

describe('RealtimeModule', () => {
  let running: RunningApp | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('forRootAsync takes options from an injected provider at runtime', async () => {
    running = await startApp({
      imports: [
        RealtimeModule.forRootAsync({
          imports: [LimitsConfigModule],
          inject: [LimitsConfig],
          useFactory: (config: LimitsConfig) => ({ limits: { maxPayload: config.maxPayload } }),
        }),
      ],
      providers: [LifecycleLog, TestGateway],
    });
    const client = await RealtimeTestClient.connect(running.app, '/test');
    assert.equal(await client.request('echo', 'x'.repeat(900)), 'x'.repeat(900));
    client.send('echo', 'x'.repeat(2000));
    assert.equal((await within(client.closed(), 'the close')).code, 1009);
  });

  it('installs its adapter without a line in main.ts, and keeps one set by the app', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [OtherGateway] });
    const client = await RealtimeTestClient.connect(running.app, '/other');
    assert.equal(await client.request('whoami'), 'other');
    client.close();
    await running.close();

    // An adapter set explicitly (here with other limits) replaces the module's.
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [LifecycleLog, TestGateway] }, (app) =>
      app.useWebSocketAdapter(new RealtimeWsAdapter(app, { limits: { maxPayload: 100 } })),
    );
    const limited = await RealtimeTestClient.connect(running.app, '/test');
    limited.send('echo', 'x'.repeat(200));
    assert.equal((await within(limited.closed(), 'the close')).code, 1009);
  });

  it('refuses invalid options with a clear error at startup', async () => {
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ limits: { maxPayload: -1 } })], providers: [OtherGateway] }),
      /limits\.maxPayload must be a positive integer, got -1/,
    );
    // Options given where they used to be are named, with where they are now.
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ shutdownTimeoutMs: 5000 } as never)], providers: [OtherGateway] }),
      /Realtime option shutdownTimeoutMs is now shutdown\.timeoutMs/,
    );
    // Values of the wrong kind, as a configuration file or the environment gives them, are named too.
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ metrics: 'false' as never })], providers: [OtherGateway] }),
      /Realtime option metrics must be true or false, got "false"/,
    );
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ allowedOrigins: 'https://a.example' as never })], providers: [OtherGateway] }),
      /Realtime allowedOrigins must be an array of origins, got "https:\/\/a\.example"/,
    );
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ broker: 'redis' as never })], providers: [OtherGateway] }),
      /Realtime option broker must be a RealtimeBroker \(a MemoryBroker, a RedisBroker or your own\), got "redis"/,
    );
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ broker: { start: () => Promise.resolve() } as never })], providers: [OtherGateway] }),
      /got an object without publish, history, subscribe, unsubscribe, health, close, addPresence, removePresence, presence/,
    );
    // A class instead of an instance, a Set instead of an array: named as what they are.
    class MyBroker {}
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ broker: MyBroker as never })], providers: [OtherGateway] }),
      /got a function \(MyBroker\): pass an instance \(new MyBroker\(…\)\)/,
    );
    await assert.rejects(
      startApp({
        imports: [RealtimeModule.forRoot({ allowedOrigins: new Set(['https://a.example']) as never })],
        providers: [OtherGateway],
      }),
      /Realtime allowedOrigins must be an array of origins, got a Set/,
    );
  });

  it('resolves every option once, with its default, frozen', () => {
    const resolved = resolveOptions({ limits: { maxPayload: 1000 }, shutdown: { closeCode: 1012 }, heartbeat: { intervalMs: 5000 } });
    assert.equal(resolved.limits.maxPayload, 1000);
    assert.equal(resolved.limits.maxDepth, 32);
    assert.deepEqual(resolved.shutdown, { timeoutMs: 30_000, closeCode: 1012, batchSize: 500 });
    assert.deepEqual(resolved.heartbeat, { intervalMs: 5000, timeoutMs: 10_000 });
    assert.ok(Object.isFrozen(resolved) && Object.isFrozen(resolved.limits) && Object.isFrozen(resolved.shutdown));
    assert.throws(() => resolveOptions({ shutdown: { closeCode: 1000 as never } }), /shutdown\.closeCode must be 1001 or 1012/);
    assert.throws(() => resolveOptions({ heartbeat: { timeoutMs: 0 } }), /heartbeat\.timeoutMs must be a positive integer/);
    assert.equal(resolved.limits.brokerTimeoutMs, 2000);
    assert.throws(() => resolveOptions({ limits: { brokerTimeoutMs: 0 } }), /limits\.brokerTimeoutMs must be a positive integer/);
    // Node fires a longer timer after 1 ms: refused, not a deadline that passes at once.
    for (const options of [
      { limits: { brokerTimeoutMs: 2 ** 31 } },
      { limits: { handshakeTimeoutMs: 2 ** 40 } },
      { shutdown: { timeoutMs: 2 ** 31 } },
      // The heartbeat's sweep runs every quarter of the shorter of its two durations.
      { heartbeat: { intervalMs: 1e10, timeoutMs: 1e10 } },
      { limits: { logThrottle: { lines: 20, intervalMs: 2 ** 31 } } },
    ]) {
      assert.throws(() => resolveOptions(options), /must be at most 2147483647 ms \(about 24\.8 days\), got/);
    }
    assert.equal(resolveOptions({ limits: { closeTimeoutMs: 2 ** 31 - 1 } }).limits.closeTimeoutMs, 2 ** 31 - 1);
    // A frame is walked recursively to its depth: a limit far past any real payload would let one exhaust the stack.
    assert.equal(resolveOptions({ limits: { maxDepth: 1000 } }).limits.maxDepth, 1000);
    assert.throws(() => resolveOptions({ limits: { maxDepth: 100_000 } }), /limits\.maxDepth must be at most 1000, got 100000/);
    // trustProxy from the environment is a string: refused, not read as "no proxy".
    for (const trustProxy of ['true', '1', -1, 1.5]) {
      assert.throws(
        () => resolveOptions({ limits: { trustProxy: trustProxy as never } }),
        /limits\.trustProxy must be true, false or a number of proxies \(an integer >= 0\), got/,
      );
    }
    assert.equal(resolveOptions({ limits: { trustProxy: 2 } }).limits.trustProxy, 2);
    // Allowed origins are kept as browsers send them (lower case, punycode, no default port), or they never match.
    assert.deepEqual(
      [...toOriginSet(['https://App.Example.com:443', 'http://localhost:3000', 'https://bücher.example', 'Capacitor://Localhost'])!],
      ['https://app.example.com', 'http://localhost:3000', 'https://xn--bcher-kva.example', 'capacitor://localhost'],
    );
    assert.throws(() => toOriginSet(['https://exa mple.com']), /allowedOrigins entries must be origins like/);
    assert.throws(() => resolveOptions({ shutdown: 5000 as never }), /Realtime option shutdown must be an object, got 5000/);
    assert.throws(() => resolveOptions({ heartbeat: true as never }), /Realtime option heartbeat must be an object, got true/);
  });
});
