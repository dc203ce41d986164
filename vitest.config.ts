import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['dist/**', '**/node_modules/**'],
    // Tests and hooks start servers, worker threads and child processes, and some compute for
    // seconds: at a load average of 20 on 2 cores they took 6–7 times as long as alone (10 s
    // became 60 s; a hook passed vitest's default 10 s). Still finite, so a hang fails.
    testTimeout: 120_000,
    hookTimeout: 60_000,
  },
});
