import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'node:https';
import { startSampleApp } from './support/sample-app.js';
import { RealtimeTestClient } from '../src/testing/index.js';
import { selfSignedCertificate } from './support/certificate.js';

function httpsGet(url: string, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { ca }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('TLS: the sample app on https and wss (TLS_CERT / TLS_KEY)', () => {
  let directory: string;
  let app: Awaited<ReturnType<typeof startSampleApp>>;
  let ca: Buffer;
  /** `wss://127.0.0.1:<port>`, the base URL of the app's gateways. */
  let wssBase: string;

  before(async () => {
    directory = mkdtempSync(join(tmpdir(), 'realtime-tls-'));
    const files = selfSignedCertificate(directory);
    ca = readFileSync(files.cert);
    app = await startSampleApp({ TLS_CERT: files.cert, TLS_KEY: files.key, JWT_SECRET: 'tls-test-secret-0123456789abcdef0123456' });
    wssBase = app.wsUrl.replace(/\/echo$/, '');
  });

  after(() => {
    app?.child.kill('SIGKILL');
    rmSync(directory, { recursive: true, force: true });
  });

  it('logs a wss:// URL and echoes over wss with a client that trusts the certificate', async () => {
    assert.match(app.wsUrl, /^wss:\/\/127\.0\.0\.1:\d+\/echo$/);
    const base = app.wsUrl.replace(/^wss:/, 'https:').replace(/\/echo$/, '');
    const health = await httpsGet(`${base}/health`, ca);
    assert.equal(health.status, 200);
    const login = await new Promise<string>((resolve, reject) => {
      const req = request(`${base}/auth/token`, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve((JSON.parse(body) as { access_token: string }).access_token));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ username: 'tls' }));
    });
    const client = await RealtimeTestClient.connect(wssBase, '/echo', { ca, token: login });
    try {
      assert.deepEqual(await client.request('echo', { message: 'over TLS' }), { message: 'Echo: over TLS' });
    } finally {
      client.close();
    }
  });

  it('refuses a client that does not trust the certificate', async () => {
    await assert.rejects(RealtimeTestClient.connect(wssBase, '/echo'), /self[- ]signed|certificate/i);
  });
});
