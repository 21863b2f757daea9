import { defineConfig } from 'vitest/config';

/** Unit and integration tests: in-process, real SQLite files in temp dirs. End-to-end: vitest.e2e.config.ts. */
export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/services/global-setup.ts'],
  },
});
