import { readFileSync } from 'node:fs';

/** The major version of the NestJS the suite runs on: 12, or 11 under test/support/nest11.ts. */
export const nestMajor = Number(
  (JSON.parse(readFileSync(new URL(import.meta.resolve('@nestjs/core/package.json')), 'utf8')) as { version: string }).version.split(
    '.',
  )[0],
);
