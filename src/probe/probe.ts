// POST /probe (README "Black-box probing"): estimate the gradient of a model that can only be queried. The
// prober checks the request, plans the queries within the budget, opens the target (a guarded
// HTTP endpoint or an expression used as a black box), asks for f(x) first (which also says how
// many logits the target answers), runs the estimator, and says how many queries it spent.

import { setMaxListeners } from 'node:events';
import { Semaphore } from './semaphore.js';
import { isEngineError } from '../engine/errors.js';
import { freeNames, parseProgram } from '../engine/lang/index.js';
import { toTensor } from '../engine/values.js';
import { fromTensor, jsonNumber, type Encoding, type Value } from '../service/values.js';
import { invalidField, overBudget, ProbeError } from './errors.js';
import { LogitReader } from './logits.js';
import { fewerQueries, planQueries, type QueryPlan } from './plan.js';
import { ExprBlackBox, HttpBlackBox, QueryMeter, type BlackBox, type Evaluator } from './black-box.js';
import { BodyTemplate, INPUT_PLACEHOLDER } from './body-template.js';
import { GuardedClient } from './client.js';
import { headerNameProblem, headerValueProblem } from './headers.js';
import { centralDifferences, cosine, forwardDifferences, occlusion, type EstimateContext, type Point, type Token } from './estimators.js';
import { dctBasis, dctFrequencies, lowresBasis, MAX_DCT_FREQUENCIES, pixelBasis, randomDirections, type Basis, type BasisName, type Prior } from './directions.js';
import { shapleySampling } from './shapley.js';
import { estimateNoise, stepFromNoise, type NoiseSpec } from './noise.js';
import { pictureLayout, pictureTooLarge, type Picture } from './picture.js';
import { drawPicture, writeAnswer, type AnswerMap, type DrawnPicture, type GradientMethod, type ProbeAnswer, type ProbeDraft } from './answer.js';
import { baselineOf, groupDifferences, groupGrowths, ImageGroups, occludeGroups, type ImageSpec } from './image.js';
import { ProbeFailure } from './failure.js';
import { TargetGuard, type HostResolver } from './guard.js';
import { parsePointer } from './json-pointer.js';
import type { ProbeMethod } from './methods.js';
import { ClientQuotas, OutboundBytes, perturbedOutboundBytes, plannedOutboundBytes, type QuotaStore, type Reservation } from './limits.js';
import { runBounded } from './pool.js';

export { PROBE_METHODS, type ProbeMethod } from './methods.js';
export type { ProbeAnswer, ProbeDraft } from './answer.js';

export interface HttpTargetSpec {
  url: string;
  method?: 'POST' | 'PUT' | 'PATCH' | undefined;
  headers?: Record<string, string> | undefined;
  body?: unknown;
  outputPath: string;
}

export interface ExprTargetSpec {
  expr: string;
}

export interface ProbeRequest {
  target: HttpTargetSpec | ExprTargetSpec;
  at: unknown;
  method: ProbeMethod;
  output?: number | undefined;
  epsilon?: number | undefined;
  budget?: number | undefined;
  concurrency?: number | undefined;
  timeoutMs?: number | undefined;
  seed?: number | undefined;
  mask?: Token | undefined;
  directions?: number | undefined;
  /** The input is an image, perturbed in groups of pixels (image.ts). */
  image?: ImageSpec | undefined;
  /** An integer label per pixel: the groups, instead of image.patch. */
  segments?: unknown;
  /** spsa/nes: where directions are drawn (directions.ts). */
  basis?: BasisName | undefined;
  /** spsa/nes: how the directions are combined (directions.ts). */
  prior?: Prior | undefined;
  /** shapley: permutations to sample (in antithetic pairs). */
  samples?: number | undefined;
  /** Difference methods: ask f(x) this many times, estimate the noise, choose the step from it (noise.ts). */
  noise?: NoiseSpec | undefined;
  /** png: an image's map also as a picture (picture.ts). */
  format?: 'json' | 'png' | undefined;
  /** How the answer writes its maps (gradient, stderr, exact, an image's scores): nested arrays or base64. */
  encoding?: Encoding | undefined;
}

/**
 * Default steps, relative: coordinate i moves by ε·max(1, |x_i|). Chosen for models that answer
 * float32 logits (relative rounding u ≈ 6e-8, more after many layers). A forward difference errs
 * by about h|f''|/2 (truncation) + 2u|f|/h (rounding), smallest near h ≈ 2√(u|f|/|f''|) ~ 1e-3;
 * a central difference by h²|f'''|/6 + u|f|/h, smallest near h ≈ (3u|f|/|f'''|)^(1/3) ~ 1e-2.
 * bench/probing.ts measures both against the step (docs/probing.md): on float32 tanh networks,
 * smooth and sharp, these are the best decades, and the larger central step is also the more
 * robust to output noise. Random directions move all n coordinates at once (a perturbation of
 * norm ~ε√n), so they keep the smaller step; their error is dominated by the sampling anyway.
 */
