// ESLint (flat config): typescript-eslint's recommended rules on the library, its tests,
// the sample app and the benchmarks. Formatting is Prettier's job, not ESLint's.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'reports/', '.stryker-tmp/', 'sample-app/public/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Arguments deliberately unused (a listener's signature) start with an underscore.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // `ok ? resolve() : reject()` and `waiter && waiter()` as statements are fine.
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true, allowShortCircuit: true }],
      // Classes and handler methods read through reflect-metadata (DTO types, gateway
      // classes, decorated methods) are `Function`s in Nest's own API too.
      '@typescript-eslint/no-unsafe-function-type': 'off',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    // Tests and benchmarks reach into internals on purpose (a socket's `_socket`, say).
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
