// Closing the compute pool right after start-up waits for the workers to finish loading (their
// modules, the native kernel library) before stopping them: a thread terminated mid-load can abort
// the process on Node 20. Each worker says it has loaded on the cache channel.

import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/engine/prepare.js';
import { Compute } from '../../src/service/compute.js';

const options = { limits: DEFAULT_LIMITS, cacheSize: 10, inlineFlops: 1, workers: 2, maxQueue: 10, timeoutMs: 30_000 };

describe('Compute.close', () => {
  it('right after start-up, waits for the loading workers, then stops them (well within the wait limit)', async () => {
    const compute = new Compute(options);
    const started = performance.now();
    await compute.close();
    // The workers' ready messages arrived: closing did not sit out its 5 s limit.
    expect(performance.now() - started).toBeLessThan(4_500);
  });

  it('after work, closes at once', async () => {
    const compute = new Compute(options);
    const answer = await compute.respondNow('grad', { expr: 'sum(x^2)', at: { x: Array.from({ length: 50_000 }, (_, i) => i / 1e4) } });
    expect(answer).toBeDefined();
    const started = performance.now();
    await compute.close();
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});