export const DEFAULT_EPSILON: Record<GradientMethod, number> = { forward: 1e-3, central: 1e-2, spsa: 1e-3, nes: 1e-3 };

/**
 * An `{ expr }` target is evaluated exactly in float64 (u ≈ 1.1e-16, no noise), so its
 * differences take the float64 optima: √u ≈ 1.5e-8 (forward) and u^(1/3) ≈ 6e-6 (central), as
 * POST /check does.
 */
export const DEFAULT_EPSILON_FLOAT64: Record<GradientMethod, number> = {
  forward: Math.sqrt(Number.EPSILON),
  central: Math.cbrt(Number.EPSILON),
  spsa: 1e-3,
  nes: 1e-3,
};
export const DEFAULT_CONCURRENCY = 4;

/** The relative step a gradient method takes: the request's, or the default for its kind of target. */
export function epsilonOf(method: GradientMethod, request: Pick<ProbeRequest, 'epsilon' | 'target'>): number {
  return request.epsilon ?? ('expr' in request.target ? DEFAULT_EPSILON_FLOAT64 : DEFAULT_EPSILON)[method];
}

export interface ProberOptions {
  allowedOrigins: readonly string[];
  maxConcurrency: number;
  /** Queries in flight at once across every probe of the server. */
  maxOutgoing: number;
  maxBudget: number;
  maxResponseBytes: number;
  defaultTimeoutMs: number;
  /** A whole probe's wall-clock limit, from the request's arrival: past it the probe answers 504 and its work in flight is cancelled. */
  maxDurationMs: number;
  maxTensorElements: number;
  /** Numbers one answer may hold (MAX_ANSWER_ELEMENTS): its maps are counted before anything is sent. */
  maxAnswerElements?: number | undefined;
  /** Input elements one probe may send (n × budget): bounds its work on the event loop. */
  maxElements: number;
  /** Estimated floating-point operations all the evaluations of one probe's { expr } target may take. */
  maxFlops: number;
  /** Bytes of request bodies one probe may send to its target. */
  maxOutboundBytes: number;
  /** Queries one client's probes may send per window (a minute); 0: unlimited. */
  clientQueriesPerMinute: number;
  /** The window of clientQueriesPerMinute in ms (default 60,000; tests shorten it). */
  clientWindowMs?: number | undefined;
  /** Where the clients' windows are kept when not in this process: Redis, shared by replicas (RedisQuotas). */
  quotas?: QuotaStore | undefined;
  /** Clients whose window is tracked at once (default 100,000; the oldest window is forgotten first). */
  maxClients?: number | undefined;
  evaluator: Evaluator;
  resolve?: HostResolver | undefined;
}

/** Who asks and when, besides what: set by the route. */
export interface ProbeContext {
  /** Stops the probe (the client hung up). */
  signal?: AbortSignal | undefined;
  /** Who the client is (an API key's id or an address): PROBE_CLIENT_QUERIES_PER_MINUTE counts per client. */
  client?: string | undefined;
  /** Epoch ms when the request arrived: the probe's deadline is PROBE_MAX_DURATION_MS after it (default: now). */
  receivedAt?: number | undefined;
  /** Told the queries spent and planned as the probe goes (every PROGRESS_INTERVAL_MS): a job's progress. */
  onProgress?: ((spent: number, planned: number) => void) | undefined;
  /** The whole probe's time limit instead of PROBE_MAX_DURATION_MS, with the setting that names it (a job's own). */
  duration?: ProbeDuration | undefined;
}

export interface ProbeDuration {
  ms: number;
  setting: string;
}

/** How often a probe tells `onProgress` how far it has come. */
const PROGRESS_INTERVAL_MS = 200;

/** Floating-point operations and byte counts in messages: 1.60e+10. */
function approx(x: number): string {
  return x.toExponential(2);
}

/** A probe request read and planned (src/probe/probe.ts `admit`). */
interface Admitted {
  tokens: Token[] | undefined;
  point: Point | undefined;
  /** An image: its groups of pixels. */
  image: ImageGroups | undefined;
  plan: QueryPlan;
  timeoutMs: number;
  concurrency: number;
  /** What the first query sends: the tokens, or the point as a JSON value. */
  input: unknown;
}

interface RunState {
  meter: QueryMeter;
  allowance: { remaining: number };
  controller: AbortController;
}

/**
 * The probe's deadline and cancellation: `signal` aborts at the deadline or when the client
 * leaves, `stopped` rejects at that moment (so the answer never waits for work to wind down), and
 * `dispose` stops everything still in flight once the probe has answered.
 */
class Stopwatch {
  readonly controller = new AbortController();
  readonly stopped: Promise<never>;
  private readonly timer: NodeJS.Timeout;
  private readonly onCancel = () => this.controller.abort(new ProbeFailure('timeout', 'The client closed the connection; the probe was stopped'));

