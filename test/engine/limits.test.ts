// The default limits let real work through: the lecture's question 2 at N = 1000.

import { describe, expect, it } from 'vitest';
import { Engine } from '../../src/engine/engine.js';
import { planRequest } from '../../src/service/request.js';
import { DEFAULT_LIMITS } from '../../src/engine/prepare.js';
import { Random } from '../../src/engine/random.js';
import { defaultConfig, limitsOf } from '../../src/service/config.js';

describe('default limits', () => {
  it('are the same for the engine alone and for the service', () => {
    expect(limitsOf(defaultConfig())).toEqual(DEFAULT_LIMITS);
  });

  it("admit the lecture's question 2 at N = 1000 (a million-element kernel, billions of flops)", () => {
    const random = new Random(3);
    const N = 1000;
    const request = {
      expr: 'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\nK1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2) @ y',
      at: { X: Array.from({ length: N }, () => [random.normal(), random.normal()]), l: [0.9, 1.4], y: Array.from({ length: N }, () => random.normal()) },
    };
    const job = planRequest(new Engine(DEFAULT_LIMITS), 'grad', request);
    expect(job.flops).toBeGreaterThan(1e9);
    expect(job.flops).toBeLessThan(DEFAULT_LIMITS.maxFlops);
    // ... and a request ten times larger in N is refused before it allocates anything.
    const big = { ...request, at: { ...request.at, X: Array.from({ length: 10 * N }, () => [0, 0]), y: Array(10 * N).fill(0) } };
    expect(() => planRequest(new Engine(DEFAULT_LIMITS), 'grad', big)).toThrow(/limit/);
  });
});
