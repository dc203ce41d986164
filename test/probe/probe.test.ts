// POST /probe against models served on loopback by the test: the estimates, the query counts, the
// budget, the time limits and the retries.

import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../src/engine/random.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';
import { Bench, probeModel, type FakeModel, type Respond } from './fake-model.js';

const W = [0.5, -1.25, 2, 3.5, -0.75, 1e-3, 0, 7];
const B = 0.3;
const linear = (x: number[]) => x.reduce((s, xi, i) => s + W[i]! * xi, B);

interface Answer {
  method: string;
  value: number;
  gradient: number[];
  queries: number;
  stderr?: number[];
  directions?: number;
  scores?: number[];
  exact?: number[];
  cosine?: number;
  epsilon?: number;
  code?: string;
  detail?: string;
}

const probe = (app: App, model: FakeModel, request: Record<string, unknown>) => probeModel<Answer>(app, model, request);

const linearModel: Respond = (input) => ({ json: { logits: [linear(input as number[]), -1] } });

function cosine(a: number[], b: number[]): number {
  const dot = a.reduce((s, ai, i) => s + ai * b[i]!, 0);
  return dot / Math.sqrt(a.reduce((s, ai) => s + ai * ai, 0) * b.reduce((s, bi) => s + bi * bi, 0));
}

describe('the server-wide bound on outgoing queries', () => {
  const bench = new Bench();
  afterEach(() => bench.close());

  it('keeps at most PROBE_MAX_OUTGOING queries in flight across concurrent probes', async () => {
    let inFlight = 0;
    let most = 0;
    const slow: Respond = async (input) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 20));
      inFlight--;
      return { json: { logits: [linear(input as number[]), -1] } };
    };
    const { model, app } = await bench.serve(slow, { PROBE_MAX_OUTGOING: 3, PROBE_MAX_CONCURRENCY: 8 });
    const at = [1, 2, 3, 4];
    const [a, b] = await Promise.all([
      probe(app, model, { at, method: 'central', concurrency: 8 }),
      probe(app, model, { at, method: 'central', concurrency: 8 }),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(a.answer.gradient.map((g) => Number(g.toFixed(6)))).toEqual(W.slice(0, 4));
    expect(most).toBeLessThanOrEqual(3);
    expect(most).toBeGreaterThan(1);
  });
});