  constructor(
    deadline: number,
    duration: ProbeDuration,
    private readonly clientSignal: AbortSignal | undefined,
  ) {
    // Every query in flight and every wait for an outgoing place listens to this signal: as many as
    // the probe's concurrency allows (PROBE_MAX_CONCURRENCY), which is a bound, not a leak; Node's
    // warning past ten listeners would only be noise.
    setMaxListeners(0, this.controller.signal);
    this.timer = setTimeout(
      () => this.controller.abort(new ProbeFailure('timeout', `The probe took longer than ${duration.setting} = ${duration.ms} ms; its queries in flight were stopped`)),
      Math.max(0, deadline - Date.now()),
    );
    clientSignal?.addEventListener('abort', this.onCancel, { once: true });
    this.stopped = new Promise<never>((_, reject) => {
      const stop = () => reject(this.controller.signal.reason);
      if (this.controller.signal.aborted) stop();
      else this.controller.signal.addEventListener('abort', stop, { once: true });
    });
    this.stopped.catch(() => undefined);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.clientSignal?.removeEventListener('abort', this.onCancel);
    if (!this.controller.signal.aborted) this.controller.abort(new ProbeFailure('timeout', 'The probe has answered'));
  }
}

export class Prober {
  private readonly guard: TargetGuard;
  private readonly outgoing: Semaphore;
  private readonly quotas: QuotaStore;

  constructor(private readonly options: ProberOptions) {
    this.guard = new TargetGuard(options.allowedOrigins, options.resolve);
    this.outgoing = new Semaphore(options.maxOutgoing);
    this.quotas = options.quotas ?? new ClientQuotas(options.clientQueriesPerMinute, options.clientWindowMs, options.maxClients);
  }

  /**
   * Runs one probe; throws a ProbeError (or EngineError) for every refusal and failure. The probe
   * answers by its deadline (PROBE_MAX_DURATION_MS after `context.receivedAt`) whatever is in flight:
   * then, or when `context.signal` aborts (the client left), every query in flight is aborted and
   * every evaluation cancelled.
   */
  async probe(request: ProbeRequest, context: ProbeContext = {}): Promise<ProbeAnswer> {
    const draft = await this.draft(request, context);
    return writeAnswer(draft, draft.picture === undefined ? undefined : await this.draw(draft.picture));
  }

  /** The picture drawn: on a worker thread when the evaluator has them (the service's Compute), else here. */
  async draw(picture: Picture): Promise<DrawnPicture> {
    const { evaluator } = this.options;
    return evaluator.drawPicture === undefined ? drawPicture(picture) : evaluator.drawPicture(picture);
  }

  /**
   * Runs one probe, as `probe` does, and answers its draft: the maps not yet written, the picture
   * not yet drawn (the route has them written and serialised off the event loop when large).
   */
  async draft(request: ProbeRequest, context: ProbeContext = {}): Promise<ProbeDraft> {
    const o = this.options;
    const admitted = this.admit(request);
    const expr = 'expr' in request.target ? { expr: request.target.expr, input: exprInput(request.target.expr) } : undefined;
    // An { expr } target: the one input it reads. A URL target: checked, its bytes estimated and
    // its client's queries reserved before anything is sent.
    const http = 'url' in request.target ? this.prepareHttp(request.target) : undefined;
    let reservation: Reservation | undefined;
    if (http !== undefined) {
      this.checkOutboundBytes(http.template, request, admitted);
      reservation = await this.reserve(context.client ?? '', request, admitted.plan);
    }
    const meter = new QueryMeter(admitted.plan.budget, admitted.plan.planned);
    const allowance = { remaining: o.maxFlops };
    const duration = context.duration ?? { ms: o.maxDurationMs, setting: 'PROBE_MAX_DURATION_MS' };
    const deadline = (context.receivedAt ?? Date.now()) + duration.ms;
    const stopwatch = new Stopwatch(deadline, duration, context.signal);
    const onProgress = context.onProgress;
    const progress = onProgress && setInterval(() => onProgress(meter.spent, admitted.plan.planned), PROGRESS_INTERVAL_MS);

    let box: BlackBox | undefined;
    let finished = false;
    const open = async (): Promise<BlackBox> => {
      const opened =
        http === undefined
          ? new ExprBlackBox(expr!.expr, expr!.input, o.evaluator, meter, stopwatch.signal, allowance)
          : await this.openHttp(http, { meter, signal: stopwatch.signal, deadline, timeoutMs: admitted.timeoutMs, concurrency: admitted.concurrency, client: reservation! });
      if (finished) {
        // The probe was stopped while the target was being opened.
        await opened.close();
        throw stopwatch.signal.reason;
      }
      return (box = opened);
    };
    const work = (async () => this.run(request, admitted, await open(), { meter, allowance, controller: stopwatch.controller }))();
    work.catch(() => undefined);

    try {
      return await Promise.race([work, stopwatch.stopped]);
    } catch (error) {
      throw this.failure(error, meter, http === undefined, allowance);
    } finally {
      finished = true;
      clearInterval(progress);
      // The last word on progress, also for a probe that ended before the first interval.
      onProgress?.(meter.spent, admitted.plan.planned);
      // Whatever is still in flight (queries, evaluations) is stopped: the answer is final.
      stopwatch.dispose();
      if (reservation !== undefined) this.quotas.refund(reservation, meter.unsentPlanned);
      await (box as BlackBox | undefined)?.close();
    }
  }

