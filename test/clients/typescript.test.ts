// The TypeScript client's source (clients/typescript/src) against a running server: every
// differentiation endpoint through it, checked against closed forms; tensors in and out as nested
// JSON and as base64, NaN and ±Infinity as real numbers; refusals as AdjointError with their code
// and position; grading, probing and jobs (submit, events, wait with progress, cancel, run). Also:
// its generated types are those of openapi.yaml and its type tests compile (a typo in a request
// field fails tsc). The package as users install it (npm pack, plain node, tsc) and the examples
// are tested in typescript-package.test.ts.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { decode, encode } from '@msgpack/msgpack';
import { AdjointError, createAdjoint, encodeValue, type Adjoint, JobCancelledError, type JobView, serverSentEvents, Tensor, toNested, toTensor } from '../../clients/typescript/src/index.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/service/config.js';
import { runningServer } from '../helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const clientDir = `${root}clients/typescript`;

/** A server on a free port; no 503 overloaded when other work on the machine delays its event loop. */
async function listen(env: Record<string, string> = {}): Promise<{ app: App; url: string }> {
  const app = buildApp(loadConfig({ WORKERS: '0', MAX_EVENT_LOOP_DELAY_MS: '0', ...env }), { logger: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

// Asynchronous: the server answering the child runs on this thread.
const run = (command: string, args: string[], env: Record<string, string> = {}) =>
  new Promise<{ status: number | null; output: string }>((resolve) => {
    const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (status) => resolve({ status, output }));
  });

const close = (actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance = 1e-12) => {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i]! - expected[i]!), `element ${i}: ${actual[i]} vs ${expected[i]}`).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(expected[i]!)));
};

// The lecture's f(x) = sqrt(u) + cos(u), u = x² + exp(x²): f'(x) = u'(1 / (2 sqrt(u)) − sin(u)), u' = 2x(1 + exp(x²)).
const LECTURE = 'sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))';
const lecture = (x: number) => {
  const u = x * x + Math.exp(x * x);
  const du = 2 * x * (1 + Math.exp(x * x));
  return { f: Math.sqrt(u) + Math.cos(u), df: du * (1 / (2 * Math.sqrt(u)) - Math.sin(u)) };
};

// tanh(W x): J = diag(1 − tanh²(W x)) W.
const W = [
  [1, 2],
  [3, 4],
];
const x0 = [0.1, 0.2];
const Wx = W.map((row) => row[0]! * x0[0]! + row[1]! * x0[1]!);
const J = W.map((row, i) => row.map((w) => (1 - Math.tanh(Wx[i]!) ** 2) * w));

