// POST /probe (README "Black-box probing"): gradient estimates of a black-box model from queries alone.

import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { BASES, PRIORS } from '../src/probe/directions.js';
import { HEADER_NAME, HEADER_VALUE } from '../src/probe/headers.js';
import { DEFAULT_CONCURRENCY, PROBE_METHODS, type ProbeAnswer } from '../src/probe/probe.js';
import { DEFAULT_SAMPLES } from '../src/probe/plan.js';
import { problemResponses } from '../src/service/problem.js';
import { sendAnswer } from './answer.js';
import { EncodingSchema, ValueSchema } from './schemas.js';

export const PROBING_TAG = 'probing';

const TokenSchema = z.union([z.string(), z.number()]);

const HttpTargetSchema = z
  .object({
    url: z.string().min(1).max(4096).describe('An http(s) URL whose origin is in the server’s PROBE_ALLOWED_ORIGINS'),
    method: z.enum(['POST', 'PUT', 'PATCH']).optional().describe('The HTTP method (default POST)'),
    headers: z
      .record(
        z.string().regex(HEADER_NAME, { error: 'is not a valid header name (RFC 9110 token: letters, digits and !#$%&\'*+-.^_`|~)' }),
        z.string().regex(HEADER_VALUE, { error: 'is not a valid header value: visible ASCII characters, with spaces and tabs only between them (RFC 9110 field value)' }),
      )
      .optional()
      .describe(
        'Extra request headers (not the framing ones: host, content-length, ...). Names are RFC 9110 tokens; values are visible ASCII, with spaces and tabs only between visible characters (no control characters, no bytes ≥ 0x80)',
      ),
    body: z.unknown().describe('A JSON template: every string value "$input" is replaced by the (perturbed) input'),
    outputPath: z.string().describe('An RFC 6901 JSON pointer to the logits in the JSON answer ("/logits"; "" is the whole answer)'),
  })
  .meta({ id: 'ProbeHttpTarget', description: 'A model behind an HTTP endpoint' });

const ExprTargetSchema = z
  .object({
    expr: z.string().min(1).describe('A function of exactly one input (the expression language), only ever evaluated'),
  })
  .meta({ id: 'ProbeExprTarget', description: 'A local function treated as a black box; the answer then carries `exact` and `cosine`' });

const PairSchema = z.tuple([z.int().min(1), z.int().min(1)]);

const ImageSchema = z
  .object({
    shape: z.array(z.int().min(1)).min(2).max(3).describe('[H, W], or [H, W, C] / [C, H, W] as `layout` says; its product must be the number of elements of `at`'),
    layout: z.enum(['hwc', 'chw']).optional().describe('For a 3-D shape: channels last (hwc, the default) or first (chw)'),
    patch: PairSchema.optional().describe('[height, width] of the groups: occlusion and grouped forward/central differences perturb one patch (every channel) at a time (default [1, 1]: pixel by pixel)'),
    stride: PairSchema.optional().describe('How far the patch window moves (default: the patch, so patches tile the image); a last window flush with the far edge is added so every pixel is covered'),
    baseline: z
      .union([z.enum(['zero', 'mean', 'blur']), z.number()])
      .optional()
      .describe('occlusion: what replaces a group — zero (default), a number, the image’s mean per channel, or a blurred copy (box blur with the patch as window)'),
    range: z.tuple([z.number(), z.number()]).optional().describe('The pixels’ value range [lo, hi]; steps are epsilon·(hi − lo) (default [0, 1] when the pixels lie in it, else [0, 255] when they do, else their min and max)'),
  })
  .meta({ id: 'ProbeImage', description: 'Declares `at` an image: occlusion and forward/central differences then work on groups of pixels, and the answer is a map in the image’s shape' });

