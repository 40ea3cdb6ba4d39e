import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { SubscribeMessage, WebSocketGateway } from '@nestjs/websockets';
import { RealtimeGateway, RealtimeModule } from '../src/index.js';
import { RealtimeTestClient, signTestToken } from '../src/testing/index.js';
import { startApp, type RunningApp } from './support/app.js';
import { CapturingLogger } from './fixtures/auth-gateways.js';

const SECRET = 'gateway-checks-secret-0123456789abcdef';

/** Nest's own decorator, not the plugin's. */
@WebSocketGateway({ path: '/plain' })
class PlainNestGateway {
  @SubscribeMessage('hello')
  hello(): string {
    return 'hi';
  }
}

@WebSocketGateway({ path: '/rooms', namespace: 'chat' })
class NamespacedGateway {}

/** Public, yet with roles: a client without a token has none to check. */
@RealtimeGateway('/admin', { public: true, roles: ['admin'] })
class PublicWithRolesGateway {}

describe("the adapter's checks of the gateways it serves", () => {
  let running: RunningApp | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('warns at startup about a gateway declared with @WebSocketGateway alone, and still serves it', async () => {
    const logger = new CapturingLogger();
    running = await startApp({ imports: [RealtimeModule.forRoot({ auth: { secret: SECRET } })], providers: [PlainNestGateway] }, (app) =>
      app.useLogger(logger),
    );
    assert.match(logger.text, /warn The gateway at \/plain is not decorated with @RealtimeGateway: .*Decorate it with @RealtimeGateway/);
    // Authenticated like any gateway (not public), and answered.
    const token = await signTestToken(running.app, { sub: 'alice' });
    const client = await RealtimeTestClient.connect(running.app, '/plain', { token });
    assert.equal(await client.request('hello'), 'hi');
    client.close();
  });

  it('refuses at startup a gateway with a namespace, which has no meaning on ws', async () => {
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ auth: { secret: SECRET } })], providers: [NamespacedGateway] }),
      /RealtimeWsAdapter does not support namespaces: give each gateway its own path/,
    );
  });

  it('refuses at startup a public gateway that requires roles, which a client without a token would skip', async () => {
    await assert.rejects(
      startApp({ imports: [RealtimeModule.forRoot({ auth: { secret: SECRET } })], providers: [PublicWithRolesGateway] }),
      /The gateway at \/admin is public and requires roles \(admin\): a client without a token would skip them/,
    );
  });
});
