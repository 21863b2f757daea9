import { defineConfig } from 'vitest/config';

/** End-to-end tests: spawn the built `brain` (dist/) as a user would. Run after `npm run build`. */
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    globalSetup: ['test/services/global-setup.ts'],
    fileParallelism: false,
  },
});
