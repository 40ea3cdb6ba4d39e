/** Module resolution hooks of `nest11.ts`: `@nestjs/*` is looked up from test/nest11. */
import type { ResolveHook } from 'node:module';

const nest11 = new URL('../../../test/nest11/package.json', import.meta.url).href;

/** Resolves `@nestjs/*` as if imported from test/nest11, anything else as usual. */
export const resolve: ResolveHook = (specifier, context, next) =>
  specifier.startsWith('@nestjs/') ? next(specifier, { ...context, parentURL: nest11 }) : next(specifier, context);