  /** The request read and planned, and refused if its plan exceeds this server's limits. */
  private admit(request: ProbeRequest): Admitted {
    const o = this.options;
    if (request.segments !== undefined && request.image === undefined) throw invalidField('segments', 'needs image (its shape says which pixel each label is for)');
    const random = request.method === 'spsa' || request.method === 'nes';
    if (request.format === 'png' && request.image === undefined) throw invalidField('format', 'png draws an image’s map: declare the input an image (image.shape)');
    if (request.noise !== undefined && (request.method === 'occlusion' || request.method === 'shapley')) {
      throw invalidField('noise', 'chooses the step of a difference method (forward, central, spsa, nes)');
    }
    if (!random && (request.basis !== undefined || request.prior !== undefined)) throw invalidField(request.basis === undefined ? 'prior' : 'basis', 'is for spsa and nes');
    if ((request.basis === 'lowres' || request.basis === 'dct') && request.image === undefined) throw invalidField('basis', `${request.basis} needs image (its shape and patch make the coarse grid)`);
    if (request.method === 'shapley' && request.image !== undefined) throw invalidField('image', 'is not for shapley, which attributes tokens: use occlusion or central on an image');
    const tokens = (request.method === 'occlusion' && request.image === undefined) || request.method === 'shapley' ? tokensOf(request.at) : undefined;
    const point = tokens === undefined ? this.pointOf(request.at) : undefined;
    const image = request.image === undefined ? undefined : ImageGroups.declare(request.image, request.segments, point!, o.maxTensorElements);
    const n = tokens?.length ?? point!.data.length;
    // Groups of pixels are what grouped differences and occlusion perturb: one or two queries each.
    const units = image !== undefined && isGrouped(request.method) ? image.count : n;
    const plan = planQueries(request.method, units, request, o.maxBudget);
    this.checkAnswerSize(request, n);
    if (n * plan.budget > o.maxElements) {
      throw overBudget(
        `${n} input elements × a budget of ${plan.budget} queries is more than this server's PROBE_MAX_ELEMENTS of ${o.maxElements}; probe a smaller input or with a smaller budget`,
      );
    }
    // Without a timeoutMs of its own, a query may take the default, within the whole probe's limit.
    const timeoutMs = request.timeoutMs ?? Math.min(o.defaultTimeoutMs, o.maxDurationMs);
    if (timeoutMs > o.maxDurationMs) {
      throw new ProbeError('limit_exceeded', `timeoutMs ${timeoutMs} is more than this server's PROBE_MAX_DURATION_MS of ${o.maxDurationMs}`);
    }
    const concurrency = Math.min(request.concurrency ?? DEFAULT_CONCURRENCY, o.maxConcurrency);
    if (image !== undefined) this.checkImageWork(request, image);
    return { tokens, point, image, plan, timeoutMs, concurrency, input: tokens ?? fromTensor(point!) };
  }

  /** Refuses (422) a probe whose answer would hold more numbers than MAX_ANSWER_ELEMENTS, before anything is sent. */
  private checkAnswerSize(request: ProbeRequest, n: number): void {
    const most = this.options.maxAnswerElements;
    if (most === undefined) return;
    const maps = answerMaps(request);
    if (n * maps.length <= most) return;
    const detail =
      `The answer would hold ${n * maps.length} numbers (${maps.join(', ')}: ${n} each), more than this server's MAX_ANSWER_ELEMENTS of ${most}; ` +
      `probe a smaller input${request.image === undefined ? '' : ' (a smaller image)'}`;
    throw new ProbeError('limit_exceeded', detail, { errors: [{ path: 'at', message: detail }], queries: 0 });
  }

  /** Refuses (422) a picture or a dct basis too large to compute on the event loop, before anything is sent. */
  private checkImageWork(request: ProbeRequest, image: ImageGroups): void {
    const limit = (path: string, detail: string) => new ProbeError('limit_exceeded', detail, { errors: [{ path, message: detail }] });
    // The PNG's own pixels are counted (enlargement and colour bar included), not the image's.
    const refused = request.format === 'png' ? pictureTooLarge(pictureLayout(image.height, image.width)) : undefined;
    if (refused !== undefined) {
      throw limit('format', `format png does not draw this ${image.height}×${image.width} image: ${refused}; ask for the JSON map`);
    }
    if (request.basis === 'dct') {
      const [ku, kv] = dctFrequencies(image, request.image?.patch ?? DEFAULT_CELL);
      if (Math.max(ku, kv) > MAX_DCT_FREQUENCIES) {
        throw limit('image.patch', `the dct basis keeps at most ${MAX_DCT_FREQUENCIES} frequencies per axis, and image.patch makes ${ku}×${kv}; use a larger image.patch`);
      }
    }
  }

