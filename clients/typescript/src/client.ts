// The client: openapi-fetch over the types generated from openapi.yaml (src/schema.d.ts), with a
// method per differentiation endpoint that sends tensors in the service's wire forms and gives the
// answer's tensors back as Tensors, and a refused request thrown as an AdjointError.

import createClient, { type Client } from 'openapi-fetch';
import { BASE64_THRESHOLD, encodeValue, type NonFinite, type Tensor, type TensorInput, toNumber, toTensor, type Value } from './arrays.js';
import { AdjointError } from './errors.js';
import { isFinished, type Job, type JobEndpoint, JobCancelledError, type JobView, serverSentEvents, type SubmitOptions, type WaitOptions } from './jobs.js';
import type { paths } from './schema.js';

/** The endpoints that take `at` (one point) or `points` (several) and answer one result or `{ results }`. */
export const DIFFERENTIATION = ['eval', 'grad', 'jvp', 'vjp', 'jacobian', 'hessian', 'hvp', 'check'] as const;
export type DifferentiationName = (typeof DIFFERENTIATION)[number];
type Path = `/${DifferentiationName}` | '/trace' | '/probe' | '/grade';

type JsonOf<T> = T extends { content: { 'application/json': infer Body } } ? Body : never;
/** The request body of `POST path` as the service reads it. */
export type WireRequest<P extends Path> = JsonOf<paths[P]['post']['requestBody']>;
/** The 200 answer of `POST path` as the service writes it. */
export type WireAnswer<P extends Path> = JsonOf<paths[P]['post']['responses'][200]>;

// Request fields holding a tensor per input, or one tensor.
const PER_INPUT_FIELDS = new Set(['at', 'tangents', 'vector']);
const TENSOR_FIELDS = new Set(['cotangent']);
type PerInputField = 'at' | 'tangents' | 'vector';

/** Where the service takes a Value, any TensorInput (the union of `oneOf` branches kept: one type per branch). */
type WithTensorInputs<T> = T extends unknown
  ? {
      [K in keyof T]: [T[K]] extends [undefined]
        ? T[K]
        : K extends PerInputField
          ? Record<string, TensorInput>
          : K extends 'points'
            ? Record<string, TensorInput>[]
            : K extends 'cotangent'
              ? TensorInput
              : {} extends Pick<T, K>
                ? T[K]
                : Exclude<T[K], undefined>; // a field a branch requires (`expr` in `{ expr: …; graph?: never }`)
    }
  : never;

/** A request of `POST path`: the wire form, but tensors may be Float64Arrays, Tensors or nested numbers with real NaN. */
export type Request<P extends Path> = WithTensorInputs<WireRequest<P>>;

/**
 * An answer with its tensors decoded: every Value a Tensor (a scalar has shape []), every number
 * that may be non-finite ("NaN", "Infinity", "-Infinity" on the wire) a number.
 */
export type Decoded<T> = [Value] extends [T]
  ? Tensor
  : [T] extends [number | NonFinite]
    ? number
    : T extends readonly (infer Item)[]
      ? Decoded<Item>[]
      : T extends object
        ? { [K in keyof T]: Decoded<T[K]> }
        : T;

type OnePoint<T> = Extract<T, { at: unknown }>;
type ManyPoints<T> = Extract<T, { points: unknown }>;
type Single<T> = Exclude<T, { results: unknown }>;
type Batch<T> = Extract<T, { results: unknown }>;

/** A differentiation endpoint: one point (`at`) gives one answer, several (`points`) give `{ results }`. */
export interface Endpoint<P extends Path> {
  (request: OnePoint<Request<P>>, init?: CallOptions): Promise<Decoded<Single<WireAnswer<P>>>>;
  (request: ManyPoints<Request<P>>, init?: CallOptions): Promise<Decoded<Batch<WireAnswer<P>>>>;
}

export interface CallOptions {
  /** Cancels the request (e.g. `AbortSignal.timeout(10_000)`). */
  signal?: AbortSignal;
  /** More headers for this request (an `x-request-id`, say). */
  headers?: Record<string, string>;
}