describe('the TypeScript client against a running server', () => {
  // The compiled service that .ci/run starts (ADJOINT_TEST_URL), else one built here.
  let server: { url: string; close: () => Promise<void> };
  let adjoint: Adjoint;
  const sent: string[] = [];
  beforeAll(async () => {
    server = await runningServer({ MAX_EVENT_LOOP_DELAY_MS: 0 });
    // The client's `fetch` option: here it also keeps each request's body, to see its wire form.
    adjoint = createAdjoint({
      baseUrl: server.url,
      fetch: async (request) => {
        sent.push(await request.clone().text());
        return fetch(request);
      },
    });
  });
  afterAll(() => server.close());

  it("grad: the lecture's f and its derivative at 0.7, as the closed form gives them", async () => {
    const { value, gradient } = await adjoint.grad({ expr: LECTURE, at: { x: 0.7 } });
    expect(value).toBeInstanceOf(Tensor);
    expect(value.shape).toEqual([]);
    close([value.item(), gradient.x!.item()], [lecture(0.7).f, lecture(0.7).df]);
  });

  it('grad over several points answers { results } in order', async () => {
    const points = [0.1, 0.7, -1.3];
    const { results } = await adjoint.grad({ expr: LECTURE, points: points.map((x) => ({ x })) });
    close(
      results.map((r) => r.gradient.x!.item()),
      points.map((x) => lecture(x).df),
    );
  });

  it('jacobian, jvp and vjp of tanh(W x) agree with diag(1 − tanh²(W x)) W', async () => {
    const jacobian = await adjoint.jacobian({ expr: 'tanh(W @ x)', at: { W, x: x0 }, wrt: ['x'] });
    expect(jacobian.jacobian.x!.shape).toEqual([2, 2]);
    close(jacobian.jacobian.x!.data, J.flat());
    expect(jacobian.jacobian.x!.toNested()).toEqual(J.map((row) => row.map((v) => expect.closeTo(v, 12))));
    const jvp = await adjoint.jvp({ expr: 'tanh(W @ x)', at: { W, x: x0 }, tangents: { x: [1, -1] } });
    close(jvp.tangent.data, J.map((row) => row[0]! - row[1]!));
    const vjp = await adjoint.vjp({ expr: 'tanh(W @ x)', at: { W, x: x0 }, cotangent: [2, 3], wrt: ['x'] });
    close(vjp.vjp.x!.data, [0, 1].map((j) => 2 * J[0]![j]! + 3 * J[1]![j]!));
  });

  it('hessian and hvp of x·M·x are M + Mᵀ (and its product with a vector); eval gives the value', async () => {
    const M = [
      [1, 2],
      [3, 4],
    ];
    const x = [1, 2];
    const hessian = await adjoint.hessian({ expr: 'x @ M @ x', at: { x, M }, wrt: ['x'] });
    close(hessian.hessian.x!.x!.data, [2, 5, 5, 8]);
    close(hessian.gradient.x!.data, [2 * 1 + 5 * 2, 5 * 1 + 8 * 2]);
    const hvp = await adjoint.hvp({ expr: 'x @ M @ x', at: { x, M }, wrt: ['x'], vector: { x: [1, -1] } });
    close(hvp.hvp.x!.data, [2 - 5, 5 - 8]);
    const evaluated = await adjoint.eval({ expr: 'x @ M @ x', at: { x, M } });
    expect(evaluated.value.item()).toBe(1 * 1 + (2 + 3) * 2 + 4 * 4);
  });

  it('check: AD agrees with finite differences, the errors as numbers', async () => {
    const check = await adjoint.check({ expr: LECTURE, at: { x: 0.7 } });
    expect(check.ok).toBe(true);
    expect(typeof check.maxAbsError).toBe('number');
    expect(check.maxAbsError).toBeLessThan(1e-6);
    close([check.gradient.x!.item()], [lecture(0.7).df]);
    // Random directions: the numeric side is one number per direction, each beside AD's ∇f·d.
    const directions = await adjoint.check({ expr: 'sum(sin(x))', at: { x: [0.1, 0.2, 0.3] }, directions: 3 });
    expect(directions.ok).toBe(true);
    expect(directions.directions).toHaveLength(3);
    for (const { ad, numeric } of directions.directions ?? []) expect(Math.abs(ad - numeric)).toBeLessThan(1e-6);
    expect(directions.numeric).toEqual(directions.directions?.map(({ numeric }) => numeric));
  });

  it('takes the function as a JSON graph', async () => {
    const graph = { nodes: [{ id: 'y', op: 'sin', args: ['x'] }, { id: 'z', op: 'mul', args: ['y', 'x'] }], output: 'z' };
    const { gradient } = await adjoint.grad({ graph, at: { x: 0.3 } });
    close([gradient.x!.item()], [Math.cos(0.3) * 0.3 + Math.sin(0.3)]);
  });

  it("trace: the lecture's forward table, step by step", async () => {
    const table = await adjoint.trace({ expr: 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5', at: { x: 0.7 }, mode: 'forward' });
    const step = (id: string) => table.steps.find((s) => s.id === id)!;
    close([step('x1').value!.item(), step('x1').tangent!.item()], [0.49, 1.4]);
    close([step('x3').value!.item()], [0.49 + Math.exp(0.49)]);
    const last = table.steps.find((s) => s.id === table.output)!;
    close([last.value!.item(), last.tangent!.item()], [lecture(0.7).f, lecture(0.7).df]);
  });

  it('sends large inputs as base64 and small ones as nested JSON; decodes base64 answers', async () => {
    const n = 5000;
    const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i));
    sent.length = 0;
    const answer = await adjoint.grad({ expr: 'sum(x^3) / 3', at: { x }, encoding: 'base64' });
    const wire = JSON.parse(sent[0]!) as { at: { x: { dtype: string; shape: number[]; data: string } } };
    expect(wire.at.x.dtype).toBe('float64');
    expect(wire.at.x.shape).toEqual([n]);
    expect(wire.at.x.data.length).toBe(Math.ceil((8 * n) / 3) * 4);
    expect(answer.gradient.x!.shape).toEqual([n]);
    close(answer.gradient.x!.data, x.map((v) => v * v));

    // A nested array as large is sent as base64 too; a small one stays nested.
    sent.length = 0;
    await adjoint.grad({ expr: 'sum(X)', at: { X: Array.from({ length: 64 }, () => Array.from({ length: 64 }, () => 1)) } });
    expect(JSON.parse(sent[0]!).at.X).toMatchObject({ dtype: 'float64', shape: [64, 64] });
    sent.length = 0;
    await adjoint.grad({ expr: 'sum(X)', at: { X: [[1, 2]] } });
    expect(JSON.parse(sent[0]!).at.X).toEqual([[1, 2]]);
    // base64Threshold: Infinity sends nested JSON whatever the size.
    const nested = await createAdjoint({ baseUrl: server.url, base64Threshold: Number.POSITIVE_INFINITY }).grad({ expr: 'sum(x^3) / 3', at: { x } });
    close(nested.gradient.x!.data, x.map((v) => v * v));
  });

  it('msgpack: a codec given, bodies and answers are MessagePack, tensors as bins; the same bits as JSON', async () => {
    const n = 5000;
    const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i) / 2);
    const seen: { type: string | null; body: Uint8Array }[] = [];
    const packed = createAdjoint({
      baseUrl: server.url,
      msgpack: { encode, decode },
      fetch: async (request) => {
        seen.push({ type: request.headers.get('content-type'), body: new Uint8Array(await request.clone().arrayBuffer()) });
        return fetch(request);
      },
    });
    const expr = 'sum(sin(x) * x) + sum(tanh(x))';
    const [viaMsgpack, viaJson] = await Promise.all([packed.grad({ expr, at: { x, y: [1, Number.NaN] } }), adjoint.grad({ expr, at: { x, y: [1, Number.NaN] }, encoding: 'base64' })]);
    expect(seen[0]!.type).toBe('application/msgpack');
    const wire = decode(seen[0]!.body) as { at: { x: { data: Uint8Array }; y: unknown[] } };
    expect(wire.at.x.data).toBeInstanceOf(Uint8Array);
    expect(wire.at.x.data.byteLength).toBe(8 * n);
    expect(Number.isNaN(wire.at.y[1])).toBe(false); // small tensors stay nested, non-finite as the service's strings
    expect(Buffer.from(viaMsgpack.gradient.x!.data.buffer).equals(Buffer.from(viaJson.gradient.x!.data.buffer))).toBe(true);
    expect(Object.is(viaMsgpack.value.item(), viaJson.value.item())).toBe(true);
    // A problem is the same AdjointError.
    await expect(packed.grad({ expr: 'sin(x', at: { x: 1 } })).rejects.toMatchObject({ status: 400, code: 'parse_error' });
  });

  it('NaN and ±Infinity travel as real numbers both ways, nested and base64', async () => {
    const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.5];
    expect(encodeValue(special)).toEqual(['NaN', 'Infinity', '-Infinity', -0.5]);
    const nested = await adjoint.eval({ expr: 'x * 2', at: { x: special } });
    expect(nested.value.toNested()).toEqual([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1]);
    const x = Float64Array.from({ length: 4096 }, (_, i) => special[i % 4]!);
    const encoded = await adjoint.eval({ expr: 'x * 2', at: { x }, encoding: 'base64' });
    expect(Array.from(encoded.value.data.subarray(0, 4))).toEqual([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1]);
    // The wire forms decode alike.
    expect(toNested([['NaN', 1], [2, '-Infinity']])).toEqual([[Number.NaN, 1], [2, Number.NEGATIVE_INFINITY]]);
    const bits = toTensor({ dtype: 'float64', shape: [3], data: Buffer.from(new Float64Array([Number.NaN, Number.POSITIVE_INFINITY, 1]).buffer).toString('base64') });
    expect(bits.toNested()).toEqual([Number.NaN, Number.POSITIVE_INFINITY, 1]);
  });

  it('a refused request is an AdjointError with its status, code, position or node', async () => {
    const parse = await adjoint.grad({ expr: 'sin(x', at: { x: 1 } }).catch((e: unknown) => e);
    expect(parse).toBeInstanceOf(AdjointError);
    expect(parse).toMatchObject({ status: 400, code: 'parse_error', line: 1, column: 4 });
    expect((parse as AdjointError).detail).toMatch(/\)/);

    const graph = { nodes: [{ id: 'y', op: 'nosuchop', args: ['x'] }], output: 'y' };
    const unknown = await adjoint.grad({ graph, at: { x: 1 } }).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: 'unknown_function', node: 'y' });

    const notAnInput = await adjoint.grad({ expr: 'x + y', at: { x: 1 } }).catch((e: unknown) => e);
    expect(notAnInput).toMatchObject({ status: 422, code: 'unknown_input' });

    // A ragged array: the service says where (small inputs are sent as they are, and checked there).
    const ragged = await adjoint.grad({ expr: 'sum(x)', at: { x: [[1, 2], [3]] } }).catch((e: unknown) => e);
    expect(ragged).toMatchObject({ status: 400, code: 'validation_error', path: 'at.x.1' });
    // A large one cannot be encoded: the client says where before sending.
    const big = Array.from({ length: 4096 }, (_, i) => (i === 7 ? [1, 2] : [1]));
    await expect(adjoint.grad({ expr: 'sum(x)', at: { x: big } })).rejects.toThrow(/not rectangular at \[7\]/);
  });

  it('sends its API key as a bearer token', async () => {
    const key = 'a-key-for-this-test';
    const locked = await listen({ API_KEYS: `ci:${createHash('sha256').update(key).digest('hex')}` });
    try {
      const without = await createAdjoint({ baseUrl: locked.url }).grad({ expr: 'x', at: { x: 1 } }).catch((e: unknown) => e);
      expect(without).toMatchObject({ status: 401, code: 'unauthorized' });
      const withKey = await createAdjoint({ baseUrl: `${locked.url}/`, apiKey: key }).grad({ expr: 'x', at: { x: 1 } });
      expect(withKey.gradient.x!.item()).toBe(1);
    } finally {
      await locked.app.close();
    }
  });

  it('grade: one result per submission, the right derivative passing and a half-done product rule failing', async () => {
    const graded = await adjoint.grade({
      reference: { expr: 'x * sin(x)' },
      submissions: [
        { id: 'right', answers: { derivative: { x: 'sin(x) + x*cos(x)' } } },
        { id: 'half', answers: { derivative: { x: 'x*cos(x)' } } },
      ],
    });
    if (graded.format !== 'native') throw new Error(`format ${graded.format}`);
    expect(graded.results.map((r) => [r.id, r.score])).toEqual([
      ['right', 1],
      ['half', 0],
    ]);
  });

  it('probe: central differences of an expression against its exact gradient, maps as Tensors', async () => {
    const x = [0.1, 0.7, -1.2];
    const answer = await adjoint.probe({ target: { expr: 'sum(sin(x))' }, at: x, method: 'central' });
    if (answer.method !== 'central') throw new Error(answer.method);
    expect(answer.gradient).toBeInstanceOf(Tensor);
    close(answer.gradient.data, x.map(Math.cos), 1e-6);
    close(answer.exact!.data, x.map(Math.cos), 1e-15);
    expect(answer.queries).toBe(2 * x.length + 1);
    // base64 maps decoded alike; a large input sent as base64.
    const big = Float64Array.from({ length: 5000 }, (_, i) => i / 5000);
    sent.length = 0;
    const encoded = await adjoint.probe({ target: { expr: 'sum(x^2)' }, at: big, method: 'spsa', budget: 20, encoding: 'base64' });
    expect(JSON.parse(sent[0]!).at).toMatchObject({ dtype: 'float64', shape: [5000] });
    if (encoded.method !== 'spsa') throw new Error(encoded.method);
    close(encoded.exact!.data, big.map((v) => 2 * v), 1e-15);
    const refused = await adjoint.probe({ target: { expr: 'sum(x' }, at: [1], method: 'central' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 400, code: 'parse_error' });
  });

  it('jobs: a Hessian submitted and waited for, decoded as /hessian answers', async () => {
    const job = await adjoint.submit('hessian', { expr: 'x @ M @ x', at: { x: [1, 2], M: [[1, 2], [3, 4]] }, wrt: ['x'] });
    expect(job).toMatchObject({ kind: 'compute', endpoint: 'hessian' });
    const { hessian } = await adjoint.wait(job);
    close(hessian.x!.x!.data, [2, 5, 5, 8]);
    expect((await adjoint.job(job.id)).state).toBe('succeeded');
    // A failed job throws its endpoint's problem; a request its schema refuses is refused at once.
    await expect(adjoint.wait(await adjoint.submit('grad', { expr: 'sin(x', at: { x: 1 } }))).rejects.toMatchObject({ code: 'parse_error', line: 1, column: 4 });
    // @ts-expect-error an encoding the service does not know
    const refused = await adjoint.submit('grad', { expr: 'x', at: { x: 1 }, encoding: 'hex' }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ status: 400, code: 'validation_error', path: 'request.encoding' });
  });

  // A probe that takes seconds: SPSA over 4000 coordinates.
  const slow = (budget: number) => ({ target: { expr: 'sum(tanh(x) * sin(x) + exp(-x^2))' }, at: Float64Array.from({ length: 4000 }, (_, i) => 0.001 * i), method: 'spsa' as const, budget });

  it('jobs: wait reports progress as it changes, fed by the events stream', { timeout: 120_000 }, async () => {
    const seen: JobView[] = [];
    const answer = await adjoint.run('probe', slow(1500), { onProgress: (job) => seen.push(job) });
    if (answer.method !== 'spsa') throw new Error(answer.method);
    expect(answer.gradient.shape).toEqual([4000]);
    const last = seen.at(-1)!;
    expect(last.state).toBe('succeeded');
    expect(last.progress).toMatchObject({ done: answer.queries, total: answer.queries });
    const done = seen.map((job) => job.progress.done);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(new Set(done).size).toBeGreaterThanOrEqual(2);
    const keys = seen.map((job) => JSON.stringify([job.state, job.progress]));
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('jobs: events until it has started, then cancel; wait throws JobCancelledError; an aborted run cancels its job', { timeout: 120_000 }, async () => {
    const job = await adjoint.submit('probe', slow(10_000));
    for await (const seen of adjoint.events(job)) if (seen.progress.done > 0) break;
    expect((await adjoint.cancel(job)).state).toBe('cancelled');
    const error = await adjoint.wait(job).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(JobCancelledError);
    expect((error as JobCancelledError).job.progress.done).toBeLessThan(10_000);

    const ids: string[] = [];
    const stop = new AbortController();
    const aborted = await adjoint
      .run('probe', slow(10_000), {
        signal: stop.signal,
        onProgress: (seen) => {
          ids.push(seen.id);
          if (seen.progress.done > 0) stop.abort();
        },
      })
      .catch((e: unknown) => e);
    expect(aborted).toMatchObject({ name: 'AbortError' });
    expect((await adjoint.job(ids[0]!)).state).toBe('cancelled');
  });

});