  /** The probe's work on an opened target: the first query, the exact gradient of an { expr }, the estimate. */
  private async run(request: ProbeRequest, admitted: Admitted, box: BlackBox, state: RunState): Promise<ProbeDraft> {
    const o = this.options;
    const { tokens, point, plan, image } = admitted;
    const { meter, allowance, controller } = state;
    const first = await box.logits(admitted.input);
    const reader = LogitReader.fromFirst(first, request.output, this.where(request.target), meter.spent);
    let value = reader.read(first);
    let exact: Value | undefined;
    if (box instanceof ExprBlackBox) {
      // What one evaluation costs is known now: the rest of the plan must fit the allowance.
      const cost = o.maxFlops - allowance.remaining;
      if (request.method !== 'occlusion' && request.method !== 'shapley') {
        try {
          exact = await this.exactGradient(box, point!, request.output ?? 0, controller.signal, allowance);
        } catch (error) {
          // Refused: when the evaluations alone would not fit either, say so (and what would).
          if (isEngineError(error) && error.code === 'limit_exceeded') this.checkFlops(request, plan, cost, 0, allowance.remaining, meter.spent);
          throw error;
        }
      }
      this.checkFlops(request, plan, cost, o.maxFlops - allowance.remaining - cost, allowance.remaining, meter.spent);
    }
    const estimateContext: EstimateContext = {
      f: async (x) => reader.read(await box.logits(x)),
      run: (tasks) => runBounded(tasks, admitted.concurrency, controller),
    };
    let noise: { repeats: number; sigma: number; curvature: number } | undefined;
    let epsilon: number | undefined;
    if (request.noise !== undefined && request.method !== 'occlusion' && request.method !== 'shapley') {
      const repeats = [value, ...(await askAgain(estimateContext, admitted.input, request.noise.repeats - 1))];
      const estimate = estimateNoise(repeats, request.noise.curvature);
      value = estimate.mean;
      noise = { repeats: estimate.repeats, sigma: estimate.sigma, curvature: estimate.curvature };
      // A step the request gives is kept; the noise is still measured and reported.
      epsilon = request.epsilon ?? stepFromNoise(request.method, estimate, epsilonOf(request.method, request));
    }
    const encoding = request.encoding;
    if (request.method === 'shapley') {
      const samples = plan.samples!;
      const estimate = await shapleySampling(estimateContext, tokens!, value, { samples, seed: request.seed ?? 0, mask: request.mask });
      const sum = estimate.scores.reduce((a, b) => a + b, 0);
      const expected = value - estimate.baseline;
      const fields = {
        method: 'shapley' as const,
        value,
        scores: [...estimate.scores],
        stderr: [...estimate.stderr].map((s) => (Number.isNaN(s) ? 'NaN' : s)),
        samples,
        baselineValue: estimate.baseline,
        efficiency: { sum, expected, gap: sum - expected },
        cacheHits: estimate.cacheHits,
        queries: meter.spent,
      };
      return { fields, maps: {}, encoding, picture: undefined };
    }
    if (tokens !== undefined) {
      const scores = await occlusion(estimateContext, tokens, value, request.mask);
      return { fields: { method: 'occlusion', value, scores: [...scores], queries: meter.spent }, maps: {}, encoding, picture: undefined };
    }
    if (request.method === 'occlusion') {
      const baseline = baselineOf(image!, point!.data, request.image!.baseline ?? 'zero');
      const { scores } = await occludeGroups(estimateContext, point!, image!, baseline, value);
      const fields = { method: 'occlusion' as const, value, groups: image!.count, queries: meter.spent };
      const picture = request.format === 'png' ? pictureOf(image!, point!, scores, 'occlusion') : undefined;
      return { fields, maps: { scores: { shape: point!.shape, data: scores } }, encoding, picture };
    }
    const estimate = await this.estimate(request.method, estimateContext, { point: point!, image }, value, request, plan, epsilon);
    const fields: ProbeDraft['fields'] = { ...estimate.fields, queries: meter.spent, ...(noise === undefined ? {} : { noise }) };
    const maps: ProbeDraft['maps'] = { ...estimate.maps };
    if (exact !== undefined) {
      const exactTensor = toTensor(exact, ['exact']);
      maps.exact = exactTensor;
      fields.cosine = jsonNumber(cosine(estimate.maps.gradient.data, exactTensor.data));
    }
    const picture = request.format === 'png' ? pictureOf(image!, point!, estimate.maps.gradient.data, 'gradient') : undefined;
    return { fields, maps, encoding, picture };
  }

