import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { freePort } from './support/free-port.js';
import { RealtimeTestClient } from '../src/testing/index.js';
import { demoToken, startSampleApp } from './support/sample-app.js';
import { within } from './support/until.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SECRET = 'browser-test-secret-0123456789abcdef0123';

/** Waits until the element's text contains `text`. */
async function textIn(page: Page, selector: string, text: string): Promise<void> {
  await page.waitForFunction(
    ([sel, expected]) => document.querySelector(sel!)?.textContent?.includes(expected!) ?? false,
    [selector, text],
    { timeout: 10_000 },
  );
}

async function state(page: Page, gateway: 'echo' | 'chat', expected: string): Promise<void> {
  await page.waitForFunction(
    ([id, value]) => (document.getElementById(id!) as HTMLElement | null)?.dataset.state === value,
    [`state-${gateway}`, expected],
    { timeout: 15_000 },
  );
}

describe('demo page in headless Chromium (client SDK in a browser)', () => {
  let browser: Browser;

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `Chromium is not installed at ${CHROMIUM}: install Debian's package (\`sudo apt-get install -y chromium\`; ` +
          '.ci/run does this when it is missing) or set CHROMIUM_PATH to a Chromium binary.',
      );
    }
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    });
  });

  after(async () => {
    await browser?.close();
  });

  it('logs in, echoes, sees a chat message from a Node client, and reconnects after a server restart', async () => {
    const port = await freePort();
    // With compression on: the page's pushes over 1 KiB come compressed, which Chromium must read.
    const env = { PORT: String(port), JWT_SECRET: SECRET, COMPRESSION: 'on' };
    let app = await startSampleApp(env);
    const base = `http://127.0.0.1:${port}`;
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const consoleErrors: string[] = [];
    page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
    const node: RealtimeTestClient[] = [];
    try {
      const response = await page.goto(`${base}/`);
      const headers = response!.headers();
      assert.equal(headers['x-powered-by'], undefined);
      assert.match(headers['content-security-policy'] ?? '', /default-src 'self'.*script-src 'self'.*style-src 'self'/);
      assert.doesNotMatch(headers['content-security-policy'] ?? '', /unsafe-inline|upgrade-insecure-requests/);
      assert.equal(headers['x-content-type-options'], 'nosniff');
      // The policy is in force: an injected inline script does not run, and is reported.
      const injected = await page.evaluate(
        () =>
          new Promise<{ ran: boolean; violated: string }>((resolve) => {
            document.addEventListener('securitypolicyviolation', (event) =>
              resolve({ ran: (window as unknown as { injected?: boolean }).injected === true, violated: event.violatedDirective }),
            );
            const script = document.createElement('script');
            script.textContent = 'window.injected = true';
            document.body.append(script);
          }),
      );
      assert.deepEqual(injected, { ran: false, violated: 'script-src-elem' });
      consoleErrors.length = 0; // that violation was the point
      await page.fill('#username', 'carol');
      await page.click('#login');
      await state(page, 'echo', 'open');
      await state(page, 'chat', 'open');

      await page.fill('#echo-input', 'hello from Chromium');
      await page.click('#echo-send');
      await textIn(page, '#echo-output', 'Echo: hello from Chromium');

      await page.fill('#room', 'general');
      await page.click('#join');
      await textIn(page, '#members', 'carol');
      const dave = await RealtimeTestClient.connect(`ws://127.0.0.1:${port}`, '/chat', { token: await demoToken(base, 'dave') });
      node.push(dave);
      assert.deepEqual((await dave.request<{ members: string[] }>('join', { room: 'general' })).members, ['carol', 'dave']);
      await dave.request('send', { room: 'general', text: 'hi from Node' });
      await textIn(page, '#chat-log', '[general] dave: hi from Node');
      // A push of about 2 KB, compressed by the server (Chromium offers permessage-deflate).
      const long = `long: ${'la '.repeat(600)}end`;
      await dave.request('send', { room: 'general', text: long });
      await textIn(page, '#chat-log', `[general] dave: ${long}`);
      // Chromium negotiated it: a WebSocket of the page's own reads the extension and a compressed reply.
      const negotiated = await page.evaluate(
        async ([url, token]) =>
          new Promise<{ extensions: string; reply: string }>((resolve, reject) => {
            const socket = new WebSocket(url!, ['realtime.v1', `bearer.${token}`]);
            socket.onerror = () => reject(new Error('the WebSocket failed'));
            socket.onopen = () => socket.send(JSON.stringify({ event: 'echo', id: 1, data: { message: 'x'.repeat(1000) } }));
            socket.onmessage = (event) => {
              resolve({ extensions: socket.extensions, reply: String(event.data) });
              socket.close();
            };
          }),
        [`ws://127.0.0.1:${port}/echo`, await demoToken(base, 'frank')],
      );
      assert.match(negotiated.extensions, /^permessage-deflate; server_no_context_takeover/);
      assert.deepEqual(JSON.parse(negotiated.reply), { event: 'echo', id: 1, data: { message: `Echo: ${'x'.repeat(1000)}` } });
      // The bundled client speaks MessagePack in Chromium: binary frames both ways, read as ArrayBuffers.
      const packed = await page.evaluate(
        async ([bundle, url, token]) => {
          const sdk = (await import(bundle!)) as typeof import('../src/client/index.js');
          const sockets: WebSocket[] = [];
          const Recording = class extends WebSocket {
            constructor(address: string, protocols?: string | string[]) {
              super(address, protocols);
              sockets.push(this);
            }
          };
          const client = new sdk.RealtimeClient(url!, { token: token!, encoding: 'msgpack', WebSocket: Recording });
          try {
            const reply = await client.request<{ message: string }>('echo', { message: 'packed' });
            return { reply, protocol: sockets[0]!.protocol, binaryType: sockets[0]!.binaryType };
          } finally {
            client.disconnect();
          }
        },
        ['/sdk/client/bundle.js', `ws://127.0.0.1:${port}/echo`, await demoToken(base, 'grace')],
      );
      assert.deepEqual(packed, { reply: { message: 'Echo: packed' }, protocol: 'realtime.v1.msgpack', binaryType: 'arraybuffer' });

      // Restart the server on the same port: the page reconnects and re-joins its room.
      app.child.kill('SIGTERM');
      await within(dave.closed(), "the Node client's close");
      await new Promise((resolve) => app.child.once('exit', resolve));
      await textIn(page, '#state-history', 'chat:reconnecting');
      // Down, it says so plainly, and keeps a bounded history of changes.
      await textIn(page, '#state-chat', 'server unreachable — retrying in');
      await page.waitForFunction(() => (document.getElementById('state-history')?.textContent ?? '').split(' ').length >= 12, undefined, {
        timeout: 15_000,
      });
      assert.equal((await page.textContent('#state-history'))!.split(' ').length, 12);
      assert.doesNotMatch((await page.textContent('#chat-log'))!, /token provider|Failed to fetch/);
      app = await startSampleApp(env);
      await state(page, 'chat', 'open');
      await state(page, 'echo', 'open');
      // The restarted in-memory server lost the room's history (a new epoch): the page says so.
      await textIn(page, '#chat-log', '[general] back: some messages could not be recovered');
      const erin = await RealtimeTestClient.connect(`ws://127.0.0.1:${port}`, '/chat', { token: await demoToken(base, 'erin') });
      node.push(erin);
      const deadline = Date.now() + 10_000;
      // The page re-joins right after it reconnects; wait until it shows in presence.
      for (;;) {
        const { members } = await erin.request<{ members: string[] }>('join', { room: 'general' });
        if (members.includes('carol')) {
          break;
        }
        assert.ok(Date.now() < deadline, 'the page did not re-join its room');
        await erin.request('leave', { room: 'general' });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await erin.request('send', { room: 'general', text: 'welcome back' });
      await textIn(page, '#chat-log', '[general] erin: welcome back');
      await page.fill('#echo-input', 'still here');
      await page.click('#echo-send');
      await textIn(page, '#echo-output', 'Echo: still here');
      assert.deepEqual(pageErrors, []);
      // The demo page itself (its script, stylesheet, modules and WebSockets) breaks no rule.
      assert.deepEqual(
        consoleErrors.filter((text) => /Content Security Policy/i.test(text)),
        [],
      );
    } finally {
      node.forEach((client) => client.close());
      await page.close();
      app.child.kill('SIGKILL');
    }
  });
});