const ProbeRequestSchema = z.object({
  target: z.union([HttpTargetSchema, ExprTargetSchema]),
  at: z.unknown().meta({
    description: 'The input: a Value (number, nested array or EncodedArray; with `image`, the pixels), or for occlusion and shapley an array of tokens (strings or token ids)',
    anyOf: [{ $ref: '#/components/schemas/Value' }, { type: 'array', items: { type: ['string', 'number'] }, minItems: 1 }],
  }),
  method: z
    .enum(PROBE_METHODS)
    .describe(
      'forward/central: finite differences (n or 2n queries, +1 for the value); spsa (Rademacher) / nes (Gaussian): antithetic random directions within the budget; occlusion: each token’s score is f(tokens) − f(tokens without it), or with image each patch’s or segment’s drop; shapley: tokens’ Shapley values by antithetic permutation sampling',
    ),
  output: z.int().min(0).optional().describe('The index of the logit to differentiate when the target answers several (row-major)'),
  epsilon: z
    .number()
    .positive()
    .optional()
    .describe('Relative step: coordinate i moves by epsilon·max(1, |x_i|) (default: forward 1e-3, central 1e-2, spsa and nes 1e-3, chosen for float32 logits; see docs/probing.md)'),
  budget: z
    .int()
    .min(1)
    .optional()
    .describe(
      'Most queries to send, retries included (default: 2n + 1, what central needs, plus a tenth (at least 4) for retries; occlusion: m + 1 plus the same reserve; at most PROBE_MAX_BUDGET)',
    ),
  directions: z.int().min(2).optional().describe('spsa/nes: random directions (2 queries each); default max(2, ⌊0.45·(budget − 1)⌋)'),
  concurrency: z.int().min(1).optional().describe(`Queries in flight at once (default ${DEFAULT_CONCURRENCY}, at most PROBE_MAX_CONCURRENCY)`),
  timeoutMs: z.int().min(1).optional().describe('Time limit of each query in ms (default PROBE_DEFAULT_TIMEOUT_MS)'),
  seed: z.int().optional().describe('Seed of the random directions (default 0): the same request gives the same answer'),
  mask: TokenSchema.optional().describe('occlusion and shapley: replace each token by this one instead of removing it'),
  samples: z
    .int()
    .min(2)
    .optional()
    .describe(
      `shapley: permutations to sample, in antithetic pairs (a permutation and its reverse); each costs at most m − 1 queries for m tokens, plus 2 in all (default ${DEFAULT_SAMPLES}, or as many as about 0.9 of budget pays for)`,
    ),
  image: ImageSchema.optional(),
  encoding: EncodingSchema.describe(
    'How the answer writes its maps — gradient, stderr (spsa/nes), exact, and an image’s occlusion scores: json (default) nested arrays, or base64 EncodedArrays {dtype, shape, data} with their exact float64 bits. Token scores and Shapley values stay lists of numbers',
  ),
  format: z
    .enum(['json', 'png'])
    .optional()
    .describe(
      'png (with image): the map also as a picture — a heat map over the image drawn as paper and ink (the low end of image.range is paper), diverging (blue–white–red, ±max) for gradients, sequential (yellow–red, 0 to max) for occlusion unless a drop is below −1% of the largest (then diverging), with a colour bar labelled with its numbers — answered as image/png when Accept asks for image/png (before application/json), else as base64 in the JSON answer’s `png`',
    ),
  noise: z
    .object({
      repeats: z.int().min(2).describe('Queries of f(x), the first included (counted in the budget)'),
      curvature: z
        .number()
        .positive()
        .optional()
        .describe('|f′′| (forward) or |f′′′| (central, spsa, nes) relative to the coordinates’ scale (default 1)'),
    })
    .optional()
    .describe(
      'forward/central/spsa/nes: ask f(x) `repeats` times, estimate the output noise σ from their spread, and take the step minimising truncation + noise error: forward 2√(σ/curvature), central, spsa and nes (3σ/curvature)^(1/3), never below the default step nor above 0.1 (an explicit epsilon is kept; see docs/probing.md)',
    ),
  basis: z
    .enum(BASES)
    .optional()
    .describe(
      'spsa/nes: where directions are drawn — pixel (default: every coordinate), lowres (one per cell of image.patch, default 4×4, and channel, spread over the cell) or dct (as many of the lowest 2-D DCT frequencies); lowres and dct need image and estimate the gradient’s projection on the basis',
    ),
  prior: z
    .enum(PRIORS)
    .optional()
    .describe(
      'spsa/nes: none (default) averages the directions’ estimates; time takes them in turn, each correcting the running estimate only by what it does not yet explain (a bandit-style update, the randomized Kaczmarz iteration; no stderr)',
    ),
  segments: ValueSchema.optional().describe(
    'With image: an integer label per pixel (H × W, nested, flat or base64), e.g. superpixels; each label is one group, instead of image.patch',
  ),
});

