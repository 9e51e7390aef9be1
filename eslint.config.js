import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        clearTimeout: 'readonly'
      }
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Validating control characters is the point of several expressions here.
      'no-control-regex': 'off'
    }
  },
  {
    // Local processes start in one place, with a timeout, a cancel, bounded output and a chosen
    // environment; git runs through io/git.ts on top of it.
    files: ['src/**/*.ts'],
    ignores: ['src/io/process.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['node:child_process', 'child_process'].map(name => ({
            name,
            message: 'Start processes with runProcess (src/io/process.ts); git with runGit (src/io/git.ts).'
          }))
        }
      ]
    }
  },
  {
    // CommonJS entry points (they make ncc emit a CommonJS bundle) and the sample app.
    files: ['**/*.cjs', 'examples/app/**/*.js'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { require: 'readonly', module: 'writable', __dirname: 'readonly' }
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' }
  }
);
