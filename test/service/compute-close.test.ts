// Closing the compute pool right after start-up waits for the workers to finish loading (their
// modules, the native kernel library) before stopping them: a thread terminated mid-load can abort
// the process on Node 20. Each worker says it has loaded on the cache channel.

import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../src/engine/prepare.js';
import { Compute } from '../../src/service/compute.js';

const options = { limits: DEFAULT_LIMITS, cacheSize: 10, inlineFlops: 1, workers: 2, maxQueue: 10, timeoutMs: 30_000 };

describe('Compute.close', () => {
  it('right after start-up, waits for the loading workers, then stops them', async () => {
    const compute = new Compute(options);
    const threads = (compute as unknown as { pool: { threads: unknown[] } }).pool.threads.length;
    const started = performance.now();
    await compute.close();
    const waited = performance.now() - started;
    const ready = (compute as unknown as { readyWorkers: Set<number> }).readyWorkers.size;
    expect(threads).toBeGreaterThan(0);
    // Every worker's ready message arrived before it was stopped (observed, not timed) or, on a
    // machine so loaded that loading a worker takes longer than that, closing sat out its whole
    // 5 s limit: either way it did not stop a loading worker early.
    expect(ready === threads || waited >= 4_900, `${ready} of ${threads} workers ready after ${waited.toFixed(0)} ms`).toBe(true);
  });

  it('after work, closes at once', async () => {
    const compute = new Compute(options);
    const answer = await compute.respondNow('grad', { expr: 'sum(x^2)', at: { x: Array.from({ length: 50_000 }, (_, i) => i / 1e4) } });
    expect(answer).toBeDefined();
    const started = performance.now();
    await compute.close();
    // Did not hang: well below the pool's 60 s idle timeout, generous on a loaded machine.
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});