const pictureFields = {
  png: z.string().optional().describe('format png: the picture, base64 of the PNG bytes'),
  colourScale: z
    .object({ kind: z.enum(['diverging', 'sequential']), min: z.number(), max: z.number() })
    .optional()
    .describe('format png: the colour bar’s scale — the values at its bottom and top (a pixel’s value is the map summed over its channels)'),
};

export const GradientAnswerSchema = z.object({
  method: z.enum(['forward', 'central', 'spsa', 'nes']),
  value: z.number().describe('The logit at `at`'),
  gradient: ValueSchema.describe('The estimated gradient, in the shape of `at`'),
  queries: z.int().describe('Requests sent to the target, retries included (never more than the budget)'),
  epsilon: z.number().describe('The relative step used'),
  stderr: ValueSchema.optional().describe('spsa/nes: per-coordinate standard error of the estimate'),
  directions: z.int().optional().describe('spsa/nes: random directions used'),
  exact: ValueSchema.optional().describe('expr targets: the exact gradient by reverse mode'),
  cosine: z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).optional().describe('expr targets: cosine similarity of the estimate to the exact gradient'),
  groups: z.int().optional().describe('forward/central on an image: groups perturbed (a pixel’s estimate is the mean slope of the groups covering it)'),
  basis: z.object({ name: z.enum(BASES), size: z.int() }).optional().describe('spsa/nes: the basis of the directions and its number of functions'),
  prior: z.enum(PRIORS).optional().describe('spsa/nes: how the directions were combined'),
  ...pictureFields,
  noise: z
    .object({ repeats: z.int(), sigma: z.number(), curvature: z.number() })
    .optional()
    .describe('With noise: f(x) was asked `repeats` times (`value` is their mean), `sigma` their standard deviation; `epsilon` is the step chosen from it'),
}).meta({
  // The answer to the request's example (rounded): what Swagger UI (/docs) shows.
  examples: [{ method: 'central', value: 0.0996679946, gradient: [2.9701988722, -0.9900662908], queries: 5, epsilon: 0.0000060555, exact: [2.9701988725, -0.9900662908], cosine: 1 }],
});

export const OcclusionAnswerSchema = z.object({
  method: z.literal('occlusion'),
  value: z.number().describe('The logit for all tokens'),
  scores: ValueSchema.describe(
    'Per token: f(tokens) − f(tokens without it); a token that raises the logit scores high. For an image: per element, in its shape, the mean drop f(x) − f(x with the group replaced by the baseline) over the groups covering it',
  ),
  queries: z.int(),
  groups: z.int().optional().describe('An image: groups occluded'),
  ...pictureFields,
});

const NumberOrNaN = z.union([z.number(), z.literal('NaN')]);


export const ShapleyAnswerSchema = z.object({
  method: z.literal('shapley'),
  value: z.number().describe('The logit for all tokens'),
  scores: z.array(z.number()).describe('Per token: its Shapley value, the mean over sampled permutations of f(tokens before it and it) − f(tokens before it)'),
  stderr: z.array(NumberOrNaN).describe('Per token: standard error over the antithetic pairs of permutations ("NaN" with one pair)'),
  samples: z.int().describe('Permutations sampled (each with its reverse)'),
  baselineValue: z.number().describe('The logit with no token present (all removed, or all replaced by mask)'),
  efficiency: z
    .object({ sum: z.number(), expected: z.number(), gap: z.number() })
    .describe('The scores add up to value − baselineValue: their sum, that difference, and sum − expected (rounding only)'),
  cacheHits: z.int().describe('Coalitions met again and read from the probe’s cache instead of queried'),
  queries: z.int(),
});

