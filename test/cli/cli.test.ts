// The `adjoint` command as a user runs it: a child process (`node --import tsx src/cli/main.ts`,
// what the built bin runs compiled), computing in its own process or against a live server
// started here. Printed numbers are checked against closed forms computed in this file, `--json`
// against the HTTP answer byte for byte, errors by exit code and caret column.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { sha256Hex } from '../../src/service/access.js';
import { buildTestApp } from '../helpers.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'adjoint-cli-'));
/** A case starts one to four node processes that load the service through tsx: seconds each on a busy machine, so cases run concurrently. */
const SPAWN_TIMEOUT_MS = 90_000;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to its end; asynchronous, since the server answering it may run on this thread. */
function runProcess(command: string, args: string[], env: Record<string, string>): Promise<Ran> {
  return new Promise((resolve) => {
    // No ADJOINT_URL from the outside: each case says where it computes.
    const { ADJOINT_URL: _, ADJOINT_API_KEY: __, ...inherited } = process.env;
    const child = spawn(command, args, { cwd: repoRoot, env: { ...inherited, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** `adjoint <args>`, from the sources. */
const CLI = [process.execPath, '--import', 'tsx', 'src/cli/main.ts'] as const;
const adjoint = (args: string[], env: Record<string, string> = {}) => runProcess(CLI[0], [...CLI.slice(1), ...args], env);

/** The number printed after `label` on its line (`value  1.45`). */
function printed(stdout: string, label: string): number {
  const line = stdout.split('\n').find((l) => l.startsWith(`${label} `));
  if (line === undefined) throw new Error(`no line "${label}" in:\n${stdout}`);
  return Number(line.slice(label.length).trim());
}

const closeTo = (actual: number, expected: number, rtol = 1e-13) => expect(Math.abs(actual - expected)).toBeLessThanOrEqual(rtol * Math.abs(expected));

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

  it('a parse error: exit code 2, its code and message, a caret under the column', async () => {
    const expr = 'x1 = x^2\nx2 = exp(x1 +\nx2';
    const { status, stdout, stderr } = await adjoint(['grad', expr, '--at', 'x=1']);
    expect(status).toBe(2);
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
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(() => app.close());
  const remote = (args: string[]) => adjoint(args, { ADJOINT_URL: url, ADJOINT_API_KEY: KEY });

  it('grad --json is the HTTP answer byte for byte; the key goes as a bearer token', async () => {
    const http = await fetch(`${url}/grad`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ expr: LECTURE_F, at: { x: 0.7 } }) });
    const { status, stdout, stderr } = await remote(['grad', LECTURE_F, '--at', 'x=0.7', '--json']);
    expect(status, stderr).toBe(0);
    expect(stdout).toBe(`${await http.text()}\n`);
    closeTo((JSON.parse(stdout) as { gradient: { x: number } }).gradient.x, lecture(0.7).derivative);
    // Without the key the server refuses: the problem's code, exit code 2.
    const refused = await adjoint(['grad', 'x', '--at', 'x=1', '--url', url]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/^error: unauthorized \(401\)/);
  });

  it('--job runs the request as a job on the server (?async=true) and prints the same answer', async () => {
    const sync = await remote(['jacobian', 'tanh(W @ x)', '--at', `W=${JSON.stringify(W)}`, '--at', `x=${JSON.stringify(X)}`, '--json']);
    const job = await remote(['jacobian', 'tanh(W @ x)', '--at', `W=${JSON.stringify(W)}`, '--at', `x=${JSON.stringify(X)}`, '--json', '--job']);
    expect(job.status, job.stderr).toBe(0);
    expect(JSON.parse(job.stdout)).toEqual(JSON.parse(sync.stdout));
    // A problem comes back as the synchronous endpoint gives it: exit code 2.
    const failed = await remote(['grad', 'x @ x', '--at', 'x=[[1,2]]', '--job']);
    expect(failed.status, failed.stderr).toBe(2);
    expect(failed.stderr).toMatch(/shape/);
    // Without a server there is no job to run.
    const local = await adjoint(['grad', 'x', '--at', 'x=1', '--job']);
    expect(local.status).toBe(2);
    expect(local.stderr).toMatch(/--job runs the request as a job on a server: give --url/);
    const traced = await remote(['trace', 'x^2', '--at', 'x=1', '--job']);
    expect(traced.status).toBe(2);
    expect(traced.stderr).toMatch(/--job: trace does not run as a job \(eval, grad, jvp, jacobian, hessian, check, grade do\)/);
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