  /** A failure of the probe's work as the domain error the client gets (with the queries spent). */
  private failure(error: unknown, meter: QueryMeter, isExpr: boolean, allowance: { remaining: number }): unknown {
    if (error instanceof ProbeFailure) {
      const code = ({ timeout: 'probe_timeout', target_error: 'probe_target_error', limit: 'limit_exceeded' } as const)[error.kind];
      return new ProbeError(code, error.detail, { queries: meter.spent });
    }
    if (isEngineError(error) && error.code === 'limit_exceeded' && isExpr) {
      const o = this.options;
      return new ProbeError(
        'limit_exceeded',
        `${error.message} (evaluating target.expr; one probe's evaluations share this server's PROBE_MAX_FLOPS of ${approx(o.maxFlops)} floating-point operations, ${approx(Math.max(0, allowance.remaining))} of them left)`,
        { queries: meter.spent },
      );
    }
    return error;
  }

  /** Refuses a plan whose request bodies would pass PROBE_MAX_OUTBOUND_BYTES, before anything is sent. */
  private checkOutboundBytes(template: BodyTemplate, request: ProbeRequest, admitted: Admitted): void {
    const { plan } = admitted;
    const most = this.options.maxOutboundBytes;
    const bytes = plannedBodies(template, request, admitted);
    if (bytes.total <= most) return;
    const affordable = bytes.first > most ? 0 : 1 + Math.floor((most - bytes.first) / bytes.perturbed);
    const fewer = fewerQueries(request.method, request, affordable);
    const detail =
      `The ${plan.planned} planned queries would send up to ${bytes.total} bytes of request bodies (${bytes.perturbed} bytes each at most), ` +
      `more than this server's PROBE_MAX_OUTBOUND_BYTES of ${most} for one probe; ${fewer === undefined ? '' : `${fewer}, or `}send a smaller body template or input`;
    throw new ProbeError('limit_exceeded', detail, { errors: [{ path: 'target.body', message: detail }], queries: 0 });
  }

  /** Reserves the planned queries in the client's window: 429 when it has too few left this minute, 422 when no minute has enough. */
  private async reserve(client: string, request: ProbeRequest, plan: QueryPlan): Promise<Reservation> {
    const perMinute = this.options.clientQueriesPerMinute;
    if (perMinute > 0 && plan.planned > perMinute) {
      const fewer = fewerQueries(request.method, request, perMinute);
      throw overBudget(
        `This probe plans ${plan.planned} queries, more than this server's PROBE_CLIENT_QUERIES_PER_MINUTE of ${perMinute} for one client${fewer === undefined ? '' : `; ${fewer}`}`,
      );
    }
    let admission;
    try {
      admission = await this.quotas.admit(client, plan.planned);
    } catch {
      // The shared windows (Redis) cannot be read: refused rather than let through unmetered.
      throw new ProbeError('overloaded', 'The probe quotas shared by this service’s replicas cannot be read (Redis does not answer); send the probe again shortly', { queries: 0 }, 5);
    }
    if (admission.ok) return admission.reservation;
    const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
    const fewer = fewerQueries(request.method, request, admission.left);
    throw new ProbeError(
      'rate_limited',
      `Your probes have sent or reserved ${admission.used} of the ${perMinute} queries this server allows one client per minute (PROBE_CLIENT_QUERIES_PER_MINUTE), and this probe plans ${plan.planned}: send it again in ${seconds} s${fewer === undefined ? '' : `, or ${fewer}`}`,
      { queries: 0 },
      seconds,
    );
  }

  /**
   * After the first evaluation of an { expr } target: refuses (422) a plan whose evaluations would
   * pass PROBE_MAX_FLOPS, rather than spending most of it first. `cost` is one evaluation's
   * estimate, `exactCost` the exact gradient's (both already debited); `remaining` what is left.
   */
  private checkFlops(request: ProbeRequest, plan: QueryPlan, cost: number, exactCost: number, remaining: number, spent: number): void {
    const left = plan.planned - 1;
    if (cost <= 0 || cost * left <= remaining) return;
    const total = cost * plan.planned + exactCost;
    const affordable = 1 + Math.floor(remaining / cost);
    const fewer = fewerQueries(request.method, request, affordable);
    const detail =
      `The ${plan.planned} planned evaluations of target.expr, at about ${approx(cost)} floating-point operations each, need about ${approx(total)} in all` +
      `${exactCost > 0 ? ` (the exact gradient included)` : ''}, more than this server's PROBE_MAX_FLOPS of ${approx(this.options.maxFlops)} for one probe; ` +
      (fewer === undefined ? `simplify target.expr or evaluate it on a smaller input` : `${fewer}, or simplify target.expr`);
    throw new ProbeError('limit_exceeded', detail, { errors: [{ path: 'budget', message: detail }], queries: spent });
  }

