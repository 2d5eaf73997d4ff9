// ESLint with typescript-eslint's type-aware rules (npm run lint). Formatting is Prettier's job (.prettierrc.json);
// unused exports are knip's (knip.json).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['lib/**', 'node_modules/**', '.cache/**', '.node-compile-cache/**', 'dist/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A promise nobody awaits loses its error. node:test's describe/it/test return promises the runner awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true, caughtErrors: 'none' },
      ],
      // Async implementations of async interfaces (stores, readers, fakes) need no await of their own.
      '@typescript-eslint/require-await': 'off',
      // Object-literal implementations (supervisors, loggers) do not use `this`; passing their methods is safe.
      '@typescript-eslint/unbound-method': 'off',
    },
  },
);
