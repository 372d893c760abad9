import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts', 'azure/src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Network-namespace tests create and delete host-wide state: keep files in one process, one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
