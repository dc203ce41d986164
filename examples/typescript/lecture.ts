// The lecture's function through the service with the TypeScript client: its gradient, the
// forward-mode table, a Jacobian, a finite-difference check, a large input sent as base64, and a
// refused request. Run it against a server:
//
//     npm start &                                   # or any Adjoint URL in $ADJOINT_URL
//     npx tsx examples/typescript/lecture.ts

import { AdjointError, createAdjoint } from '@adjoint/client';

const adjoint = createAdjoint({ baseUrl: process.env.ADJOINT_URL ?? 'http://127.0.0.1:3000', apiKey: process.env.ADJOINT_API_KEY });
const f = 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))';

const { value, gradient } = await adjoint.grad({ expr: f, at: { x: 0.7 } });
console.log(`f(0.7) = ${value.item().toFixed(6)}, f'(0.7) = ${gradient.x?.item().toFixed(6)}`);

// The lecture's forward-mode table, one row per step as written.
const table = await adjoint.trace({ expr: 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5', at: { x: 0.7 }, mode: 'forward' });
console.log(`${'step'.padStart(5)} ${'op'.padStart(6)} ${'value'.padStart(10)} ${'tangent'.padStart(10)}`);
for (const step of table.steps) {
  console.log(`${step.id.padStart(5)} ${step.op.padStart(6)} ${step.value!.item().toFixed(4).padStart(10)} ${(step.tangent?.item() ?? 0).toFixed(4).padStart(10)}`);
}

// A Jacobian (forward or reverse mode, chosen by shape) and the gradient checked numerically.
const { jacobian } = await adjoint.jacobian({ expr: 'tanh(W @ x)', at: { W: [[1, 2], [3, 4]], x: [0.1, 0.2] }, wrt: ['x'] });
console.log('d tanh(Wx)/dx =', JSON.stringify(jacobian.x?.toNested(), (_, v: unknown) => (typeof v === 'number' ? Number(v.toFixed(4)) : v)));
const check = await adjoint.check({ expr: f, at: { x: 0.7 } });
console.log('finite differences agree:', check.ok);

// A 100,000-element input travels as base64 float64 (from 4096 elements), and so does its gradient.
const x = Float64Array.from({ length: 100_000 }, (_, i) => i / 100_000);
const big = await adjoint.grad({ expr: 'sum(x^2) / 2', at: { x }, encoding: 'base64' });
console.log(`gradient of sum(x^2)/2 over ${big.gradient.x?.size} elements is x: ${big.gradient.x?.data.every((g, i) => g === x[i])}`);

try {
  await adjoint.grad({ expr: 'sin(x', at: { x: 1 } });
} catch (error) {
  if (!(error instanceof AdjointError)) throw error;
  console.log(`refused: ${error.code} at line ${error.line}, column ${error.column}: ${error.detail}`);
}