/**
 * Who asks, for PROBE_CLIENT_QUERIES_PER_MINUTE: the API key's id when the request carried one
 * (`request.apiKeyId`, set by src/service/access.ts), else the client's address (as TRUST_PROXY
 * reads it). The one place that decides who a probing client is.
 */
export function probeClientOf(request: Pick<FastifyRequest, 'apiKeyId' | 'ip'>): string {
  return request.apiKeyId === undefined ? `ip:${request.ip}` : `key:${request.apiKeyId}`;
}

/** Sends bytes as they are: Fastify never serialises a Buffer, whatever the route's JSON answer schema says. */
function sendBytes(reply: FastifyReply, bytes: Buffer): FastifyReply {
  return reply.send(bytes);
}

/** Whether an Accept header asks for image/png at least as much as for JSON (a bare wildcard does not ask for a picture). */
export function prefersPng(accept: string | undefined): boolean {
  if (accept === undefined) return false;
  const quality = (type: string) => {
    for (const part of accept.split(',')) {
      const [range, ...parameters] = part.trim().split(';');
      if (range!.trim().toLowerCase() !== type) continue;
      const q = parameters.map((p) => p.trim().match(/^q=([0-9.]+)$/)).find((m) => m !== null);
      return q ? Number(q[1]) : 1;
    }
    return 0;
  };
  const png = quality('image/png');
  return png > 0 && png >= quality('application/json');
}

const probe: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/probe',
    {
      schema: {
        operationId: 'probe',
        tags: [PROBING_TAG],
        summary: 'Estimate the gradient of a black-box model from queries alone',
        body: ProbeRequestSchema.meta({
          examples: [{ target: { expr: 'W = [[1, 2], [3, -1]]; tanh(W @ x)' }, at: [0.1, 0.2], method: 'central', output: 1 }],
        }),
        response: {
          200: {
            description:
              'The estimated gradient (or the occlusion or Shapley scores) and the queries spent. With format png and an Accept header preferring image/png, the answer is instead the PNG itself (image/png), with the queries spent in x-probe-queries and the colour bar’s ends in x-colour-scale ("min,max")',
            content: {
              'application/json': { schema: z.union([GradientAnswerSchema, OcclusionAnswerSchema, ShapleyAnswerSchema]) },
              'image/png': { schema: z.string().meta({ format: 'binary', description: 'The picture of `format: "png"`, when the Accept header prefers image/png' }) },
            },
          },
          ...problemResponses(400, 403, 413, 415, 422, 429, 502, 503, 504),
        },
      },
    },
    async (request, reply) => {
      // A client that hangs up stops the probe: no more queries on its behalf.
      const cancel = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) cancel.abort();
      });
      const started = performance.now();
      // The probe's deadline counts from the request's arrival, body upload and parsing included.
      const receivedAt = Date.now() - reply.elapsedTime;
      const draft = await app.prober.draft(request.body, { signal: cancel.signal, client: probeClientOf(request), receivedAt });
      const { method, queries } = draft.fields;
      request.log.info({ method, queries, ms: Math.round(performance.now() - started) }, 'probe');
      // The picture is drawn, and a large answer written and serialised, on a worker thread.
      if (draft.picture !== undefined && prefersPng(request.headers.accept)) {
        const { png, colourScale } = await app.prober.draw(draft.picture);
        reply.type('image/png').headers({ 'x-probe-queries': String(queries), 'x-colour-scale': `${colourScale.min},${colourScale.max}`, 'x-content-type-options': 'nosniff' });
        return sendBytes(reply, Buffer.from(png.buffer, png.byteOffset, png.byteLength));
      }
      // An answer object goes through the response schema; JSON a worker serialised is sent as its bytes.
      return sendAnswer(reply, await app.compute.probeAnswer(draft)) as ProbeAnswer;
    },
  );
};

export default probe;
