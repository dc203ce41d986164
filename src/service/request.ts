// The request layer: a request's JSON (a function, a point `at` or several `points`, `wrt`, seeds)
// read into tensors once, with the field path of every mistake, and a result of the engine
// (tensors) shaped into the JSON answer. Routes (through compute.ts), explain, grade and probe
// all read requests here; the engine itself knows no field or endpoint names.

import { check, CHECK_DEFAULTS, type CheckResult } from '../engine/ad/check.js';
import { grad, hessian, hvp, jacobian, jvp, value, vjp } from '../engine/ad/differentiate.js';
import type { Inputs, Planned, Warned } from '../engine/ad/plan.js';
import type { TraceMode, TraceSeeds } from '../engine/ad/trace.js';
import type { Engine, InputShape } from '../engine/engine.js';
import { EngineError, type EngineAlternative } from '../engine/errors.js';
import type { GraphJson } from '../engine/ir/from-json.js';
import type { Warning } from '../engine/ad/run.js';
import { inputNameMessage, isInputName, type FunctionSource, type Prepared } from '../engine/prepare.js';
import { formatShape, shapesEqual, sizeOf, type Shape, type Tensor } from '../engine/tensor/tensor.js';
import { shapeBeyondLimits } from '../engine/ops/shapes.js';
import { MAX_RANK, readArrayOf, toTensor, type TensorLimits } from '../engine/values.js';
import { fromTensor, jsonNumber, tensorWriter, type Encoding, type Value } from './values.js';

export interface FunctionRequest {
  expr?: string | undefined;
  graph?: GraphJson | undefined;
  at?: Record<string, unknown> | undefined;
  points?: Record<string, unknown>[] | undefined;
  wrt?: string[] | undefined;
  /** How the answer writes tensors: nested arrays (default) or base64 encoded arrays. */
  encoding?: Encoding | undefined;
}
export interface JvpRequest extends FunctionRequest {
  tangents: Record<string, unknown>;
}
export interface VjpRequest extends FunctionRequest {
  cotangent: unknown;
}
export interface JacobianRequest extends FunctionRequest {
  mode?: 'auto' | 'forward' | 'reverse' | undefined;
}
export interface HvpRequest extends FunctionRequest {
  vector: Record<string, unknown>;
}
export interface CheckRequest extends FunctionRequest {
  rtol?: number | undefined;
  atol?: number | undefined;
  method?: 'central' | 'forward' | undefined;
  directions?: number | undefined;
  seed?: number | undefined;
}

export interface RequestTable {
  eval: FunctionRequest;
  grad: FunctionRequest;
  jvp: JvpRequest;
  vjp: VjpRequest;
  jacobian: JacobianRequest;
  hessian: FunctionRequest;
  hvp: HvpRequest;
  check: CheckRequest;
}
export type OperationName = keyof RequestTable;

/** A planned request: its estimated cost, and how to compute the answer. */
export interface Job {
  /** Estimated work: floating-point operations plus elements written (copies cost too). */
  readonly flops: number;
  /** Numbers the answer will hold (its JSON must be built, sent and read). */
  readonly answer: number;
  run(): Record<string, unknown>;
}

/** One point of a request, read: the prepared function, the inputs as tensors, and `wrt`. */
export interface Point {
  prepared: Prepared;
  inputs: Map<string, Tensor>;
  wrt: string[];
}

// --- errors: what the engine suggests, worded for this service ----------------------------

const ALTERNATIVES: Record<EngineAlternative, string> = {
  jacobian_or_vjp: ' or use /jacobian or /vjp',
  hvp: ', or use /hvp',
};

/** The engine's error with the endpoint it suggests named (the engine names none). */
export function withAlternative(e: EngineError): EngineError {
  if (e.alternative === undefined) return e;
  return new EngineError(e.code, e.message + ALTERNATIVES[e.alternative], { position: e.position, node: e.node, path: e.path });
}

// --- reading a request ------------------------------------------------------------------

export function functionSource(request: FunctionRequest): FunctionSource {
  if (request.expr !== undefined && request.graph !== undefined) {
    throw new EngineError('validation_error', 'give exactly one of `expr` and `graph`, not both', { path: ['expr'] });
  }
  if (request.expr !== undefined) return { expr: request.expr };
  if (request.graph !== undefined) return { graph: request.graph };
  throw new EngineError('validation_error', 'give the function as `expr` (an expression) or `graph` (a JSON graph)', { path: ['expr'] });
}

