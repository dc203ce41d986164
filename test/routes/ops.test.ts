// GET /ops lists every function of the expression language with its value and derivative rules in words;
// and a prepared function is reused across requests.

import { describe, expect, it } from 'vitest';
import { kernelBackend } from '../../src/engine/tensor/backend/index.js';
import { buildTestApp } from '../helpers.js';

const CONTRACT_FUNCTIONS = `abs sign exp log log1p expm1 sqrt sin cos tan asin acos atan sinh cosh tanh sigmoid relu softplus maximum minimum where
sum mean prod max min logsumexp norm softmax log_softmax matmul dot outer transpose inv solve det logdet cholesky trace diag eye
reshape stack concat squeeze expand_dims add sub mul div pow neg lt le gt ge eq ne`.split(/\s+/);

describe('GET /ops', () => {
  it('lists every function and operator of the contract, with value and derivative rules and the conventions', async () => {
    const app = buildTestApp();
    await app.ready();
    try {
      const res = await app.inject({ method: 'GET', url: '/ops' });
      expect(res.statusCode).toBe(200);
      const { ops, conventions } = res.json() as { ops: { name: string; value: string; derivative: string; operator?: string }[]; conventions: string[] };
      const names = ops.map((o) => o.name);
      for (const f of CONTRACT_FUNCTIONS) expect(names).toContain(f);
      for (const op of ops) {
        expect(op.value.length, op.name).toBeGreaterThan(0);
        expect(op.derivative.length, op.name).toBeGreaterThan(0);
      }
      expect(ops.find((o) => o.name === 'mul')!.derivative).toContain('product rule');
      expect(ops.find((o) => o.name === 'matmul')!.operator).toBe('@');
      expect(conventions.join(' ')).toContain("relu'(0) = 0");
    } finally {
      await app.close();
    }
  });
});

describe('prepared functions', () => {
  it('are prepared once per function and input shapes, and reused', async () => {
    const app = buildTestApp();
    await app.ready();
    try {
      const ask = (x: unknown) => app.inject({ method: 'POST', url: '/grad', payload: { expr: 'sum(sin(x) * x)', at: { x } } });
      for (let i = 0; i < 5; i++) expect((await ask([i, 1, 2])).statusCode).toBe(200);
      expect(app.compute.engine.cachedFunctions).toBe(1);
      await ask([1, 2]);
      expect(app.compute.engine.cachedFunctions).toBe(2);
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/^adjoint_prepared_functions 2$/m);
      expect(metrics).toMatch(/^adjoint_jobs\{where="inline"\} 6$/m);
      expect(metrics).toMatch(/^adjoint_worker_queue 0$/m);
      // The kernels in use, as the engine chose them (BLAS=js in the second run of npm test).
      const kernels = kernelBackend();
      expect(metrics).toContain(`adjoint_kernels_info{backend="${kernels.name}",threads="${kernels.threads}"} 1`);
      if (process.env.BLAS === 'js') expect(kernels.name).toBe('js');
    } finally {
      await app.close();
    }
  });
});
