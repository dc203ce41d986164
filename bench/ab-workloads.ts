// The three workloads of issue 11 (the lecture's f over 1e5 points, a 784-256-256-10 network at
// batch 256, the GP function at N = 1000), engine alone, value+gradient medians, for the source tree
// given (default: this one). For an A/B against an older commit:
//   git worktree add /tmp/old <commit> && ln -s "$PWD/node_modules" /tmp/old/node_modules
//   npx tsx bench/ab-workloads.ts /tmp/old; BLAS=js npx tsx bench/ab-workloads.ts
// and alternate the two. CASES=points,network,gp1000 picks workloads.

const root = process.argv[2] ?? new URL('..', import.meta.url).pathname;
const { Engine } = await import(`${root}/src/engine/engine.ts`);
const { Random } = await import(`${root}/src/engine/random.ts`);
const { readPoint } = await import(`${root}/src/service/request.ts`);
const diff = await import(`${root}/src/engine/ad/differentiate.ts`);
const random = new Random(7);
const matrix = (r: number, c: number, s = 1) => Array.from({ length: r }, () => Array.from({ length: c }, () => s * random.normal()));
const vector = (n: number, s = 1) => Array.from({ length: n }, () => s * random.normal());
const N = 1000;
const cases = [
  { name: 'points', expr: 'sum(sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2)))', at: { x: vector(100000, 0.5) } },
  { name: 'network', expr: 'H1 = tanh(X @ W1 + b1)\nH2 = tanh(H1 @ W2 + b2)\nP = H2 @ W3 + b3\nsum((P - Y)^2)', at: { X: matrix(256, 784), W1: matrix(784, 256, 0.03), b1: vector(256, 0.1), W2: matrix(256, 256, 0.06), b2: vector(256, 0.1), W3: matrix(256, 10, 0.06), b3: vector(10, 0.1), Y: matrix(256, 10) }, wrt: ['W1', 'b1', 'W2', 'b2', 'W3', 'b3'] },
  { name: 'gp1000', expr: 'D1 = (X[:, None, 0] - X[None, :, 0])^2\nD2 = (X[:, None, 1] - X[None, :, 1])^2\nK1 = exp(-D1 / (2 * l[0]^2))\nK2 = exp(-D2 / (2 * l[1]^2))\ny.T @ inv(K1 + K2 + 0.01 * eye(' + N + ')) @ y', at: { X: matrix(N, 2), l: [0.9, 1.4], y: vector(N) } },
];
const engine = new Engine();
const out: Record<string, number> = {};
for (const c of cases.filter((c) => !process.env.CASES || process.env.CASES.split(',').includes(c.name))) {
  const p = readPoint(engine, { expr: c.expr }, c.at, ['at']);
  const g = diff.grad(p.prepared, p.inputs, c.wrt ?? p.prepared.inputs.map((i: any) => i.name));
  g.run(); g.run();
  const t: number[] = [];
  const start = performance.now();
  while (t.length < 5 || performance.now() - start < 3000) { const a = performance.now(); g.run(); t.push(performance.now() - a); if (t.length > 500) break; }
  out[c.name] = t.sort((a, b) => a - b)[t.length >> 1]!;
}
console.log(JSON.stringify(out));
