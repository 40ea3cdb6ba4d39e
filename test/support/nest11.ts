/**
 * Loaded with `node --import` to run the suites on NestJS 11: every `@nestjs/*` import
 * resolves from test/nest11, an npm workspace holding NestJS 11, instead of the project's
 * NestJS 12. Everything else (ws, class-validator, rxjs…) is the project's own.
 *
 * It imports nothing of the suite's own: a module loaded before the hooks would keep what
 * it resolved (nest-version.ts would report NestJS 12).
 */
import { readFileSync } from 'node:fs';
import { register } from 'node:module';

register('./nest11-hooks.js', import.meta.url);

// Without the workspace's install the lookup would fall through to NestJS 12 unnoticed.
const core = new URL(import.meta.resolve('@nestjs/core/package.json'));
const { version } = JSON.parse(readFileSync(core, 'utf8')) as { version: string };
if (!version.startsWith('11.')) {
  throw new Error(`test/support/nest11.ts resolved NestJS ${version}, not 11: run "npm ci" (it installs the test/nest11 workspace)`);
}