describe('the TypeScript client as code', () => {
  it('reads server-sent events however the bytes are split', async () => {
    const text = 'event: running\ndata: {"a":1}\n\n: a comment\r\nevent: succeeded\r\ndata: {"a":\r\ndata: 2}\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    for (const size of [1, 2, 3, 7, bytes.length]) {
      const chunks = Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));
      const stream = new ReadableStream<Uint8Array>({ start: (controller) => (chunks.forEach((c) => controller.enqueue(c)), controller.close()) });
      const events = [];
      for await (const event of serverSentEvents(stream)) events.push(event);
      expect(events, `chunks of ${size}`).toEqual([
        { event: 'running', data: '{"a":1}' },
        { event: 'succeeded', data: '{"a":\n2}' },
      ]);
    }
  });

  it("encodes and decodes base64 without Node's Buffer (as in a browser) exactly as Buffer does", async () => {
    const lengths = [0, 1, 2, 3, 4, 5, 17, 4096, 5001];
    const inputs = lengths.map((n) => Float64Array.from({ length: n }, (_, i) => (i % 7 === 3 ? Number.NaN : Math.sin(i + n) * 10 ** (i % 9))));
    const expected = inputs.map((x) => Buffer.from(x.buffer).toString('base64'));
    vi.stubGlobal('Buffer', undefined);
    vi.resetModules();
    try {
      const browser = await import('../../clients/typescript/src/index.js');
      for (const [k, x] of inputs.entries()) {
        const encoded = browser.encodeBase64(new browser.Tensor([x.length], x));
        expect(encoded.data, `${x.length} elements`).toBe(expected[k]);
        expect(Array.from(browser.toTensor(encoded).data)).toEqual(Array.from(x));
      }
      expect(() => browser.toTensor({ dtype: 'float64', shape: [1], data: 'AAAA*AAAAAA=' })).toThrow(/not base64 at character 4/);
      expect(() => browser.toTensor({ dtype: 'float64', shape: [1], data: 'AAAAAAAAAA' })).toThrow(/padded/);
    } finally {
      vi.unstubAllGlobals();
      vi.resetModules();
    }
  });

  it('its types are generated from openapi.yaml as it is (else `npm run generate -w clients/typescript`)', { timeout: 120_000 }, async () => {
    const { status, output } = await run(process.execPath, [`${clientDir}/scripts/generate.mjs`, '--check']);
    expect(status, output).toBe(0);
  });

  // TypeScript 5.9's tsc over the generated types: seconds, more on a busy machine.
  it('type-checks, and its type tests hold: typos, neither or both of expr|graph and at|points fail tsc', { timeout: 120_000 }, async () => {
    const { status, output } = await run(`${clientDir}/node_modules/.bin/tsc`, ['--noEmit', '-p', clientDir]);
    expect(status, output).toBe(0);
  });
});