  private async estimate(
    method: GradientMethod,
    context: EstimateContext,
    input: { point: Point; image: ImageGroups | undefined },
    value: number,
    request: ProbeRequest,
    plan: QueryPlan,
    chosenEpsilon: number | undefined,
  ): Promise<{ fields: { method: GradientMethod; value: number } & Record<string, unknown>; maps: { gradient: AnswerMap; stderr?: AnswerMap } }> {
    const { point, image } = input;
    const epsilon = chosenEpsilon ?? epsilonOf(method, request);
    const gradientOf = (data: Float64Array): AnswerMap => ({ shape: point.shape, data });
    if (image !== undefined && (method === 'forward' || method === 'central')) {
      const gradient = await groupDifferences(context, point, image, { kind: method, epsilon, value });
      return { fields: { method, value, epsilon, groups: image.count }, maps: { gradient: gradientOf(gradient) } };
    }
    switch (method) {
      case 'forward':
        return { fields: { method, value, epsilon }, maps: { gradient: gradientOf(await forwardDifferences(context, point, value, epsilon)) } };
      case 'central':
        return { fields: { method, value, epsilon }, maps: { gradient: gradientOf(await centralDifferences(context, point, epsilon)) } };
      case 'spsa':
      case 'nes': {
        const directions = plan.directions!;
        const kind = method === 'spsa' ? 'rademacher' : 'normal';
        const scale = image === undefined ? point.data.map(scaleOf) : new Float64Array(point.data.length).fill(image.range[1] - image.range[0]);
        const name = request.basis ?? 'pixel';
        const prior = request.prior ?? 'none';
        const basis = basisOf(name, point, image, request.image?.patch);
        const estimate = await randomDirections(context, point, { epsilon, directions, seed: request.seed ?? 0, kind, basis, prior, scale });
        return {
          fields: { method, value, epsilon, directions, basis: { name, size: basis.size }, prior },
          maps: { gradient: gradientOf(estimate.gradient), ...(estimate.stderr === undefined ? {} : { stderr: gradientOf(estimate.stderr) }) },
        };
      }
    }
  }

  /** For an expression target: the exact gradient by reverse mode (not a query), to compare the estimate with. */
  private async exactGradient(box: ExprBlackBox, point: Point, output: number, signal: AbortSignal, allowance: { remaining: number }): Promise<Value> {
    const shape = box.outputShape ?? [];
    const cotangent = new Float64Array(shape.reduce((a, b) => a * b, 1));
    cotangent[output] = 1;
    const result = await this.options.evaluator.run(
      'vjp',
      { expr: box.expr, at: { [box.input]: fromTensor(point) }, cotangent: fromTensor({ shape, data: cotangent }) },
      { signal, allowance },
    );
    return (result.vjp as Record<string, Value>)[box.input]!;
  }

  private where(target: HttpTargetSpec | ExprTargetSpec): string {
    return 'url' in target ? `at outputPath "${target.outputPath}"` : '(the value of target.expr)';
  }

  private pointOf(at: unknown): Point {
    const point = toTensor(at, ['at'], this.options.maxTensorElements);
    if (point.data.length === 0) throw invalidField('at', 'has no elements: there is nothing to differentiate');
    if (!point.data.every(Number.isFinite)) throw invalidField('at', 'must be finite to be probed');
    return point;
  }

  /** A URL target's body template, output pointer and headers, checked; nothing is resolved or sent. */
  private prepareHttp(target: HttpTargetSpec): PreparedHttpTarget {
    const template = BodyTemplate.compile(target.body);
    if (template === undefined) {
      throw invalidField('target.body', `must contain the string "${INPUT_PLACEHOLDER}" as a value, where the input goes`);
    }
    const tokens = parsePointer(target.outputPath);
    if (tokens === undefined) throw invalidField('target.outputPath', 'must be a JSON pointer (RFC 6901): "" or a path such as "/logits"');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(target.headers ?? {})) {
      // Checked here as well as by the route's schema: a job's stored request reaches the prober directly.
      const problem = headerNameProblem(name) ?? headerValueProblem(value);
      if (problem !== undefined) throw invalidField(`target.headers.${name}`, problem, { header: name });
      headers[name.toLowerCase()] = value;
    }
    return { target, template, pointer: { text: target.outputPath, tokens }, headers };
  }

  /** Resolves and checks the URL (the guard), then the client pinned to its address. */
  private async openHttp(
    prepared: PreparedHttpTarget,
    context: { meter: QueryMeter; signal: AbortSignal; deadline: number; timeoutMs: number; concurrency: number; client: Reservation },
  ): Promise<BlackBox> {
    const { target } = prepared;
    const pinned = await this.guard.admit(target.url, Math.max(context.timeoutMs, 1000));
    const client = new GuardedClient(pinned, {
      method: target.method ?? 'POST',
      headers: prepared.headers,
      timeoutMs: context.timeoutMs,
      maxResponseBytes: this.options.maxResponseBytes,
      connections: context.concurrency,
    });
    return new HttpBlackBox(client, prepared.template, prepared.pointer, context.meter, context.signal, context.deadline, this.outgoing, {
      outbound: new OutboundBytes(this.options.maxOutboundBytes),
      retryAllowed: () => this.quotas.take(context.client),
    });
  }
}

