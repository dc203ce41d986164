import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', '**/node_modules/**'],
    // Tests and hooks start servers, worker threads and child processes: seconds each on a busy
    // 2-core machine (at a load average of 23, tests that start a worker took 23–29 s, processes
    // past 30 s, a hook past vitest's default 10 s). Still finite, so a hang fails.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
