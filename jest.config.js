/** Jest runs the TypeScript sources as ESM (the @actions packages are ESM-only). */
export default {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': [
      'ts-jest',
      { useESM: true, tsconfig: 'tsconfig.test.json', diagnostics: { ignoreCodes: [151001] } }
    ]
  },
  testTimeout: 30000,
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.cjs'],
  // Integration suites share one systemd host and a few sshd servers; run files one at a time
  // so two suites never fight over the same host.
  maxWorkers: 1,
  globalSetup: '<rootDir>/__tests__/harness/global-setup.ts',
  globalTeardown: '<rootDir>/__tests__/harness/global-teardown.ts'
};
