// The client SDK as one ES module for browsers (dist/src/client/bundle.js, minified, with
// its source map), from the ES modules tsc built. esbuild-wasm: no native binary to install.
import { build } from 'esbuild-wasm';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, '..', 'dist', 'src', 'client');
await build({
  entryPoints: [join(dir, 'index.js')],
  outfile: join(dir, 'bundle.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
});
// Its types are the client's.
writeFileSync(join(dir, 'bundle.d.ts'), "export * from './index.js';\n");
