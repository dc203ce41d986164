// The lecture's question 2 at size N (default 1000) with the default limits: the estimated work and
// the time of one value and one value+gradient. `npx tsx bench/question2.ts [N]`.

import { Engine } from '../src/engine/engine.js';
import { planRequest } from '../src/service/request.js';
import { DEFAULT_LIMITS } from '../src/engine/prepare.js';
import { Random } from '../src/engine/random.js';

const N = Number(process.argv[2] ?? 1000);
const random = new Random(1);
const at = {
  X: Array.from({ length: N }, () => [random.normal(), random.normal()]),
  l: [0.9, 1.4],
  y: Array.from({ length: N }, () => random.normal()),
};
const expr =
  'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\n' +
  'K1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2) @ y';
const engine = new Engine(DEFAULT_LIMITS);
for (const op of ['eval', 'grad'] as const) {
  const job = planRequest(engine, op, { expr, at });
  const started = performance.now();
  job.run();
  console.log(`${op === 'eval' ? 'value' : 'value+gradient'}: ${(performance.now() - started).toFixed(0)} ms, estimated ${job.flops.toExponential(2)} operations (MAX_FLOPS ${DEFAULT_LIMITS.maxFlops.toExponential(0)})`);
}