export interface AdjointOptions {
  /** The service's URL, e.g. http://127.0.0.1:3000 */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` (when the server is configured with API_KEYS). */
  apiKey?: string;
  /** A fetch to use instead of the global one (a test double, a proxy agent). */
  fetch?: (request: globalThis.Request) => Promise<Response>;
  /** Inputs of this many elements or more are sent as base64 (default 4096); Infinity: never. */
  base64Threshold?: number;
  /**
   * Speak MessagePack to the differentiation endpoints and /trace: bodies and answers in
   * MessagePack, large tensors as raw float64 bytes both ways. Pass a codec (this package does not
   * depend on one), e.g. `import { encode, decode } from '@msgpack/msgpack'` then
   * `msgpack: { encode, decode }`. Answers are decoded the same; errors are the same AdjointErrors.
   */
  msgpack?: MsgpackCodec;
}

/** A MessagePack codec: @msgpack/msgpack's `encode` and `decode` fit. */
export interface MsgpackCodec {
  encode(value: unknown): Uint8Array;
  decode(bytes: Uint8Array): unknown;
}

export interface Adjoint extends Record<DifferentiationName, Endpoint<`/${DifferentiationName}`>> {
  eval: Endpoint<'/eval'>;
  grad: Endpoint<'/grad'>;
  jvp: Endpoint<'/jvp'>;
  vjp: Endpoint<'/vjp'>;
  jacobian: Endpoint<'/jacobian'>;
  hessian: Endpoint<'/hessian'>;
  hvp: Endpoint<'/hvp'>;
  check: Endpoint<'/check'>;
  /** The lecture's tables for one point: every step's value, tangent and adjoint. */
  trace(request: Request<'/trace'>, init?: CallOptions): Promise<Decoded<WireAnswer<'/trace'>>>;
  /** Grades submissions against a reference (POST /grade): one result per submission, in order. */
  grade(request: WireRequest<'/grade'>, init?: CallOptions): Promise<GradeAnswer>;
  /** Estimates a black box's gradient from queries alone (POST /probe); the answer's maps as Tensors. */
  probe(request: ProbeRequest, init?: CallOptions): Promise<ProbeAnswer>;
  /**
   * Runs `endpoint` — 'probe', 'grade' or a differentiation endpoint — as a job (POST /jobs), with
   * the request its method takes: answered at once with the job, `queued` or `running`.
   */
  submit: Submit<SubmitOptions, 'job'>;
  /** The job now: state, progress, timings and, once finished, its answer as the service wrote it. */
  job(id: string | JobView, init?: CallOptions): Promise<JobView>;
  /** Cancels a queued or running job (its queries stop); a finished job is left as it is. */
  cancel(id: string | JobView, init?: CallOptions): Promise<JobView>;
  /**
   * The job each time the service reports it (GET /jobs/{id}/events: on every change and at least
   * every second) until it is finished, the last one with its answer; a stream that ends early is
   * opened again. `break` out of the loop to stop following it.
   */
  events(id: string | JobView, init?: CallOptions): AsyncGenerator<JobView, void, undefined>;
  /**
   * The job's answer once it has finished, decoded as the synchronous method's; `onProgress` is
   * called whenever its state or progress changes. A failed job throws the AdjointError its endpoint
   * would have thrown, a cancelled one JobCancelledError.
   */
  wait<Answer>(job: Job<Answer> | string, options?: WaitOptions): Promise<Answer>;
  /** `submit` then `wait`; aborting `signal` cancels the job. */
  run: Submit<WaitOptions & SubmitOptions, 'answer'>;
  /** The openapi-fetch client, typed by every path of openapi.yaml (answers as the service writes them). */
  raw: Client<paths>;
}

/** A /grade answer as the service writes it (its format: native, gradescope or prairielearn). */
export type GradeAnswer = WireAnswer<'/grade'>;
/** A /probe request: `at` is one tensor (any TensorInput), or for occlusion and shapley the tokens. */
export type ProbeRequest = Omit<WireRequest<'/probe'>, 'at'> & { at: TensorInput | readonly (string | number)[] };
/** A /probe answer with its maps (`gradient`, `stderr`, `exact`, image `scores`) as Tensors. */
export type ProbeAnswer = Decoded<WireAnswer<'/probe'>>;

/** What a job of `endpoint` takes: the body its endpoint takes. */
export type JobRequest<E extends JobEndpoint> = E extends 'grade' ? WireRequest<'/grade'> : E extends 'probe' ? ProbeRequest : E extends DifferentiationName ? Request<`/${E}`> : never;

type Returning<Kind extends 'job' | 'answer', Answer> = Promise<Kind extends 'job' ? Job<Answer> : Answer>;

/** `submit` (a Job typed by its answer) and `run` (the answer): one signature per kind of request, as the methods have. */
export interface Submit<Options, Kind extends 'job' | 'answer'> {
  <E extends DifferentiationName>(endpoint: E, request: OnePoint<Request<`/${E}`>>, options?: Options): Returning<Kind, Decoded<Single<WireAnswer<`/${E}`>>>>;
  <E extends DifferentiationName>(endpoint: E, request: ManyPoints<Request<`/${E}`>>, options?: Options): Returning<Kind, Decoded<Batch<WireAnswer<`/${E}`>>>>;
  (endpoint: 'probe', request: ProbeRequest, options?: Options): Returning<Kind, ProbeAnswer>;
  (endpoint: 'grade', request: WireRequest<'/grade'>, options?: Options): Returning<Kind, GradeAnswer>;
}

/** The request's tensors in the service's wire forms (nested JSON, or base64 from `threshold` elements). */
export function encodeRequest(request: Record<string, unknown>, threshold: number = BASE64_THRESHOLD, binary = false): Record<string, unknown> {
  const perInput = (values: unknown) => Object.fromEntries(Object.entries(values as Record<string, TensorInput>).map(([name, value]) => [name, encodeValue(value, threshold, binary)]));
  return Object.fromEntries(
    Object.entries(request).map(([field, value]) => {
      if (PER_INPUT_FIELDS.has(field)) return [field, perInput(value)];
      if (field === 'points' && Array.isArray(value)) return [field, value.map(perInput)];
      if (TENSOR_FIELDS.has(field)) return [field, encodeValue(value as TensorInput, threshold, binary)];
      return [field, value];
    }),
  );
}

const NON_FINITE_NAMES = new Set(['NaN', 'Infinity', '-Infinity']);

/** A /probe request in its wire form: `at` as a tensor (base64 from `threshold` elements), tokens as they are. */
export function encodeProbeRequest(request: ProbeRequest, threshold: number = BASE64_THRESHOLD): WireRequest<'/probe'> {
  const { at } = request;
  const tokens = Array.isArray(at) && at.some((token) => typeof token === 'string' && !NON_FINITE_NAMES.has(token));
  return { ...request, at: tokens ? [...(at as (string | number)[])] : encodeValue(at as TensorInput, threshold) } as WireRequest<'/probe'>;
}

// Answer fields holding a tensor, a tensor per input (or per pair of inputs), or a number that may be non-finite.
const ANSWER_TENSORS = new Set(['value', 'tangent', 'adjoint', 'cotangent']);
const ANSWER_PER_INPUT = new Set(['gradient', 'vjp', 'jacobian', 'hvp', 'tangents', 'numeric']);
const ANSWER_NUMBERS = new Set(['maxAbsError', 'maxRelError', 'ad', 'numeric']);

/** An answer with its tensors as Tensors and its non-finite numbers as numbers (the runtime side of Decoded). */
export function decodeAnswer(answer: unknown): unknown {
  if (Array.isArray(answer)) return answer.map(decodeAnswer);
  if (typeof answer !== 'object' || answer === null) return answer;
  const decodeField = (field: string, value: unknown): unknown => {
    if (ANSWER_TENSORS.has(field)) return toTensor(value as Value);
    if (ANSWER_PER_INPUT.has(field) && typeof value === 'object' && value !== null && !Array.isArray(value)) return mapValues(value, (t) => toTensor(t as Value));
    if (ANSWER_NUMBERS.has(field)) return Array.isArray(value) ? value.map(toNumber) : toNumber(value);
    if (field === 'hessian' && typeof value === 'object' && value !== null) return mapValues(value, (row) => mapValues(row as object, (t) => toTensor(t as Value)));
    return decodeAnswer(value);
  };
  return Object.fromEntries(Object.entries(answer).map(([field, value]) => [field, decodeField(field, value)]));
}

// /probe: the estimate and its maps are tensors, but a Shapley answer's scores and stderr are lists of numbers.
const PROBE_TENSORS = new Set(['gradient', 'stderr', 'exact', 'scores']);
const PROBE_NUMBERS = new Set(['value', 'cosine', 'baselineValue']);

/** A /probe answer with its maps as Tensors and its non-finite numbers as numbers (the runtime side of ProbeAnswer). */
export function decodeProbeAnswer(answer: unknown): unknown {
  if (typeof answer !== 'object' || answer === null) return answer;
  const shapley = (answer as { method?: unknown }).method === 'shapley';
  return Object.fromEntries(
    Object.entries(answer).map(([field, value]) => {
      if (PROBE_TENSORS.has(field)) return [field, shapley ? (value as unknown[]).map(toNumber) : toTensor(value as Value)];
      if (PROBE_NUMBERS.has(field)) return [field, toNumber(value)];
      return [field, value];
    }),
  );
}

/** 128 random bits as hex (crypto.randomUUID is missing from browsers' pages served over plain http). */
function randomKey(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function mapValues(object: object, f: (value: unknown) => unknown): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).map(([key, value]) => [key, f(value)]));
}

/**
 * A client of the service at `baseUrl`:
 *
 *     const adjoint = createAdjoint({ baseUrl: 'http://127.0.0.1:3000' });
 *     const { value, gradient } = await adjoint.grad({ expr: 'sin(x) * y', at: { x: 0.5, y: 2 } });
 *     gradient.x.item();   // 2 cos(0.5)
 */
export function createAdjoint(options: AdjointOptions): Adjoint {
  const threshold = options.base64Threshold ?? BASE64_THRESHOLD;
  const raw = createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ''),
    ...(options.fetch && { fetch: options.fetch }),
    headers: { accept: 'application/json', ...(options.apiKey !== undefined && { authorization: `Bearer ${options.apiKey}` }) },
  });

  // The answer's type is the caller's signature's (Decoded of the spec's answer); decodeAnswer makes it so.
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const { msgpack } = options;
  /** A request in MessagePack (its tensors as bins), the answer asked as MessagePack; problems are problem+json still. */
  const callMsgpack = async (codec: MsgpackCodec, path: Path, request: object, init: CallOptions): Promise<unknown> => {
    const body = codec.encode(encodeRequest({ ...request }, threshold, true));
    const headers: Record<string, string> = {
      'content-type': 'application/msgpack',
      accept: 'application/msgpack, application/json;q=0.5',
      ...(options.apiKey !== undefined && { authorization: `Bearer ${options.apiKey}` }),
      ...init.headers,
    };
    const sent = new globalThis.Request(`${baseUrl}${path}`, { method: 'POST', headers, body: body as NonNullable<ConstructorParameters<typeof globalThis.Request>[1]>['body'], ...(init.signal && { signal: init.signal }) });
    const response = await (options.fetch ?? globalThis.fetch)(sent);
    if (!response.ok) {
      const text = await response.text();
      let problem: unknown = text;
      try {
        problem = JSON.parse(text) as unknown;
      } catch {
        // not JSON: the text as it came
      }
      throw new AdjointError(response.status, problem, response.headers);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    return (response.headers.get('content-type') ?? '').startsWith('application/msgpack') ? codec.decode(bytes) : (JSON.parse(new TextDecoder().decode(bytes)) as unknown);
  };

  const call = async <T>(path: Path, request: object, init: CallOptions = {}): Promise<T> => {
    if (msgpack !== undefined) return decodeAnswer(await callMsgpack(msgpack, path, request, init)) as T;
    const body = encodeRequest({ ...request }, threshold);
    // The body is already in its wire form (the typed request was checked by the caller's signature).
    const { data, error, response } = await raw.POST(path, { body: body as WireRequest<typeof path>, ...init });
    // openapi-fetch gives an error body parsed when it is JSON, else as text.
    if (!response.ok) throw new AdjointError(response.status, error, response.headers);
    return decodeAnswer(data) as T;
  };

  const endpoint = <P extends Path>(path: P): Endpoint<P> => <T>(request: object, init?: CallOptions) => call<T>(path, request, init);

  const idOf = (job: string | JobView) => (typeof job === 'string' ? job : job.id);
  const jobAt = async (method: 'GET' | 'DELETE', job: string | JobView, init: CallOptions = {}): Promise<JobView> => {
    const options = { params: { path: { id: idOf(job) } }, ...init };
    const { data, error, response } = method === 'GET' ? await raw.GET('/jobs/{id}', options) : await raw.DELETE('/jobs/{id}', options);
    if (!response.ok || data === undefined) throw new AdjointError(response.status, error, response.headers);
    return data;
  };

  const submit = async (endpoint: JobEndpoint, request: JobRequest<JobEndpoint>, options: SubmitOptions = {}): Promise<JobView> => {
    const job: JsonOf<paths['/jobs']['post']['requestBody']> =
      endpoint === 'grade'
        ? { kind: 'grade', request }
        : endpoint === 'probe'
          ? { kind: 'probe', request: encodeProbeRequest(request as ProbeRequest, threshold) }
          : { kind: 'compute', endpoint: endpoint as DifferentiationName, request: encodeRequest({ ...request }, threshold) };
    const { data, error, response } = await raw.POST('/jobs', {
      body: job,
      // A retry of this very submission (by a proxy, say) is the same job, never a second one.
      params: { header: { 'idempotency-key': options.idempotencyKey ?? randomKey() } },
      ...(options.signal && { signal: options.signal }),
    });
    if (!response.ok || data === undefined) throw new AdjointError(response.status, error, response.headers);
    return data;
  };

  async function* events(job: string | JobView, init: CallOptions = {}): AsyncGenerator<JobView, void, undefined> {
    const id = idOf(job);
    for (;;) {
      const { data, error, response } = await raw.GET('/jobs/{id}/events', { params: { path: { id } }, parseAs: 'stream', ...init, headers: { accept: 'text/event-stream', ...init.headers } });
      if (!response.ok || !data) throw new AdjointError(response.status, error, response.headers);
      for await (const { event, data: view } of serverSentEvents(data)) {
        // The server ends a stream with `event: error` (a problem: shutting down, the job store
        // away, the job gone): not a view of the job. Where the job is now is asked below.
        if (event === 'error') break;
        const current = JSON.parse(view) as JobView;
        yield current;
        if (isFinished(current)) return;
      }
      // The stream ended before the job did (a proxy, a restart): where is it now?
      const now = await jobAt('GET', id, init);
      yield now;
      if (isFinished(now)) return;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  const wait = async <Answer>(job: Job<Answer> | string, options: WaitOptions = {}): Promise<Answer> => {
    let seen = '';
    for await (const view of events(job, options.signal ? { signal: options.signal } : {})) {
      const now = JSON.stringify([view.state, view.progress]);
      if (now !== seen) options.onProgress?.(view);
      seen = now;
      if (!isFinished(view)) continue;
      if (view.state === 'failed') {
        const problem = view.problem as { status?: number } | undefined;
        throw new AdjointError(problem?.status ?? 500, problem);
      }
      if (view.state === 'cancelled') throw new JobCancelledError(view);
      const answer = view.kind === 'probe' ? decodeProbeAnswer(view.result) : view.kind === 'compute' ? decodeAnswer(view.result) : view.result;
      return answer as Answer;
    }
    throw new Error(`the events of job ${typeof job === 'string' ? job : job.id} ended before it finished`);
  };

  const run = async (endpoint: JobEndpoint, request: JobRequest<JobEndpoint>, options: WaitOptions & SubmitOptions = {}): Promise<unknown> => {
    const job = await submit(endpoint, request, options);
    try {
      return await wait(job, options);
    } catch (error) {
      if (options.signal?.aborted) await jobAt('DELETE', job).catch(() => undefined);
      throw error;
    }
  };

  return {
    eval: endpoint('/eval'),
    grad: endpoint('/grad'),
    jvp: endpoint('/jvp'),
    vjp: endpoint('/vjp'),
    jacobian: endpoint('/jacobian'),
    hessian: endpoint('/hessian'),
    hvp: endpoint('/hvp'),
    check: endpoint('/check'),
    trace: (request, init) => call('/trace', request, init),
    grade: async (request, init = {}) => {
      const { data, error, response } = await raw.POST('/grade', { body: request, ...init });
      if (!response.ok || data === undefined) throw new AdjointError(response.status, error, response.headers);
      return data as GradeAnswer;
    },
    probe: async (request, init = {}) => {
      const { data, error, response } = await raw.POST('/probe', { body: encodeProbeRequest(request, threshold), ...init });
      if (!response.ok || data === undefined) throw new AdjointError(response.status, error, response.headers);
      return decodeProbeAnswer(data) as ProbeAnswer;
    },
    // The signatures say which answer each request gets; wait decodes it so (by the job's kind).
    submit: submit as Submit<SubmitOptions, 'job'>,
    job: (job, init) => jobAt('GET', job, init),
    cancel: (job, init) => jobAt('DELETE', job, init),
    events,
    wait,
    run: run as Submit<WaitOptions & SubmitOptions, 'answer'>,
    raw,
  };
}
