import { Injectable, Module } from '@nestjs/common';
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { RealtimeModule, RealtimeWsAdapter } from '../src/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { TestClient } from './support/ws-client.js';
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
          useFactory: (config: LimitsConfig) => ({ maxPayload: config.maxPayload }),
        }),
      ],
      providers: [LifecycleLog, TestGateway],
    });
    const client = await TestClient.connect(running.wsUrl('/test'));
    assert.equal((await client.request({ event: 'echo', id: 1, data: 'x'.repeat(900) })).id, 1);
    client.send({ event: 'echo', data: 'x'.repeat(2000) });
    assert.equal((await client.waitClosed()).code, 1009);
  });

  it('installs its adapter without a line in main.ts, and keeps one set by the app', async () => {
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [OtherGateway] });
    const client = await TestClient.connect(running.wsUrl('/other'));
    assert.equal((await client.request({ event: 'whoami', id: 1 })).data, 'other');
    client.close();
    await running.close();

    // An adapter set explicitly (here with other limits) replaces the module's.
    running = await startApp({ imports: [RealtimeModule.forRoot({})], providers: [LifecycleLog, TestGateway] }, (app) =>
      app.useWebSocketAdapter(new RealtimeWsAdapter(app, { maxPayload: 100 })),
    );
    const limited = await TestClient.connect(running.wsUrl('/test'));
    limited.send({ event: 'echo', data: 'x'.repeat(200) });
    assert.equal((await limited.waitClosed()).code, 1009);
  });

  it('refuses invalid options with a clear error at startup', async () => {
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ maxPayload: -1 })], providers: [OtherGateway] }),
      /maxPayload must be a positive integer, got -1/,
    );
  });
});
