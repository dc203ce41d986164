// The `adjoint` command as a user runs it: a child process (`node --import tsx src/cli/main.ts`,
// what the built bin runs compiled), computing in its own process or against a live server
// started here. Printed numbers are checked against closed forms computed in this file, `--json`
// against the HTTP answer byte for byte, errors by exit code and caret column.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFifo } from './fifo.js';
import type { App } from '../../src/service/app.js';
import { sha256Hex } from '../../src/service/access.js';
import { buildTestApp } from '../helpers.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'adjoint-cli-'));
/**
 * A case starts one to four node processes that load the service through tsx: seconds each, and
 * on a machine busy with other suites a minute or more, so cases run concurrently and the bound
 * only means "it did not hang".
 */
const SPAWN_TIMEOUT_MS = 240_000;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; asynchronous, since the server answering it may run on this thread. */
function runProcess(command: string, args: string[], env: Record<string, string>, input?: string): Promise<Ran> {
  return new Promise((resolve) => {
    // No ADJOINT_URL from the outside: each case says where it computes.
    const { ADJOINT_URL: _, ADJOINT_API_KEY: __, ...inherited } = process.env;
    const child = spawn(command, args, { cwd: repoRoot, env: { ...inherited, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    // The child may refuse its input before reading it all (EPIPE): that is what some cases test.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** `adjoint <args>`, from the sources. */
const CLI = [process.execPath, '--import', 'tsx', 'src/cli/main.ts'] as const;
const adjoint = (args: string[], env: Record<string, string> = {}, input?: string) => runProcess(CLI[0], [...CLI.slice(1), ...args], env, input);

/** The number printed after `label` on its line (`value  1.45`). */
function printed(stdout: string, label: string): number {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label} `));
  if (line === undefined) throw new Error(`no line "${label}" in:\n${stdout}`);
  return Number(line.slice(label.length).trim());
}

const closeTo = (actual: number, expected: number, rtol = 1e-13) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rtol * Math.abs(expected));

/** The numbers of a printed row of a summarised matrix (`[[1, 0, 0, ..., 0, 0, 0],`), `...` left out. */
const rowNumbers = (line: string) => line.replace(/[[\],]/g, ' ').trim().split(/\s+/).filter((t) => t !== '...').map(Number);

// The lecture's f (section 5.3) and its derivative by hand: u = x² + exp(x²), f = √u + cos u,
// f' = u'·(1/(2√u) − sin u) with u' = 2x·(1 + exp(x²)).
const LECTURE_F = 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))';
const lecture = (x: number) => {
  const u = x * x + Math.exp(x * x);
  return { value: Math.sqrt(u) + Math.cos(u), derivative: 2 * x * (1 + Math.exp(x * x)) * (1 / (2 * Math.sqrt(u)) - Math.sin(u)) };
};

/** No 503 overloaded from the servers here: on a busy machine their event loop is late by seconds. */
const CALM = { MAX_EVENT_LOOP_DELAY_MS: 0 };

const W = [
  [1, 2],
  [3, 4],
];
const X = [0.1, 0.2];

describe('adjoint, computing in its own process', { timeout: SPAWN_TIMEOUT_MS, concurrent: true }, () => {
  it("grad prints the lecture's f and f' at 0.7, as the closed form gives them", async () => {
    const { status, stdout, stderr } = await adjoint(['grad', LECTURE_F, '--at', 'x=0.7']);
    expect(status, stderr).toBe(0);
    closeTo(printed(stdout, 'value'), lecture(0.7).value);
    closeTo(printed(stdout, '∂f/∂x'), lecture(0.7).derivative);
  });

  it('eval, jvp and hessian print closed forms: sin(x)·y, its directional derivative and its Hessian', async () => {
    const [x, y] = [0.3, -1.7];
    const at = ['--at', `x=${x}`, '--at', `y=${y}`];
    const [evaluated, directional, second] = await Promise.all([
      adjoint(['eval', 'sin(x) * y', ...at]),
      adjoint(['jvp', 'sin(x) * y', ...at, '--tangent', 'x=2', '--tangent', 'y=0.5']),
      adjoint(['hessian', 'sin(x) * y', ...at, '--digits', '17']),
    ]);
    for (const ran of [evaluated, directional, second]) expect(ran.status, ran.stderr).toBe(0);
    closeTo(printed(evaluated.stdout, 'value'), Math.sin(x) * y);
    // J·t = cos(x)·y·2 + sin(x)·0.5
    closeTo(printed(directional.stdout, 'J·t'), 2 * Math.cos(x) * y + 0.5 * Math.sin(x));
    closeTo(printed(second.stdout, '∂f/∂x'), Math.cos(x) * y);
    closeTo(printed(second.stdout, '∂²f/∂x∂x'), -Math.sin(x) * y);
    closeTo(printed(second.stdout, '∂²f/∂x∂y'), Math.cos(x));
    closeTo(printed(second.stdout, '∂²f/∂y∂x'), Math.cos(x));
    expect(printed(second.stdout, '∂²f/∂y∂y')).toBe(0);
    const noTangent = await adjoint(['jvp', 'sin(x) * y', ...at]);
    expect(noTangent.status).toBe(2);
    expect(noTangent.stderr).toMatch(/--tangent is required/);
  });

  it('jacobian --json is the HTTP answer byte for byte, and (1 − tanh²(Wx))·W by forward mode', async () => {
    const server = buildTestApp(CALM);
    const body = { expr: 'tanh(W @ x)', at: { W, x: X }, mode: 'forward' };
    const http = await server.inject({ method: 'POST', url: '/jacobian', payload: body });
    await server.close();
    const { status, stdout, stderr } = await adjoint(['jacobian', 'tanh(W @ x)', '--at', `W=${JSON.stringify(W)}`, '--at', `x=${JSON.stringify(X)}`, '--mode', 'forward', '--json']);
    expect(status, stderr).toBe(0);
    expect(stdout).toBe(`${http.body}\n`);
    const answer = JSON.parse(stdout) as { jacobian: { x: number[][]; W: number[][][] }; mode: string };
    expect(answer.mode).toBe('forward');
    const y = W.map((row) => Math.tanh(row[0]! * X[0]! + row[1]! * X[1]!));
    W.forEach((row, i) =>
      row.forEach((w, j) => {
        closeTo(answer.jacobian.x[i]![j]!, (1 - y[i]! ** 2) * w, 1e-14);
        // ∂yᵢ/∂W_jk = δᵢⱼ (1 − yᵢ²) x_k
        for (let k = 0; k < 2; k++) expect(answer.jacobian.W[i]![j]![k]).toBeCloseTo(i === j ? (1 - y[i]! ** 2) * X[k]! : 0, 15);
      }),
    );
  });

  it('a parse error: exit code 4 (a problem answered), its code and message, a caret under the column', async () => {
    const expr = 'x1 = x^2\nx2 = exp(x1 +\nx2';
    const { status, stdout, stderr } = await adjoint(['grad', expr, '--at', 'x=1']);
    expect(status).toBe(4);
    expect(stdout).toBe('');
    const problem = /error: parse_error \(400\): .*line (\d+), column (\d+)/.exec(stderr);
    expect(problem, stderr).not.toBeNull();
    const [line, column] = [Number(problem![1]), Number(problem![2])];
    // The source line echoed under its number, and the caret under the column the message names.
    const lines = stderr.split('\n');
    const echoed = lines.findIndex((l) => l.startsWith(`  ${line} | `));
    expect(lines[echoed]!.slice(`  ${line} | `.length)).toBe(expr.split('\n')[line - 1]);
    expect(lines[echoed + 1]!.indexOf('^') - `  ${line} | `.length + 1).toBe(column);
  });
});

describe('adjoint against a live server', { timeout: SPAWN_TIMEOUT_MS, concurrent: true }, () => {
  let app: App;
  let url: string;
  const KEY = 'cli-test-key';
  beforeAll(async () => {
    app = buildTestApp({ ...CALM, API_KEYS: [{ id: 'cli', sha256: sha256Hex(KEY) }] });
    // What each request sent and asked for (the --msgpack case reads it).
    app.addHook('onRequest', async (request) => {
      received.push({ type: String(request.headers['content-type'] ?? ''), accept: String(request.headers.accept ?? ''), length: Number(request.headers['content-length'] ?? 0) });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    // Building the app on a machine busy with other suites can take more than vitest's 10 s.
  }, SPAWN_TIMEOUT_MS);
  afterAll(() => app.close(), SPAWN_TIMEOUT_MS);
  const received: { type: string; accept: string; length: number }[] = [];
  const remote = (args: string[]) => adjoint(args, { ADJOINT_URL: url, ADJOINT_API_KEY: KEY });

  it('grad --json is the HTTP answer byte for byte; the key goes as a bearer token', async () => {
    const http = await fetch(`${url}/grad`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ expr: LECTURE_F, at: { x: 0.7 } }) });
    const { status, stdout, stderr } = await remote(['grad', LECTURE_F, '--at', 'x=0.7', '--json']);
    expect(status, stderr).toBe(0);
    expect(stdout).toBe(`${await http.text()}\n`);
    closeTo((JSON.parse(stdout) as { gradient: { x: number } }).gradient.x, lecture(0.7).derivative);
    // Without the key the server refuses: the problem's code, exit code 4.
    const refused = await adjoint(['grad', 'x', '--at', 'x=1', '--url', url]);
    expect(refused.status).toBe(4);
    expect(refused.stderr).toMatch(/^error: unauthorized \(401\)/);
  });

  it('--msgpack sends MessagePack (a large input as a bin) and prints the same answer as JSON does', async () => {
    const x = JSON.stringify(Array.from({ length: 5000 }, (_, i) => Math.sin(i) / 3));
    const args = ['grad', 'sum(sin(x) * x)', '--at', `x=${x}`, '--json'];
    const [json, packed, problem] = await Promise.all([remote(args), remote([...args, '--msgpack']), remote(['grad', 'sin(x', '--at', 'x=1', '--msgpack'])]);
    expect(json.status, json.stderr).toBe(0);
    expect(packed.status, packed.stderr).toBe(0);
    expect(packed.stdout).toBe(json.stdout);
    expect((JSON.parse(packed.stdout) as { gradient: { x: number[] } }).gradient.x).toHaveLength(5000);
    // It went as MessagePack, the 5000 elements as 40,000 bytes of bin (base64 would be 53,336 characters).
    const sent = received.find((r) => r.type === 'application/msgpack' && r.length > 40_000);
    expect(sent, JSON.stringify(received)).toBeDefined();
    expect(sent!.length).toBeLessThan(40_200);
    expect(sent!.accept).toMatch(/^application\/msgpack/);
    // Problems are still problem+json: the code and the caret, exit code 4.
    expect(problem.status).toBe(4);
    expect(problem.stderr).toMatch(/^error: parse_error/);
  });

  it('--job runs the request as a job on the server (?async=true) and prints the same answer', async () => {
    const sync = await remote(['jacobian', 'tanh(W @ x)', '--at', `W=${JSON.stringify(W)}`, '--at', `x=${JSON.stringify(X)}`, '--json']);
    const job = await remote(['jacobian', 'tanh(W @ x)', '--at', `W=${JSON.stringify(W)}`, '--at', `x=${JSON.stringify(X)}`, '--json', '--job']);
    expect(job.status, job.stderr).toBe(0);
    expect(JSON.parse(job.stdout)).toEqual(JSON.parse(sync.stdout));
    // A problem comes back as the synchronous endpoint gives it: exit code 4.
    const failed = await remote(['grad', 'x @ x', '--at', 'x=[[1,2]]', '--job']);
    expect(failed.status, failed.stderr).toBe(4);
    expect(failed.stderr).toMatch(/shape/);
    // Without a server there is no job to run.
    const local = await adjoint(['grad', 'x', '--at', 'x=1', '--job']);
    expect(local.status).toBe(2);
    expect(local.stderr).toMatch(/--job runs the request as a job on a server: give --url/);
    const traced = await remote(['trace', 'x^2', '--at', 'x=1', '--job']);
    expect(traced.status).toBe(2);
    expect(traced.stderr).toMatch(/--job: trace does not run as a job \(eval, grad, jvp, vjp, jacobian, hessian, hvp, check, grade, probe do\)/);
  });

  it("trace prints the lecture's table: each row's value, tangent and adjoint as worked by hand", async () => {
    const program = 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x6 = x4 + x5; x6';
    const { status, stdout, stderr } = await remote(['trace', program, '--at', 'x=0.7', '--digits', '15']);
    expect(status, stderr).toBe(0);
    const [header, rule, ...rest] = stdout.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['step', 'operation', 'value', 'tangent', 'adjoint']);
    expect(rule).toMatch(/^[- ]+$/);
    const rows = new Map(rest.filter((l) => /^x\d?\s/.test(l)).map((l) => l.split(/\s{2,}/)).map((cells) => [cells[0]!, cells.slice(1)]));
    // Forward (tangent d, seed 1) and reverse (adjoint a, seed 1) by hand.
    const x = 0.7;
    const x1 = x * x, x2 = Math.exp(x1), x3 = x1 + x2, x4 = Math.sqrt(x3), x5 = Math.cos(x3);
    const d1 = 2 * x, d2 = x2 * d1, d3 = d1 + d2, d4 = d3 / (2 * x4), d5 = -Math.sin(x3) * d3;
    const a3 = 1 / (2 * x4) - Math.sin(x3), a2 = a3, a1 = a3 + a2 * x2, a0 = 2 * x * a1;
    const expected: [string, string, number, number, number][] = [
      ['x', 'input', x, 1, a0],
      ['x1', 'x ^ 2', x1, d1, a1],
      ['x2', 'exp(x1)', x2, d2, a2],
      ['x3', 'x1 + x2', x3, d3, a3],
      ['x4', 'sqrt(x3)', x4, d4, 1],
      ['x5', 'cos(x3)', x5, d5, 1],
      ['x6', 'x4 + x5', x4 + x5, d4 + d5, 1],
    ];
    expect([...rows.keys()]).toEqual(expected.map((e) => e[0]));
    for (const [id, op, value, tangent, adjoint] of expected) {
      const [shownOp, ...numbers] = rows.get(id)!;
      expect(shownOp).toBe(op);
      numbers.map(Number).forEach((n, k) => closeTo(n, [value, tangent, adjoint][k]!, 1e-13));
    }
    expect(stdout).toContain('output: x6; tangent seeds: x = 1; cotangent seed: 1');
  });

  it('grade reads a CSV: the right derivative full marks, the wrong one none, exit code 1', async () => {
    const csv = join(scratch, 'answers.csv');
    // d(a·b)/dx with a = b = x is 2x; "x" differentiates one factor only.
    writeFileSync(csv, 'id,derivative.x\r\nright,"x + x"\r\nwrong,x\r\n');
    const { status, stdout, stderr } = await remote(['grade', 'a = x; b = x; a * b', csv]);
    expect(status, stderr).toBe(1);
    expect(stdout).toMatch(/^right: 1\/1\n/m);
    expect(stdout).toMatch(/^wrong: 0\/1\n {2}.*expected/m);
    expect(stdout).toContain('2 submissions: 1 with full marks, 1 without');
    // The same class as JSON, as POST /grade takes it, in Gradescope's shape.
    const json = join(scratch, 'answers.json');
    writeFileSync(json, JSON.stringify([{ id: 'right', answers: { derivative: { x: '2*x' } } }]));
    const gradescope = await remote(['grade', 'a = x; b = x; a * b', json, '--format', 'gradescope', '--json']);
    expect(gradescope.status, gradescope.stderr).toBe(0);
    expect(JSON.parse(gradescope.stdout)).toMatchObject({ format: 'gradescope', results: [{ score: 1, extra_data: { id: 'right', max_score: 1 } }] });
  });

  it('runs the example in examples/cli/: a class graded with a known mistake, exit code 1', async () => {
    const example = fileURLToPath(new URL('../../examples/cli/grade-class.sh', import.meta.url));
    const { status, stdout, stderr } = await runProcess('bash', [example], { ADJOINT_URL: url, ADJOINT_API_KEY: KEY, ADJOINT_CLI: CLI.join(' ') });
    expect(status, stderr).toBe(1);
    expect(printed(stdout, '∂f/∂x')).toBe(3);
    expect(stdout).toMatch(/^ada: 2\/2$/m);
    expect(stdout).toMatch(/^ben: 1\/2\n.*Only one factor was differentiated/m);
    // The formula that does not parse is a failed part (docs/grading.md): 1 of 2, not gradable.
    expect(stdout).toMatch(/^cy: 1\/2 \(not gradable/m);
  });

  it('check: exit code 1 where AD and finite differences disagree; NaN printed as NaN, with a warning', async () => {
    // x·(x > 0) at 0: AD says 0 (the comparison has zero derivative), central differences 1/2.
    const failed = await remote(['check', 'x * (x > 0)', '--at', 'x=0']);
    expect(failed.status, failed.stderr).toBe(1);
    expect(printed(failed.stdout, 'AD ∂f/∂x')).toBe(0);
    expect(printed(failed.stdout, 'FD ∂f/∂x')).toBeCloseTo(0.5, 8);
    expect(failed.stdout).toMatch(/^FAILED: /m);
    const nan = await remote(['grad', 'log(x)', '--at', 'x=-1']);
    expect(nan.status, nan.stderr).toBe(0);
    expect(nan.stdout).toMatch(/^value {2}NaN$/m);
    closeTo(printed(nan.stdout, '∂f/∂x'), -1);
    expect(nan.stderr).toMatch(/^warning: .*NaN or infinity/m);
  });
});

describe('adjoint, its usage', { timeout: SPAWN_TIMEOUT_MS, concurrent: true }, () => {
  it('--help for each command; a bad option or value is exit code 2 before anything is computed', async () => {
    const help = await adjoint(['grade', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: adjoint grade /);
    expect(help.stdout).toContain('derivative.<input>');
    const unknown = await adjoint(['grad', 'x', '--at', 'x=1', '--bogus']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--bogus'");
    const badValue = await adjoint(['jacobian', 'x', '--at', 'x=[1,']);
    expect(badValue.status).toBe(2);
    expect(badValue.stderr).toContain('--at x=[1,: a value is a number or a JSON array');
  });

  it('a server that cannot be reached is exit code 3', async () => {
    const closed = buildTestApp();
    await closed.listen({ port: 0, host: '127.0.0.1' });
    const { port } = closed.server.address() as AddressInfo;
    await closed.close();
    const { status, stderr } = await adjoint(['grad', 'x', '--at', 'x=1', '--url', `http://127.0.0.1:${port}`]);
    expect(status).toBe(3);
    expect(stderr).toContain(`cannot reach http://127.0.0.1:${port}/grad`);
  });

  it('the bin is the compiled main module, which keeps its shebang', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const build = JSON.parse(readFileSync(join(repoRoot, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string }; include: string[] };
    expect(pkg.bin.adjoint).toBe(`${build.compilerOptions.outDir}/src/cli/main.js`);
    expect(build.include).toContain('src');
    expect(readFileSync(join(repoRoot, 'src/cli/main.ts'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });
});

describe('adjoint, every endpoint, against a live server', { timeout: SPAWN_TIMEOUT_MS, concurrent: true }, () => {
  let app: App;
  let url: string;
  beforeAll(async () => {
    app = buildTestApp(CALM);
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    // Building the app on a machine busy with other suites can take more than vitest's 10 s.
  }, SPAWN_TIMEOUT_MS);
  afterAll(() => app.close(), SPAWN_TIMEOUT_MS);
  const remote = (args: string[], input?: string) => adjoint([...args, '--url', url], {}, input);
  const post = async (path: string, body: unknown) => (await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).text();

  it('vjp and hvp print closed forms of sin(x)·y: cᵀ·J and H·v', async () => {
    const [x, y] = [0.3, -1.7];
    const at = ['--at', `x=${x}`, '--at', `y=${y}`];
    const [pulled, product] = await Promise.all([remote(['vjp', 'sin(x) * y', ...at, '--cotangent', '2']), remote(['hvp', 'sin(x) * y', ...at, '--vector', 'x=1', '--vector', 'y=0.5'])]);
    for (const ran of [pulled, product]) expect(ran.status, ran.stderr).toBe(0);
    closeTo(printed(pulled.stdout, 'cᵀ·∂f/∂x'), 2 * Math.cos(x) * y);
    closeTo(printed(pulled.stdout, 'cᵀ·∂f/∂y'), 2 * Math.sin(x));
    // H = [[-sin(x)·y, cos(x)], [cos(x), 0]]
    closeTo(printed(product.stdout, '(H·v) for x'), -Math.sin(x) * y + 0.5 * Math.cos(x));
    closeTo(printed(product.stdout, '(H·v) for y'), Math.cos(x));
    const missing = await remote(['vjp', 'sin(x)', '--at', 'x=1']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--cotangent is required');
  });

  it("analyze prints every step's shape and the service's recommendation; graph prints the DOT as served and writes the SVG", async () => {
    const expr = 'tanh(W @ x)';
    const analysis = JSON.parse(await post('/analyze', { expr, shapes: { W: [3, 2], x: [2] } })) as { recommendation: { mode: string; reason: string }; cost: { jacobian: { m: number; n: number } } };
    const analyzed = await remote(['analyze', expr, '--shape', 'W=[3,2]', '--shape', 'x=[2]']);
    expect(analyzed.status, analyzed.stderr).toBe(0);
    expect(analyzed.stdout).toMatch(/^step +operation +shape +flops/m);
    expect(analyzed.stdout).toMatch(/^v\d+ +W @ x +\[3\] /m);
    expect(analyzed.stdout).toContain(`the ${analysis.cost.jacobian.m} × ${analysis.cost.jacobian.n} Jacobian`);
    expect(analyzed.stdout).toContain(`use ${analysis.recommendation.mode} mode: ${analysis.recommendation.reason}`);

    const dot = await post('/graph', { expr, format: 'dot', shapes: { W: [3, 2], x: [2] } });
    const drawn = await remote(['graph', expr, '--shape', 'W=[3,2]', '--shape', 'x=[2]']);
    expect(drawn.status, drawn.stderr).toBe(0);
    expect(drawn.stdout).toBe(dot.endsWith('\n') ? dot : `${dot}\n`);
    expect(drawn.stdout).toMatch(/^digraph/);
    const svg = join(scratch, 'graph.svg');
    const pictured = await remote(['graph', 'sin(x) * y', '--svg', svg]);
    expect(pictured.status, pictured.stderr).toBe(0);
    expect(pictured.stdout).toMatch(new RegExp(`^wrote ${svg} \\(\\d+ bytes of SVG\\)`));
    expect(readFileSync(svg, 'utf8')).toMatch(/<svg[\s\S]*<\/svg>\s*$/);
  });

  it('ops lists every function the service describes; ops NAME shows its rules as served', async () => {
    const served = JSON.parse(await (await fetch(`${url}/ops`)).text()) as { ops: { name: string; value: string; derivative: string }[] };
    const [all, one] = await Promise.all([remote(['ops']), remote(['ops', 'sin'])]);
    expect(all.status, all.stderr).toBe(0);
    const names = all.stdout.split('\n').slice(2).map((line) => line.split(/\s+/)[0]);
    for (const op of served.ops) expect(names).toContain(op.name);
    const sin = served.ops.find((op) => op.name === 'sin')!;
    expect(one.stdout).toContain(`value:      ${sin.value}`);
    expect(one.stdout).toContain(`derivative: ${sin.derivative}`);
  });

  it('probe runs as a job and prints the estimate: central differences of sum(sin(x)) are cos(x)', async () => {
    const x = [0.1, 0.2, 0.3];
    const [human, machine] = await Promise.all([
      remote(['probe', 'sum(sin(x))', '--at', JSON.stringify(x), '--method', 'central']),
      remote(['probe', 'sum(sin(x))', '--at', JSON.stringify(x), '--method', 'central', '--json']),
    ]);
    expect(machine.status, machine.stderr).toBe(0);
    const answer = JSON.parse(machine.stdout) as { gradient: number[]; queries: number };
    answer.gradient.forEach((g, i) => expect(Math.abs(g - Math.cos(x[i]!))).toBeLessThan(1e-4));
    expect(human.status, human.stderr).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^\\(central, ${answer.queries} queries, epsilon .*cosine to the exact gradient 1\\)$`, 'm'));
    // The job went through the jobs API: the server's in-process backend has it.
    const refused = await remote(['probe', 'sum(sin(x))']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('--at is required');
  });

  it('an 800×800 Hessian prints summarised (exit 0), its corners as the closed form 8·x·xᵀ + 4·|x|²·I gives them; --out keeps it whole', async () => {
    const n = 800;
    const x = Array.from({ length: n }, (_, i) => (i + 1) / n);
    const point = join(scratch, 'x800.json');
    writeFileSync(point, JSON.stringify(x));
    const whole = join(scratch, 'hessian.json');
    const { status, stdout, stderr } = await remote(['hessian', 'sum(x^2)^2', '--at', `x=@${point}`, '--out', whole]);
    expect(status, stderr).toBe(0);
    const s = x.reduce((a, v) => a + v * v, 0);
    const h = (i: number, j: number) => 8 * x[i]! * x[j]! + (i === j ? 4 * s : 0);
    const lines = stdout.split('\n');
    const head = lines.findIndex((l) => l.startsWith('∂²f/∂x∂x'));
    expect(lines[head]).toBe('∂²f/∂x∂x  shape [800, 800], 640000 elements (summarised: --json or --out FILE for all of them)');
    const shown = [0, 1, 2, n - 3, n - 2, n - 1];
    const rows = [1, 2, 3, 5, 6, 7].map((k) => rowNumbers(lines[head + k]!));
    expect(lines[head + 4]!.trim()).toBe('...,');
    rows.forEach((row, r) => row.forEach((v, c) => closeTo(v, h(shown[r]!, shown[c]!), 1e-12)));
    const kept = JSON.parse(readFileSync(whole, 'utf8')) as { hessian: { x: { x: number[][] } } };
    closeTo(kept.hessian.x.x[400]![401]!, h(400, 401), 1e-12);
  });

  it('a large input travels as base64: under a BODY_LIMIT its nested JSON exceeds, the command is answered', async () => {
    const small = buildTestApp({ ...CALM, BODY_LIMIT: 300_000 });
    await small.listen({ port: 0, host: '127.0.0.1' });
    const smallUrl = `http://127.0.0.1:${(small.server.address() as AddressInfo).port}`;
    try {
      const x = Array.from({ length: 20_000 }, (_, i) => i / 7);
      const nested = JSON.stringify({ expr: 'sum(x)', at: { x } });
      expect(nested.length).toBeGreaterThan(300_000);
      const refused = await fetch(`${smallUrl}/eval`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: nested });
      expect(refused.status).toBe(413);
      const file = join(scratch, 'x20000.json');
      writeFileSync(file, JSON.stringify({ x }));
      const { status, stdout, stderr } = await adjoint(['eval', 'sum(x)', '--at', `@${file}`, '--url', smallUrl]);
      expect(status, stderr).toBe(0);
      closeTo(printed(stdout, 'value'), x.reduce((a, v) => a + v, 0), 1e-12);
    } finally {
      await small.close();
    }
  });

  it('what came from input or the service reaches the terminal with its escape sequences escaped', async () => {
    const [parsed, graded] = await Promise.all([
      remote(['grad', '\u001b[2Jx +', '--at', 'x=1']),
      (async () => {
        const csv = join(scratch, 'escapes.csv');
        writeFileSync(csv, 'id,derivative.x\n"\u001b]52;c;aGk=\u0007eve","\u001b[31mx"\n');
        return remote(['grade', 'x^2', csv]);
      })(),
    ]);
    expect(parsed.status).toBe(4);
    expect(parsed.stderr).toContain('\\u001b[2Jx +');
    expect(graded.stdout).toContain('\\u001b]52;c;aGk=\\u0007eve');
    for (const text of [parsed.stdout, parsed.stderr, graded.stdout, graded.stderr]) expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
  });
});

describe('adjoint, what it refuses to read and how it ends', { timeout: SPAWN_TIMEOUT_MS, concurrent: true }, () => {
  it("eval 'eye(1000)' in its own process: summarised, exit 0", async () => {
    const { status, stdout, stderr } = await adjoint(['eval', 'eye(1000)']);
    expect(status, stderr).toBe(0);
    expect(stdout.split('\n')[0]).toBe('value  shape [1000, 1000], 1000000 elements (summarised: --json or --out FILE for all of them)');
    expect(rowNumbers(stdout.split('\n')[1]!)).toEqual([1, 0, 0, 0, 0, 0]);
  });

  it('@file: a device, a FIFO or a file above --max-file-bytes is refused at once (exit 2); standard input is bounded too', async () => {
    const fifo = join(scratch, 'cli-fifo');
    makeFifo(fifo);
    const big = join(scratch, 'long.txt');
    writeFileSync(big, 'x + '.repeat(100) + 'x');
    const [device, pipe, large, stdin] = await Promise.all([
      adjoint(['grad', '@/dev/zero', '--at', 'x=1']),
      adjoint(['grad', `@${fifo}`, '--at', 'x=1']),
      adjoint(['grad', `@${big}`, '--at', 'x=1', '--max-file-bytes', '100']),
      adjoint(['grad', '@-', '--at', 'x=1'], { ADJOINT_MAX_FILE_BYTES: '100' }, 'x + '.repeat(1000) + 'x'),
    ]);
    expect([device.status, pipe.status, large.status, stdin.status]).toEqual([2, 2, 2, 2]);
    expect(device.stderr).toContain('cannot read /dev/zero: it is a device, not a regular file');
    expect(pipe.stderr).toContain('it is a FIFO (named pipe), not a regular file');
    expect(large.stderr).toContain(`${big} holds 401 bytes, above the limit of 100 bytes`);
    expect(stdin.stderr).toContain('standard input holds more than 100 bytes, above the limit of 100 bytes');
  });

  it('exit codes: 3 when the service fails (503), 5 when an answer came but cannot be shown — never "the service failed"', async () => {
    // A server that answers /grad with something no Adjoint server sends, and 503 elsewhere.
    const odd = createServer((request, response) => {
      request.resume();
      if (request.url === '/grad') response.writeHead(200, { 'content-type': 'application/json' }).end('{"value": 1}');
      else response.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1' }).end('{"status":503,"code":"overloaded","detail":"busy"}');
    });
    await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
    const oddUrl = `http://127.0.0.1:${(odd.address() as AddressInfo).port}`;
    try {
      const [shown, busy, asJson] = await Promise.all([
        adjoint(['grad', 'x', '--at', 'x=1', '--url', oddUrl]),
        adjoint(['eval', 'x', '--at', 'x=1', '--url', oddUrl]),
        adjoint(['grad', 'x', '--at', 'x=1', '--url', oddUrl, '--json']),
      ]);
      expect(shown.status).toBe(5);
      expect(shown.stderr).toContain('the answer came but could not be shown');
      expect(shown.stderr).not.toContain('the service failed');
      expect(busy.status).toBe(3);
      expect(busy.stderr).toMatch(/^error: overloaded \(503\): busy/);
      expect(asJson.status, asJson.stderr).toBe(0);
      expect(asJson.stdout).toBe('{"value": 1}\n');
    } finally {
      await new Promise((resolve) => odd.close(resolve));
    }
  });
});