describe('POST /probe: estimates from an HTTP model', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const at = [1, -2, 0.5, 3, 100, -1e-4, 7, 0];

  it('central differences recover a linear model’s weights to rounding, in 2n + 1 queries', async () => {
    const { model, app } = await bench.serve(linearModel);
    const { status, answer } = await probe(app, model, { at, method: 'central' });
    expect(status).toBe(200);
    expect(answer.method).toBe('central');
    expect(answer.value).toBeCloseTo(linear(at), 12);
    answer.gradient.forEach((g, i) => expect(Math.abs(g - W[i]!)).toBeLessThan(1e-9));
    expect(answer.queries).toBe(2 * at.length + 1);
    expect(model.requests).toBe(answer.queries);
    expect(answer.stderr).toBeUndefined();
  });

  it('forward differences take n + 1 queries', async () => {
    const { model, app } = await bench.serve(linearModel);
    const { answer } = await probe(app, model, { at, method: 'forward', epsilon: 1e-4 });
    answer.gradient.forEach((g, i) => expect(Math.abs(g - W[i]!)).toBeLessThan(1e-8));
    expect(answer).toMatchObject({ queries: at.length + 1, epsilon: 1e-4 });
    expect(model.requests).toBe(at.length + 1);
  });

  it('spsa and nes are unbiased on a linear model: the mean over seeds is the gradient', async () => {
    const { model, app } = await bench.serve(linearModel);
    const seeds = 150;
    for (const method of ['spsa', 'nes']) {
      const sum = new Array<number>(W.length).fill(0);
      const sumSq = new Array<number>(W.length).fill(0);
      for (let seed = 0; seed < seeds; seed++) {
        const { answer } = await probe(app, model, { at, method, seed, budget: 5, concurrency: 2 });
        expect(answer).toMatchObject({ queries: 5, directions: 2 });
        answer.gradient.forEach((g, i) => {
          sum[i]! += g;
          sumSq[i]! += g * g;
        });
      }
      W.forEach((w, i) => {
        const mean = sum[i]! / seeds;
        const standardError = Math.sqrt((sumSq[i]! / seeds - mean * mean) / (seeds - 1));
        expect(Math.abs(mean - w), `${method} coordinate ${i}`).toBeLessThan(4 * standardError + 1e-9);
      });
    }
    expect(model.requests).toBe(2 * seeds * 5);
  });

  it('random estimators get closer with the budget, and say how uncertain they are', async () => {
    const n = 40;
    const random = new Random(7);
    const w = Array.from({ length: n }, () => random.normal());
    const x = Array.from({ length: n }, () => random.normal());
    const { model, app } = await bench.serve((input) => ({ json: { logits: [(input as number[]).reduce((s, xi, i) => s + w[i]! * xi, 0)] } }));
    for (const method of ['spsa', 'nes']) {
      const meanCosine: number[] = [];
      const meanStderr: number[] = [];
      for (const budget of [11, 81, 801]) {
        let c = 0;
        let s = 0;
        for (const seed of [1, 2, 3]) {
          const { answer } = await probe(app, model, { at: x, method, seed, budget, concurrency: 8 });
          expect(answer.queries).toBeLessThanOrEqual(budget);
          c += cosine(answer.gradient, w) / 3;
          s += answer.stderr!.reduce((a, b) => a + b, 0) / n / 3;
        }
        meanCosine.push(c);
        meanStderr.push(s);
      }
      expect(meanCosine[0]).toBeLessThan(meanCosine[1]!);
      expect(meanCosine[1]).toBeLessThan(meanCosine[2]!);
      expect(meanCosine[2]).toBeGreaterThan(0.9);
      expect(meanStderr[0]).toBeGreaterThan(meanStderr[1]!);
      expect(meanStderr[1]).toBeGreaterThan(meanStderr[2]!);
    }
  });

  it('gives the same answer for the same seed, whatever the concurrency', async () => {
    const { model, app } = await bench.serve(linearModel);
    const one = await probe(app, model, { at, method: 'nes', seed: 5, budget: 41, concurrency: 1 });
    const many = await probe(app, model, { at, method: 'nes', seed: 5, budget: 41, concurrency: 8 });
    expect(many.answer).toEqual(one.answer);
  });

  it('differentiates the logit `output` names, and asks for it when there are several', async () => {
    const { model, app } = await bench.serve((input) => {
      const x = input as number[];
      return { json: { scores: { logits: [[x[0]! * x[1]!, 3 * x[0]!]] } } };
    });
    const target = { url: model.url, body: { input: '$input' }, outputPath: '/scores/logits' };
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target, at: [2, 5], method: 'central', output: 1 } });
    expect(response.json()).toMatchObject({ value: 6, gradient: [expect.closeTo(3, 9), expect.closeTo(0, 9)] });
    const missing = await app.inject({ method: 'POST', url: '/probe', payload: { target, at: [2, 5], method: 'central' } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ code: 'validation_error', errors: [{ path: 'output' }], queries: 1 });
    const outOfRange = await app.inject({ method: 'POST', url: '/probe', payload: { target, at: [2, 5], method: 'central', output: 2 } });
    expect(outOfRange.json()).toMatchObject({ code: 'validation_error', detail: expect.stringMatching(/from 0 to 1/) });
  });

  it('sends the method, headers and body template it is given', async () => {
    const seen: { method?: string; auth?: string; body?: unknown }[] = [];
    const { model, app } = await bench.serve((input, { body, request }) => {
      seen.push({ method: request.method, auth: request.headers.authorization, body });
      return { json: { out: (input as number[])[0] } };
    });
    const target = { url: model.url, method: 'PUT', headers: { Authorization: 'Bearer t' }, body: { input: '$input', model: 'm1', $input: 'key' }, outputPath: '/out' };
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target, at: [4], method: 'forward' } });
    expect(response.statusCode).toBe(200);
    expect(seen[0]).toEqual({ method: 'PUT', auth: 'Bearer t', body: { input: [4], model: 'm1', $input: 'key' } });
    const reserved = await app.inject({ method: 'POST', url: '/probe', payload: { target: { ...target, headers: { Host: 'x' } }, at: [4], method: 'forward' } });
    expect(reserved.statusCode).toBe(400);
  });
});

