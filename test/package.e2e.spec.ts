import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { demoToken, ROOT, startSampleApp } from './support/sample-app.js';
import { until } from './support/until.js';
import { TestClient } from './support/ws-client.js';

/**
 * The package as users get it: `npm pack`, installed into throw-away projects, used there
 * the way a user would. The installs take what they need from npm's cache (the project's
 * own install filled it), so they work without a network after `npm ci`.
 */
describe('the packed package in throw-away consumer projects', () => {
  const work = mkdtempSync(join(tmpdir(), 'realtime-package-'));
  let tarball = '';

  before(() => {
    // dist/ is the build these tests run from: packed as is (no prepack rebuild under running tests).
    const name = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    tarball = join(work, name.split('\n').pop()!);
  });

  after(() => rmSync(work, { recursive: true, force: true }));

  /** A consumer project with `dependencies` installed next to the tarball; returns its directory. */
  function consumer(name: string, dependencies: string[]): string {
    const dir = join(work, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball, ...dependencies], {
      cwd: dir,
      stdio: 'pipe',
    });
    return dir;
  }

  /**
   * The version of `name` this repository installed (in `modules`: its own, or the NestJS 11
   * workspace's), so that the consumer's install finds it in the cache.
   */
  function pinned(name: string, modules = join(ROOT, 'node_modules')): string {
    const version = (JSON.parse(readFileSync(join(modules, name, 'package.json'), 'utf8')) as { version: string }).version;
    return `${name}@${version}`;
  }

  const nest = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', '@nestjs/websockets', '@nestjs/jwt'];
  const nestPeers = ['ws', 'class-validator', 'class-transformer', 'reflect-metadata', 'rxjs', 'ioredis'];

  /**
   * A Nest application in plain JavaScript serving an echo gateway, loading its modules
   * with `load` (an import or a require): the decorators applied as functions, as
   * TypeScript would emit them.
   */
  const echoApp = (load: (name: string) => string): string => `
      ${load('reflect-metadata')}
      const { Module } = ${load('@nestjs/common')};
      const { NestFactory } = ${load('@nestjs/core')};
      const { MessageBody, SubscribeMessage } = ${load('@nestjs/websockets')};
      const { RealtimeGateway, RealtimeModule } = ${load('nestjs-realtime')};
      class Echo { echo(body) { return { echoed: body }; } }
      Reflect.decorate([SubscribeMessage('echo')], Echo.prototype, 'echo', Object.getOwnPropertyDescriptor(Echo.prototype, 'echo'));
      MessageBody()(Echo.prototype, 'echo', 0);
      const Gateway = Reflect.decorate([RealtimeGateway('/echo', { public: true })], Echo);
      class AppModule {}
      Module({ imports: [RealtimeModule.forRoot({})], providers: [Gateway] })(AppModule);
      (async () => {
        const app = await NestFactory.create(AppModule, { logger: false });
        await app.listen(0, '127.0.0.1');
        console.log(JSON.stringify({ port: app.getHttpServer().address().port }));
        process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
      })();`;

  /** Starts `file` of `dir` and asserts an echo through its gateway. */
  async function assertEchoes(dir: string, file: string): Promise<void> {
    const server = await listening(dir, file);
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${server.port}/echo`);
      assert.deepEqual((await client.request({ event: 'echo', id: 1, data: 'hi' })).data, { echoed: 'hi' }, file);
      client.close();
    } finally {
      server.child.kill('SIGTERM');
    }
  }

  /** Runs `node file` in `dir` and resolves with what it printed once it exits 0. */
  function run(dir: string, file: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`node ${file} exited with ${code}:\n${output}`))));
    });
  }

  it('ships the library, its sources for the source maps, the README and the license, and nothing else', () => {
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean);
    const tops = new Set(listing.map((path) => path.split('/')[1]));
    assert.deepEqual([...tops].sort(), ['LICENSE', 'README.md', 'dist', 'package.json', 'src']);
    assert.ok(
      listing.every((path) => !path.startsWith('package/dist/') || /^package\/dist\/(src|cjs)\//.test(path)),
      'only the library is built into it: ES modules and the CommonJS build',
    );
    for (const entry of ['index', 'redis', 'client/index', 'client/bundle', 'testing/index']) {
      assert.ok(listing.includes(`package/dist/src/${entry}.js`) && listing.includes(`package/dist/src/${entry}.d.ts`), entry);
    }
    for (const entry of ['index', 'redis', 'client/index', 'testing/index']) {
      assert.ok(listing.includes(`package/dist/cjs/${entry}.js`) && listing.includes(`package/dist/cjs/${entry}.d.ts`), `cjs ${entry}`);
    }
    assert.ok(listing.includes('package/dist/cjs/package.json'), 'dist/cjs marks its files CommonJS');
  });

  it("a client-only project gets no @nestjs package, and echoes through the client with import, with require and through the browsers' bundle", async () => {
    const dir = consumer('client-only', [pinned('ws')]);
    assert.equal(
      existsSync(join(dir, 'node_modules', '@nestjs')),
      false,
      `installed: ${readdirSync(join(dir, 'node_modules')).join(', ')}`,
    );
    const app = await startSampleApp({ JWT_SECRET: 'package-test-secret-0123456789abcdef' });
    try {
      const base = app.wsUrl.replace(/^ws/, 'http').replace(/\/echo$/, '');
      const env = { URL: app.wsUrl, TOKEN: await demoToken(base, 'alice') };
      const body = `
        const client = new RealtimeClient(process.env.URL, { WebSocket, token: () => process.env.TOKEN, pingIntervalMs: false });
        const reply = await client.request('echo', { message: 'packed' });
        console.log(reply.message);
        client.disconnect();`;
      writeFileSync(
        join(dir, 'echo.mjs'),
        `import { RealtimeClient } from 'nestjs-realtime/client';\nimport WebSocket from 'ws';\n${body}`,
      );
      writeFileSync(
        join(dir, 'echo.cjs'),
        `const { RealtimeClient } = require('nestjs-realtime/client');\nconst WebSocket = require('ws');\n(async () => {${body}})();`,
      );
      // The browsers' bundle: one module that imports nothing.
      const bundle = readFileSync(join(dir, 'node_modules', 'nestjs-realtime', 'dist', 'src', 'client', 'bundle.js'), 'utf8');
      assert.doesNotMatch(bundle, /\bimport\s*[\s{*"'(]|\bfrom\s*["']/);
      writeFileSync(
        join(dir, 'echo.bundle.mjs'),
        `import { RealtimeClient } from 'nestjs-realtime/client/bundle';\nimport WebSocket from 'ws';\n${body}`,
      );
      assert.equal((await run(dir, 'echo.mjs', env)).trim(), 'Echo: packed');
      assert.equal((await run(dir, 'echo.cjs', env)).trim(), 'Echo: packed');
      assert.equal((await run(dir, 'echo.bundle.mjs', env)).trim(), 'Echo: packed');
      // import gets the ES modules, require() the CommonJS build.
      writeFileSync(join(dir, 'which.cjs'), "console.log(require.resolve('nestjs-realtime/client'))");
      writeFileSync(join(dir, 'which.mjs'), "console.log(import.meta.resolve('nestjs-realtime/client'))");
      assert.match((await run(dir, 'which.cjs')).trim(), /nestjs-realtime\/dist\/cjs\/client\/index\.js$/);
      assert.match((await run(dir, 'which.mjs')).trim(), /nestjs-realtime\/dist\/src\/client\/index\.js$/);
    } finally {
      app.child.kill('SIGTERM');
    }
  });

  it('a NestJS 12 application loads every entry point and serves an echo gateway, with import (ESM) and with require (CommonJS)', async () => {
    const dir = consumer(
      'nest-12',
      [...nest, ...nestPeers].map((name) => pinned(name)),
    );
    // Every entry point loads both ways.
    const entries = "['nestjs-realtime', 'nestjs-realtime/redis', 'nestjs-realtime/client', 'nestjs-realtime/testing']";
    const names = '[m.RealtimeModule, m.RedisBroker, m.RealtimeClient, m.RealtimeTestClient].filter(Boolean).length';
    writeFileSync(join(dir, 'entries.cjs'), `let m = {}; for (const e of ${entries}) m = { ...m, ...require(e) }; console.log(${names});`);
    writeFileSync(
      join(dir, 'entries.mjs'),
      `let m = {}; for (const e of ${entries}) m = { ...m, ...(await import(e)) }; console.log(${names});`,
    );
    assert.equal((await run(dir, 'entries.cjs')).trim(), '4');
    assert.equal((await run(dir, 'entries.mjs')).trim(), '4');
    writeFileSync(
      join(dir, 'app.mjs'),
      echoApp((name) => `await import('${name}')`),
    );
    writeFileSync(
      join(dir, 'app.cjs'),
      echoApp((name) => `require('${name}')`),
    );
    await assertEchoes(dir, 'app.mjs');
    await assertEchoes(dir, 'app.cjs');
  });

  it('a NestJS 11 application in CommonJS TypeScript compiles against the package, requires it, echoes, and gets the disconnect reason', async () => {
    const nest11 = join(ROOT, 'test', 'nest11', 'node_modules');
    const dir = consumer('nest-11', [
      ...nest.map((name) => pinned(name, nest11)),
      ...[...nestPeers, '@types/ws', '@types/node'].map((name) => pinned(name)),
    ]);
    const core = JSON.parse(readFileSync(join(dir, 'node_modules', '@nestjs', 'core', 'package.json'), 'utf8')) as { version: string };
    assert.match(core.version, /^11\./);
    // The CommonJS settings of NestJS 11's starter: the package's types are found without `exports`.
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'commonjs',
          moduleResolution: 'node10',
          ignoreDeprecations: '6.0',
          target: 'ES2022',
          experimentalDecorators: true,
          emitDecoratorMetadata: true,
          strict: true,
          skipLibCheck: true,
          types: ['node'],
          rootDir: 'src',
          outDir: 'dist',
        },
      }),
    );
    mkdirSync(join(dir, 'src'));
    writeFileSync(
      join(dir, 'src', 'main.ts'),
      `import 'reflect-metadata';
      import { Module } from '@nestjs/common';
      import { NestFactory } from '@nestjs/core';
      import { MessageBody, SubscribeMessage } from '@nestjs/websockets';
      import { type DisconnectReason, type OnRealtimeDisconnect, RealtimeGateway, RealtimeModule } from 'nestjs-realtime';
      import type { RealtimeClient } from 'nestjs-realtime/client';
      import type { RealtimeTestClient } from 'nestjs-realtime/testing';
      import type { RedisBroker } from 'nestjs-realtime/redis';

      @RealtimeGateway('/echo', { public: true })
      class Echo implements OnRealtimeDisconnect<object> {
        @SubscribeMessage('echo')
        echo(@MessageBody() body: string): { echoed: string } {
          return { echoed: body };
        }
        handleDisconnect(_client: object, reason: DisconnectReason): void {
          console.log(JSON.stringify({ disconnect: reason.cause, code: reason.code }));
        }
      }

      @Module({ imports: [RealtimeModule.forRoot({})], providers: [Echo] })
      class AppModule {}

      export type Entries = [RealtimeClient, RealtimeTestClient, RedisBroker];

      void (async () => {
        const app = await NestFactory.create(AppModule, { logger: false });
        await app.listen(0, '127.0.0.1');
        console.log(JSON.stringify({ resolved: require.resolve('nestjs-realtime') }));
        console.log(JSON.stringify({ port: app.getHttpServer().address().port }));
        process.once('SIGTERM', () => app.close().then(() => process.exit(0)));
      })();
      `,
    );
    const tsc = (...args: string[]): void => {
      try {
        execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), ...args], { cwd: dir, encoding: 'utf8' });
      } catch (error) {
        throw new Error(`tsc ${args.join(' ')} failed:\n${(error as { stdout?: string }).stdout ?? String(error)}`, { cause: error });
      }
    };
    tsc('-p', dir);
    // "module": "node16" sees the package's `require` condition: CommonJS types, no TS1479.
    tsc('-p', dir, '--module', 'node16', '--moduleResolution', 'node16', '--noEmit');
    assert.match(readFileSync(join(dir, 'dist', 'main.js'), 'utf8'), /require\("nestjs-realtime"\)/);
    const server = await listening(dir, 'dist/main.js');
    assert.match(server.output(), /"resolved":"[^"]*nestjs-realtime\/dist\/cjs\/index\.js"/, 'require() gets the CommonJS build');
    try {
      const client = await TestClient.connect(`ws://127.0.0.1:${server.port}/echo`);
      assert.deepEqual((await client.request({ event: 'echo', id: 1, data: 'hi' })).data, { echoed: 'hi' });
      client.close();
      await until(() => server.output().includes('{"disconnect":"client","code":1005}'), 'the reason in handleDisconnect');
    } finally {
      server.child.kill('SIGTERM');
    }
  });

  /** Starts `node file` in `dir` and waits for the `{"port"}` line it prints once listening. */
  async function listening(dir: string, file: string): Promise<{ child: ChildProcess; port: number; output: () => string }> {
    const child = spawn(process.execPath, [file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const port = /\{"port":(\d+)\}/.exec(output)?.[1];
      if (port) {
        return { child, port: Number(port), output: () => output };
      }
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`node ${file} did not listen:\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});