/** The request's function prepared (cached by the engine) for these inputs, their names checked. */
export function prepareInputs(engine: Engine, request: FunctionRequest, inputs: readonly InputShape[]): Prepared {
  const source = functionSource(request);
  for (const { name } of inputs) if (!isInputName(name)) throw new EngineError('validation_error', inputNameMessage(name), { path: ['at', name] });
  return engine.prepare(source, inputs);
}

/** A value of `shape` at `path` (a seed or a point's input): a tensor, or a shape_mismatch naming what it should match. */
function readTensorOfShape(raw: unknown, path: (string | number)[], shape: Shape, what: string, limits: TensorLimits): Tensor {
  const t = toTensor(raw, path, limits);
  if (!shapesEqual(t.shape, shape)) {
    throw new EngineError('shape_mismatch', `${formatPathText(path)} has shape ${formatShape(t.shape)}, but the ${what} has shape ${formatShape(shape)}`, { path });
  }
  return t;
}

/** `points[0].x`, `tangents.x`, `cotangent`: as messages name a field. */
function formatPathText(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * `wrt` checked against the input names (each at most once), or every input in order. `theInputs`
 * names the inputs in the message about a name that is not one (built only then when a function).
 */
export function readWrt(wrt: string[] | undefined, inputs: readonly string[], theInputs: string | (() => string)): string[] {
  if (wrt === undefined) return [...inputs];
  wrt.forEach((name, i) => {
    if (!inputs.includes(name)) {
      const named = typeof theInputs === 'string' ? theInputs : theInputs();
      throw new EngineError('unknown_input', `wrt names '${name}', which is not an input: the inputs are ${named}`, { path: ['wrt', i] });
    }
  });
  if (new Set(wrt).size !== wrt.length) throw new EngineError('validation_error', 'wrt names an input twice', { path: ['wrt'] });
  return wrt;
}

/** Read one point (`at`, or one of `points` at `path`) and fetch (or prepare) the function for its input shapes. */
export function readPoint(engine: Engine, request: FunctionRequest, at: Record<string, unknown>, path: (string | number)[]): Point {
  const names = Object.keys(at);
  engine.checkInputCount(names.length, path);
  const inputs = new Map<string, Tensor>();
  const shapes: InputShape[] = [];
  for (const name of names) {
    const t = toTensor(at[name], [...path, name], engine.limits);
    inputs.set(name, t);
    shapes.push({ name, shape: t.shape });
  }
  const prepared = prepareInputs(engine, request, shapes);
  const wrt = readWrt(request.wrt, names, () => `the keys of \`at\` (${names.join(', ')})`);
  return { prepared, inputs, wrt };
}

/**
 * Elements a request body was decoded into off the event loop (src/service/body.ts): the request's
 * own memory, which `readInputsOnce` may move to a worker once (`moveBodyArrays`) rather than copy.
 */
export const bodyArrays = new WeakSet<Float64Array>();

/** A request whose points' inputs are already read into tensors, and the memory those hold. */
export interface InputsRead<R extends FunctionRequest> {
  request: R;
  /** The tensors' own buffers: moved, not copied, when the request goes to a worker thread. */
  transfer: ArrayBuffer[];
}

/**
 * `request` with every input of `at` (or of each of `points`) read into a tensor once, here, in the
 * form of an encoded array holding a Float64Array: planning reads them without a copy, and a worker
 * thread receives their memory moved (a structured clone would copy megabytes of base64 text, and
 * the worker would decode it again). Errors are the ones `readPoint` would raise, at the same paths.
 * A request that gives both `at` and `points`, or too many points, is left as it is: planning says
 * what is wrong with it.
 */
export function readInputsOnce<R extends FunctionRequest>(engine: Engine, request: R, options: { moveBodyArrays?: boolean } = {}): InputsRead<R> {
  if (request.at !== undefined && request.points !== undefined) return { request, transfer: [] };
  if (request.points !== undefined && request.points.length > engine.limits.maxPoints) return { request, transfer: [] };
  const transfer = new Set<ArrayBuffer>();
  // Input counts (MAX_INPUTS) are checked by the caller first (Compute.checkInputCounts).
  const readAll = (at: Record<string, unknown>, path: (string | number)[]): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(at)) {
      const raw = at[name];
      const t = toTensor(raw, [...path, name], engine.limits);
      const { buffer } = t.data;
      // Only memory read here, and which the tensor has to itself, moves: a caller's own
      // Float64Array stays theirs (unless a body's, and the caller says so), and a view into a
      // larger buffer is copied.
      const callers = typeof raw === 'object' && raw !== null && (raw as { data?: unknown }).data === t.data && !(options.moveBodyArrays && bodyArrays.delete(t.data));
      if (!callers && t.data.byteOffset === 0 && t.data.byteLength === buffer.byteLength && buffer instanceof ArrayBuffer) transfer.add(buffer);
      Object.defineProperty(out, name, { value: readArrayOf(t), enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  const read = { ...request };
  if (request.at !== undefined) read.at = readAll(request.at, ['at']);
  else if (request.points !== undefined) read.points = request.points.map((at, i) => readAll(at, ['points', i]));
  return { request: read, transfer: [...transfer] };
}

/**
 * A point for a function whose inputs are known (names and shapes): every input given, no other
 * name (`unknownDetail` appended to that message), each of its input's shape.
 */
export function readPointOfShapes(
  raw: Record<string, unknown>,
  inputs: readonly InputShape[],
  path: (string | number)[],
  unknownDetail: string,
  limits: TensorLimits,
): Map<string, Tensor> {
  for (const name of Object.keys(raw)) {
    if (!inputs.some((input) => input.name === name)) {
      throw new EngineError('unknown_input', `${formatPathText(path)} names '${name}', which is not an input${unknownDetail}`, { path: [...path, name] });
    }
  }
  const point = new Map<string, Tensor>();
  for (const { name, shape } of inputs) {
    if (!Object.hasOwn(raw, name) || raw[name] === undefined) {
      throw new EngineError('missing_input', `${formatPathText(path)} has no value for the input '${name}'`, { path });
    }
    point.set(name, readTensorOfShape(raw[name], [...path, name], shape, 'input', limits));
  }
  return point;
}

/** Prepare the function from input shapes alone (no values): for shape and cost analysis. */
export function prepareShapes(engine: Engine, request: FunctionRequest, shapes: Readonly<Record<string, readonly number[]>>): Prepared {
  engine.checkInputCount(Object.keys(shapes).length, ['shapes']);
  const limits = engine.limits;
  const inputs = Object.entries(shapes).map(([name, shape]) => {
    const path = ['shapes', name];
    if (shape.length > MAX_RANK) throw new EngineError('validation_error', `shapes.${name} has more than ${MAX_RANK} dimensions`, { path });
    shape.forEach((d, i) => {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new EngineError('validation_error', `shapes.${name}[${i}] must be a whole number ≥ 0, got ${d}`, { path: [...path, i] });
      }
    });
    const why = shapeBeyondLimits(shape, limits);
    if (why !== undefined) throw new EngineError('limit_exceeded', `shapes.${name} ${why}`, { path });
    return { name, shape: [...shape] };
  });
  return prepareInputs(engine, request, inputs);
}

export interface SeedOptions {
  /** Appended to the message about a name that is not an input. */
  unknownDetail?: string;
  /** Accept the string "ones" for a seed of ones (traces). */
  ones?: boolean;
}

/**
 * Seeds given per input name (`tangents`, `vector`): every name must be an input; each seed has
 * its input's shape; the inputs of `names` not given get zeros. Keyed by input name, own keys only.
 */
export function readSeeds(point: Point, given: Record<string, unknown>, field: string, names: readonly string[], options: SeedOptions = {}): Map<string, Tensor> {
  for (const name of Object.keys(given)) {
    if (!point.inputs.has(name)) {
      throw new EngineError('unknown_input', `${field} names '${name}', which is not an input${options.unknownDetail ?? ''}`, { path: [field, name] });
    }
  }
  const seeds = new Map<string, Tensor>();
  for (const name of names) {
    const shape = point.inputs.get(name)!.shape;
    const raw = Object.hasOwn(given, name) ? given[name] : undefined;
    if (raw === undefined) seeds.set(name, { shape, data: new Float64Array(sizeOf(shape)) });
    else if (options.ones && raw === 'ones') seeds.set(name, { shape, data: new Float64Array(sizeOf(shape)).fill(1) });
    else seeds.set(name, readTensorOfShape(raw, [field, name], shape, 'input', point.prepared.limits));
  }
  return seeds;
}

/** A seed of the output's shape (`cotangent`); ones when not given and `onesByDefault`. */
export function readCotangent(point: Point, raw: unknown, onesByDefault = false): Tensor {
  const shape = point.prepared.outputShape;
  if (raw === undefined && onesByDefault) return { shape, data: new Float64Array(sizeOf(shape)).fill(1) };
  return readTensorOfShape(raw, ['cotangent'], shape, 'output', point.prepared.limits);
}

/** A trace's seeds: a tangent for every input (default: ones on the first wrt input) and the output's cotangent (default: ones). */
export function readTraceSeeds(point: Point, mode: TraceMode, tangents: Record<string, unknown> | undefined, cotangent: unknown): TraceSeeds {
  const seeds: TraceSeeds = {};
  if (mode !== 'reverse') {
    const given = tangents ?? (point.wrt.length > 0 ? { [point.wrt[0]!]: 'ones' } : {});
    seeds.tangents = readSeeds(point, given, 'tangents', [...point.inputs.keys()], { ones: true });
  }
  if (mode !== 'forward') seeds.cotangent = readCotangent(point, cotangent, true);
  return seeds;
}

// --- shaping an answer ------------------------------------------------------------------

/** An object keyed by input names: null-prototype, so a name like `__proto__` is an ordinary key. */
export function byName<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** Writes a tensor into an answer: as a nested array, or an encoded array (the request's `encoding`). */
type Write = (t: Tensor) => Value;

/** Tensors by input name as JSON values. */
function perInput(tensors: ReadonlyMap<string, Tensor>, write: Write): Record<string, Value> {
  const out: Record<string, Value> = byName();
  for (const [name, t] of tensors) out[name] = write(t);
  return out;
}

function withWarnings(answer: Record<string, unknown>, warnings: readonly Warning[]): Record<string, unknown> {
  if (warnings.length > 0) answer.warnings = warnings;
  return answer;
}

/** A planned computation whose result is shaped into an answer when it runs. */
function answering<R extends Warned>(planned: Planned<R>, shape: (result: R) => Record<string, unknown>): Job {
  return {
    flops: planned.flops,
    answer: planned.answer,
    run: () => {
      const result = planned.run();
      return withWarnings(shape(result), result.warnings);
    },
  };
}

function checkAnswer(r: CheckResult, write: Write): Record<string, unknown> {
  const answer: Record<string, unknown> = { value: write(r.value), gradient: perInput(r.gradient, write) };
  if (r.coordinates) {
    answer.numeric = perInput(r.coordinates.numeric, write);
    const errors: Record<string, { maxAbsError: number | string; maxRelError: number | string }> = byName();
    for (const [name, e] of r.coordinates.errors) errors[name] = { maxAbsError: jsonNumber(e.maxAbsError), maxRelError: jsonNumber(e.maxRelError) };
    answer.errors = errors;
  } else {
    const directions = (r.directions ?? []).map((d) => ({ ad: jsonNumber(d.ad), numeric: jsonNumber(d.numeric) }));
    answer.directions = directions;
    answer.numeric = directions.map((d) => d.numeric);
  }
  // Errors may be infinite (a finite difference of exactly 0, a NaN gradient): JSON-safe numbers.
  return Object.assign(answer, {
    ok: r.ok,
    maxAbsError: jsonNumber(r.maxAbsError),
    maxRelError: jsonNumber(r.maxRelError),
    evaluations: r.evaluations,
    rtol: r.rtol,
    atol: r.atol,
    method: r.method,
  });
}

// --- the operations ---------------------------------------------------------------------

type Planner<K extends OperationName> = (point: Point, request: RequestTable[K], write: Write) => Job;

const PLANNERS: { [K in OperationName]: Planner<K> } = {
  eval: ({ prepared, inputs }, _request, write) => answering(value(prepared, inputs), (r) => ({ value: write(r.value), shape: [...r.value.shape] })),
  grad: ({ prepared, inputs, wrt }, _request, write) => answering(grad(prepared, inputs, wrt), (r) => ({ value: write(r.value), gradient: perInput(r.gradient, write) })),
  jvp: (point, request, write) => {
    const names = [...point.inputs.keys()].filter((n) => Object.hasOwn(request.tangents, n) && request.tangents[n] !== undefined);
    const tangents = readSeeds(point, request.tangents, 'tangents', names, { unknownDetail: ': the inputs are the keys of `at`' });
    return answering(jvp(point.prepared, point.inputs, tangents), (r) => ({ value: write(r.value), tangent: write(r.tangent) }));
  },
  vjp: (point, request, write) => {
    const cotangent = readCotangent(point, request.cotangent);
    return answering(vjp(point.prepared, point.inputs, point.wrt, cotangent), (r) => ({ value: write(r.value), vjp: perInput(r.vjp, write) }));
  },
  jacobian: ({ prepared, inputs, wrt }, request, write) =>
    answering(jacobian(prepared, inputs, wrt, request.mode ?? 'auto'), (r) => ({ value: write(r.value), jacobian: perInput(r.jacobian, write), mode: r.mode, passes: r.passes })),
  hessian: ({ prepared, inputs, wrt }, _request, write) =>
    answering(hessian(prepared, inputs, wrt), (r) => {
      const h: Record<string, Record<string, Value>> = byName();
      for (const [a, row] of r.hessian) h[a] = perInput(row, write);
      return { value: write(r.value), gradient: perInput(r.gradient, write), hessian: h };
    }),
  hvp: (point, request, write) => {
    const vector = readSeeds(point, request.vector, 'vector', point.wrt, { unknownDetail: ': the inputs are the keys of `at`' });
    return answering(hvp(point.prepared, point.inputs, point.wrt, vector), (r) => ({
      value: write(r.value),
      gradient: perInput(r.gradient, write),
      hvp: perInput(r.hvp, write),
    }));
  },
  check: ({ prepared, inputs, wrt }, request, write) =>
    answering(
      check(prepared, inputs, wrt, {
        rtol: request.rtol ?? CHECK_DEFAULTS.rtol,
        atol: request.atol ?? CHECK_DEFAULTS.atol,
        method: request.method ?? CHECK_DEFAULTS.method,
        directions: request.directions,
        seed: request.seed ?? CHECK_DEFAULTS.seed,
      }),
      (r) => checkAnswer(r, write),
    ),
};

/** Plan a request (one point or several); throws EngineError for bad input or work past a limit. */
export function planRequest<K extends OperationName>(engine: Engine, op: K, request: RequestTable[K], maxFlops = engine.limits.maxFlops): Job {
  const planner = PLANNERS[op] as Planner<K>;
  const write = tensorWriter(request.encoding);
  if (request.points !== undefined) {
    if (request.at !== undefined) {
      throw new EngineError('validation_error', 'give either `at` (one point) or `points` (several), not both', { path: ['points'] });
    }
    if (request.points.length > engine.limits.maxPoints) {
      throw new EngineError('limit_exceeded', `${request.points.length} points, more than the limit of ${engine.limits.maxPoints} (MAX_POINTS)`, {
        path: ['points'],
      });
    }
    const jobs = request.points.map((at, i) => planner(readPoint(engine, request, at, ['points', i]), request, write));
    return admit(
      engine,
      {
        flops: jobs.reduce((n, j) => n + j.flops, 0),
        answer: jobs.reduce((n, j) => n + j.answer, 0),
        run: () => ({ results: jobs.map((j) => j.run()) }),
      },
      maxFlops,
    );
  }
  if (request.at === undefined) throw new EngineError('validation_error', 'give the point as `at` (or several as `points`)', { path: ['at'] });
  return admit(engine, planner(readPoint(engine, request, request.at, ['at']), request, write), maxFlops);
}

/** Refuse a planned job past MAX_ANSWER_ELEMENTS or the flops it may take. */
function admit(engine: Engine, job: Job, maxFlops: number): Job {
  const limits = engine.limits;
  if (job.answer > limits.maxAnswerElements) {
    throw new EngineError(
      'limit_exceeded',
      `the answer would hold ${job.answer} numbers (counting the rows of tensors with no elements), more than the limit of ${limits.maxAnswerElements} (MAX_ANSWER_ELEMENTS): ask for less (fewer wrt inputs, a smaller output, fewer points)`,
    );
  }
  if (job.flops > maxFlops) {
    const limit = maxFlops < limits.maxFlops ? 'what is left of its allowance' : 'the limit of';
    throw new EngineError(
      'limit_exceeded',
      `this request needs about ${job.flops.toExponential(2)} floating-point operations, more than ${limit} ${maxFlops.toExponential(2)} (MAX_FLOPS)`,
    );
  }
  return job;
}

/** The inputs of a point as JSON (echoed by answers that drew their own points). */
export function inputsAnswer(inputs: Inputs): Record<string, Value> {
  return Object.fromEntries([...inputs].map(([name, t]) => [name, fromTensor(t)]));
}