interface PreparedHttpTarget {
  target: HttpTargetSpec;
  template: BodyTemplate;
  pointer: { text: string; tokens: readonly string[] };
  headers: Record<string, string>;
}

/** The one input an expression target reads. */
function exprInput(expr: string): string {
  const names = freeNames(parseProgram(expr));
  if (names.length !== 1) {
    const reads = names.length === 0 ? 'reads no input' : `reads ${names.length} inputs (${names.join(', ')})`;
    throw invalidField('target.expr', `must be a function of exactly one input, which the probe varies; it ${reads}`);
  }
  return names[0]!;
}

/** An upper bound on the bytes of the request bodies a plan sends (limits.ts). */
function plannedBodies(template: BodyTemplate, request: ProbeRequest, admitted: Admitted): { first: number; perturbed: number; total: number } {
  const { plan, input, point, image } = admitted;
  const json = JSON.stringify(input);
  // The step chosen from the noise is known only after the first queries; directions in a coarse
  // basis, and steps relative to an image's range, move numbers by other multiples than spsa's
  // bound assumes: every perturbed number is then bounded at its longest, as nes's are.
  const longest = (request.noise !== undefined && request.epsilon === undefined) || (request.basis ?? 'pixel') !== 'pixel' || (image !== undefined && !isGrouped(request.method));
  if (longest) return plannedOutboundBytes(template, 'nes', { json, numbers: point?.data }, plan.planned);
  if (image !== undefined && isGrouped(request.method)) {
    return perturbedOutboundBytes(template, json, groupGrowths(image, point!.data, perturbationOf(request, image, point!)));
  }
  const epsilon = request.method === 'occlusion' || request.method === 'shapley' ? undefined : epsilonOf(request.method, request);
  return plannedOutboundBytes(template, request.method, { json, numbers: point?.data, epsilon, mask: request.mask }, plan.planned);
}

/** An image's map to draw over it (picture.ts). */
function pictureOf(image: ImageGroups, point: Point, map: Float64Array, kind: 'gradient' | 'occlusion'): Picture {
  // A worker is sent the pixels: a view on a larger buffer (a decoded body) would send all of it.
  const whole = (a: Float64Array) => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice());
  return { height: image.height, width: image.width, channels: image.channels, layout: image.layout, pixels: whole(point.data), range: image.range, map: whole(map), kind };
}

/** f(x) asked `times` more times, for the noise. */
async function askAgain(context: EstimateContext, input: unknown, times: number): Promise<number[]> {
  const values = new Array<number>(times);
  function* queries() {
    for (let r = 0; r < times; r++) yield async () => void (values[r] = await context.f(input as Value));
  }
  await context.run(queries());
  return values;
}

/** The answer's fields with one number per input element (or token), as `run` writes them. */
function answerMaps(request: ProbeRequest): string[] {
  const exact = 'expr' in request.target ? ['exact'] : [];
  switch (request.method) {
    case 'shapley':
      return ['scores', 'stderr'];
    case 'occlusion':
      return ['scores'];
    case 'forward':
    case 'central':
      return ['gradient', ...exact];
    case 'spsa':
    case 'nes':
      // The time prior answers no stderr.
      return ['gradient', ...((request.prior ?? 'none') === 'time' ? [] : ['stderr']), ...exact];
  }
}

/** Methods that perturb an image's groups (the others treat its pixels one by one, or in a basis). */
function isGrouped(method: ProbeMethod): method is 'occlusion' | 'forward' | 'central' {
  return method === 'occlusion' || method === 'forward' || method === 'central';
}

/** How a grouped method changes each group, for bounding the bytes it sends. */
function perturbationOf(request: ProbeRequest, image: ImageGroups, point: Point) {
  const method = request.method as 'occlusion' | 'forward' | 'central';
  return method === 'occlusion'
    ? { kind: method, baseline: baselineOf(image, point.data, request.image!.baseline ?? 'zero') }
    : { kind: method, epsilon: epsilonOf(method, request) };
}

/** The cell of the coarse bases when image.patch does not say: 4 × 4 pixels. */
const DEFAULT_CELL: [number, number] = [4, 4];

function basisOf(name: BasisName, point: Point, image: ImageGroups | undefined, patch: [number, number] | undefined): Basis {
  if (name === 'pixel' || image === undefined) return pixelBasis(point.data.length);
  return (name === 'lowres' ? lowresBasis : dctBasis)(image, patch ?? DEFAULT_CELL);
}

/** A coordinate's scale: steps are relative to |x_i|, but never smaller than for |x_i| = 1. */
function scaleOf(x: number): number {
  return Math.max(1, Math.abs(x));
}

function tokensOf(at: unknown): Token[] {
  const ok = Array.isArray(at) && at.length > 0 && at.every((t) => typeof t === 'string' || (typeof t === 'number' && Number.isFinite(t)));
  if (!ok) throw invalidField('at', 'must be a non-empty array of tokens (strings or token ids) for occlusion and shapley');
  return at as Token[];
}