describe('POST /probe: budgets, time limits, retries and failures', () => {
  const bench = new Bench();
  afterEach(() => bench.close());

  it('refuses a plan the budget cannot pay for, before sending anything', async () => {
    const { model, app } = await bench.serve(linearModel);
    const { status, answer } = await probe(app, model, { at: [1, 2, 3], method: 'central', budget: 6 });
    expect(status).toBe(422);
    expect(answer).toMatchObject({ code: 'limit_exceeded', detail: expect.stringMatching(/need 7 queries, more than the budget of 6/) });
    const tooBig = await probe(app, model, { at: [1], method: 'central', budget: 10_001 });
    expect(tooBig.answer.detail).toMatch(/PROBE_MAX_BUDGET of 10000/);
    expect(model.requests).toBe(0);
  });

  it('bounds the elements one probe may send (input size × budget)', async () => {
    const app = buildTestApp({ PROBE_MAX_ELEMENTS: 1000 });
    const response = await app.inject({ method: 'POST', url: '/probe', payload: { target: { expr: 'sum(x)' }, at: new Array(30).fill(1), method: 'central' } });
    expect(response.statusCode).toBe(422);
    expect(response.json()).toMatchObject({ code: 'limit_exceeded', detail: expect.stringMatching(/30 input elements × a budget of 68 queries .* PROBE_MAX_ELEMENTS of 1000/) });
    await app.close();
  });

  it('keeps `queries` within the budget, retries included', async () => {
    // Every answer is 429 without Retry-After: the first query may only be retried while the
    // retries leave the planned queries their budget.
    const { model, app } = await bench.serve(() => ({ status: 429, json: { error: 'slow down' } }));
    const { status, answer } = await probe(app, model, { at: [1, 2], method: 'spsa', budget: 7 });
    expect(status).toBe(502);
    // spsa plans 5 queries (2 directions); 2 retries fit in a budget of 7.
    expect(answer).toMatchObject({ code: 'probe_target_error', queries: 3 });
    expect(answer.detail).toMatch(/answered 429, and the budget of 7 queries leaves no room/);
    expect(model.requests).toBe(3);
  });

  it('retries a 429, honouring Retry-After, and counts the retry', async () => {
    const { model, app } = await bench.serve((input, { count }) =>
      count === 2 ? { status: 429, headers: { 'retry-after': '1' }, json: {} } : { json: { logits: [linear(input as number[])] } },
    );
    const started = Date.now();
    const { status, answer } = await probe(app, model, { at: [1, 2], method: 'central', concurrency: 1 });
    const elapsed = Date.now() - started;
    expect(status).toBe(200);
    expect(answer.gradient).toEqual([expect.closeTo(W[0]!, 9), expect.closeTo(W[1]!, 9)]);
    expect(answer.queries).toBe(6);
    expect(model.requests).toBe(6);
    expect(elapsed).toBeGreaterThanOrEqual(950);
  });

  it('gives up at once when Retry-After would pass the probe’s time limit', async () => {
    // Waiting would mean waiting for the 20 s time limit; "at once" is generous on a loaded machine.
    const { model, app } = await bench.serve(() => ({ status: 429, headers: { 'retry-after': '60' }, json: {} }), { PROBE_MAX_DURATION_MS: 20_000 });
    const started = Date.now();
    const { status, answer } = await probe(app, model, { at: [1], method: 'forward' });
    expect(status).toBe(502);
    expect(answer).toMatchObject({ queries: 1, detail: expect.stringMatching(/answered 429; waiting 60 s .* time limit/) });
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('retries a 503 with backoff, and gives up with 502 after a few tries', async () => {
    const { model, app } = await bench.serve((input, { count }) => (count <= 2 ? { status: 503, json: {} } : { json: { logits: [linear(input as number[])] } }));
    const ok = await probe(app, model, { at: [1], method: 'forward' });
    expect(ok.status).toBe(200);
    expect(ok.answer.queries).toBe(4);
    await bench.close();

    const down = await bench.serve(() => ({ status: 503, json: {} }));
    const failed = await probe(down.app, down.model, { at: [1], method: 'forward', budget: 100 });
    expect(failed.status).toBe(502);
    expect(failed.answer).toMatchObject({ code: 'probe_target_error', queries: 5, detail: 'The target answered 503 5 times in a row' });
    expect(down.model.requests).toBe(5);
  });

  it('gives 504 probe_timeout at timeoutMs when the target is slow, not when it answers', async () => {
    const { model, app } = await bench.serve((input, { count }) => ({ delayMs: count === 1 ? 0 : 30_000, json: { logits: [linear(input as number[])] } }));
    const started = Date.now();
    // Seconds: the first query (answered at once) must not time out on a loaded machine.
    const { status, answer } = await probe(app, model, { at: [1, 2, 3], method: 'central', timeoutMs: 2000, concurrency: 2 });
    const elapsed = Date.now() - started;
    expect(status).toBe(504);
    expect(answer).toMatchObject({ code: 'probe_timeout', detail: expect.stringMatching(/within timeoutMs = 2000 ms/) });
    // The value, then two queries in flight when the first timed out (the other is aborted).
    expect(answer.queries).toBe(3);
    expect(model.requests).toBe(3);
    // Well before the 30 s the target takes ("about timeoutMs" is a benchmark's business).
    expect(elapsed).toBeGreaterThanOrEqual(2000);
    expect(elapsed).toBeLessThan(12_000);
  });

  it('stops a whole probe at PROBE_MAX_DURATION_MS', async () => {
    const sum = (x: number[]) => x.reduce((a, b) => a + b, 0);
    // 41 queries one at a time, 500 ms each: the whole probe would take 20 s.
    const { app, model } = await bench.serve((input) => ({ delayMs: 500, json: { logits: [sum(input as number[])] } }), { PROBE_MAX_DURATION_MS: 300 });
    const started = Date.now();
    // timeoutMs as long as the whole probe: the probe's deadline (from its arrival) comes first.
    const { status, answer } = await probe(app, model, { at: new Array(20).fill(1), method: 'central', concurrency: 1, timeoutMs: 300 });
    expect(status, JSON.stringify(answer)).toBe(504);
    expect(answer.detail).toMatch(/PROBE_MAX_DURATION_MS = 300 ms/);
    expect(answer.queries).toBe(model.requests);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('stops querying when the client hangs up', async () => {
    const { model, app } = await bench.serve((input) => ({ delayMs: 30, json: { logits: [(input as number[])[0]!] } }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const payload = { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, at: new Array(20).fill(1), method: 'central', concurrency: 1 };
    const sent = request(`http://127.0.0.1:${port}/probe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(200),
    });
    await expect(sent).rejects.toThrow();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const afterHangUp = model.requests;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(model.requests).toBe(afterHangUp);
    expect(afterHangUp).toBeLessThan(41);
  });

  it.each([
    ['an error status', { status: 500, json: { error: 'boom' } }, /answered HTTP 500/],
    ['a non-JSON answer', { headers: { 'content-type': 'text/html' }, raw: '<html>' }, /answered text\/html, not JSON/],
    ['invalid JSON', { raw: '{"logits": [1' }, /not valid JSON/],
    ['an answer too large', { json: { logits: [1], padding: 'x'.repeat(5000) } }, /larger than PROBE_MAX_RESPONSE_BYTES = 1000 bytes/],
    ['nothing at outputPath', { json: { other: 1 } }, /nothing at outputPath "\/logits\/0"/],
    ['a logit that is not a number', { json: { logits: ['high'] } }, /not a finite number/],
  ])('answers 502 probe_target_error for %s, with the queries spent', async (_name, reply, detail) => {
    const { model, app } = await bench.serve(() => reply, { PROBE_MAX_RESPONSE_BYTES: 1000 });
    const { status, answer } = await probe(app, model, { at: [1, 2], method: 'central' });
    expect(status).toBe(502);
    expect(answer).toMatchObject({ code: 'probe_target_error', queries: 1, detail: expect.stringMatching(detail) });
    expect(model.requests).toBe(1);
  });

  it('caps concurrency at PROBE_MAX_CONCURRENCY', async () => {
    let inFlight = 0;
    let most = 0;
    const { model, app } = await bench.serve(
      async (input) => {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 10));
        inFlight--;
        return { json: { logits: [(input as number[])[0]!] } };
      },
      { PROBE_MAX_CONCURRENCY: 3 },
    );
    const { status } = await probe(app, model, { at: new Array(8).fill(1), method: 'central', concurrency: 50 });
    expect(status).toBe(200);
    expect(most).toBe(3);
  });
});

describe('POST /probe: occlusion', () => {
  const bench = new Bench();
  afterEach(() => bench.close());
  const words: Record<string, number> = { brilliant: 3, great: 2, dull: -2.5, awful: -4 };
  const bagOfWords: Respond = (input) => ({ json: { logits: [(input as string[]).reduce((s, t) => s + (words[t] ?? 0), 0.1)] } });

  it('singles out the words that drive a bag-of-words scorer', async () => {
    const { model, app } = await bench.serve(bagOfWords);
    const tokens = 'the acting was brilliant but the plot was awful and a bit long'.split(' ');
    const { status, answer } = await probe(app, model, { at: tokens, method: 'occlusion' });
    expect(status).toBe(200);
    expect(answer.method).toBe('occlusion');
    expect(answer.value).toBeCloseTo(-0.9, 12);
    expect(answer.queries).toBe(tokens.length + 1);
    expect(model.requests).toBe(tokens.length + 1);
    const ranked = tokens.map((t, i) => [t, answer.scores![i]!] as const).sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]));
    expect(ranked.slice(0, 2)).toEqual([
      ['awful', -4],
      ['brilliant', expect.closeTo(3, 12)],
    ]);
    expect(ranked.slice(2).every(([, s]) => Math.abs(s) < 1e-12)).toBe(true);
  });

  it('replaces a token by `mask` when given', async () => {
    const seen: string[][] = [];
    const { model, app } = await bench.serve((input, received) => {
      seen.push(input as string[]);
      return bagOfWords(input, received);
    });
    const { answer } = await probe(app, model, { at: ['great', 'film'], method: 'occlusion', mask: '[UNK]' });
    expect(answer.scores).toEqual([expect.closeTo(2, 12), 0]);
    expect(seen.slice(1).sort()).toEqual([
      ['[UNK]', 'film'],
      ['great', '[UNK]'],
    ]);
  });

  it('needs tokens', async () => {
    const { model, app } = await bench.serve(bagOfWords);
    const { status, answer } = await probe(app, model, { at: [[1, 2]], method: 'occlusion' });
    expect(status).toBe(400);
    expect(answer.detail).toMatch(/array of tokens/);
  });
});

describe('POST /probe: an expression as the black box', () => {
  let app: App;
  beforeAll(() => {
    app = buildTestApp();
  });
  afterAll(() => app.close());

  const post = (payload: Record<string, unknown>) => app.inject({ method: 'POST', url: '/probe', payload });

  it('answers the exact gradient and the cosine of the estimate to it', async () => {
    const response = await post({ target: { expr: 'w = [1, -2, 3]; sum(w * x) + 5' }, at: [0.5, 1, 2], method: 'central' });
    expect(response.statusCode).toBe(200);
    const answer = response.json() as Answer;
    expect(answer.exact).toEqual([1, -2, 3]);
    answer.gradient.forEach((g, i) => expect(g).toBeCloseTo([1, -2, 3][i]!, 9));
    expect(answer.cosine).toBeCloseTo(1, 12);
    expect(answer).toMatchObject({ value: 9.5, queries: 7 });
  });

  it('uses float64 steps on an exact target: central differences agree to about 1e-10', async () => {
    const response = await post({ target: { expr: 'sum(tanh([[1, 2, -1], [0.5, -0.3, 2]] @ x))' }, at: [0.1, -0.4, 0.7], method: 'central' });
    const answer = response.json() as Answer;
    const err = Math.sqrt(answer.gradient.reduce((s, g, i) => s + (g - answer.exact![i]!) ** 2, 0) / answer.exact!.reduce((s, e) => s + e * e, 0));
    expect(err).toBeLessThan(1e-9);
    expect(answer.epsilon).toBeCloseTo(Math.cbrt(Number.EPSILON), 20);
  });

  it('differentiates one logit of a vector output', async () => {
    const response = await post({ target: { expr: 'W = [[1, 2], [3, -1]]; tanh(W @ x)' }, at: [0.1, 0.2], method: 'spsa', output: 1, budget: 201 });
    const answer = response.json() as Answer;
    const t = Math.tanh(0.3 - 0.2);
    expect(answer.exact![0]).toBeCloseTo(3 * (1 - t * t), 12);
    expect(answer.exact![1]).toBeCloseTo(-(1 - t * t), 12);
    expect(answer.cosine).toBeGreaterThan(0.9);
    expect(answer.queries).toBe(181);
  });

  it('writes its maps as base64 arrays with "encoding": "base64", the same bits as the nested ones', async () => {
    const decode = (v: { dtype: string; shape: number[]; data: string }) => {
      expect(v.dtype).toBe('float64');
      const bytes = Buffer.from(v.data, 'base64');
      return { shape: v.shape, values: [...new Float64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8)] };
    };
    const image = { shape: [2, 3], patch: [1, 2], stride: [1, 1] };
    for (const request of [
      { target: { expr: 'W = [[1, 2, 0], [3, -1, 2]]; tanh(W @ x)' }, at: [0.1, 0.2, -0.3], method: 'nes', output: 1, budget: 101, seed: 4 },
      { target: { expr: 'sum(x * x)' }, at: [[1, 2, 3], [4, 5, 6]], method: 'occlusion', image },
      { target: { expr: 'sum(x * x * x)' }, at: [[1, 2, 3], [4, 5, 6]], method: 'central', image },
    ]) {
      const json = (await post(request)).json() as Record<string, unknown>;
      const base64 = (await post({ ...request, encoding: 'base64' })).json() as Record<string, unknown>;
      const maps = ['gradient', 'stderr', 'exact', 'scores'].filter((key) => key in json);
      expect(maps.length, JSON.stringify(json)).toBeGreaterThan(0);
      for (const key of maps) {
        const { shape, values } = decode(base64[key] as never);
        const nested = json[key] as number[] | number[][];
        expect(shape, key).toEqual(Array.isArray(nested[0]) ? [nested.length, (nested[0] as number[]).length] : [nested.length]);
        expect(values, key).toEqual(nested.flat());
      }
      const rest = (answer: Record<string, unknown>) => Object.fromEntries(Object.entries(answer).filter(([key]) => !maps.includes(key)));
      expect(rest(base64)).toEqual(rest(json));
    }
  });

  it('needs a function of exactly one input', async () => {
    const response = await post({ target: { expr: 'x * y' }, at: [1], method: 'central' });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'validation_error', errors: [{ path: 'target.expr' }], detail: expect.stringMatching(/reads 2 inputs \(x, y\)/) });
    const parse = await post({ target: { expr: '1 +' }, at: [1], method: 'central' });
    expect(parse.json()).toMatchObject({ code: 'parse_error', position: { line: 1, column: 4 } });
  });

  it('occludes numeric tokens too', async () => {
    const response = await post({ target: { expr: 'sum(x ^ 2)' }, at: [1, 2, 3], method: 'occlusion' });
    expect(response.json()).toMatchObject({ scores: [1, 4, 9], queries: 4, value: 14 });
  });

  it('refuses a non-finite point and a bad `at`', async () => {
    expect((await post({ target: { expr: 'x' }, at: ['NaN'], method: 'central' })).statusCode).toBe(400);
    expect((await post({ target: { expr: 'x' }, at: [], method: 'central' })).statusCode).toBe(400);
    expect((await post({ target: { expr: 'x' }, at: [[1], [2, 3]], method: 'central' })).statusCode).toBe(400);
  });
});
