// The differentiation operations of CONTRACT §2 over plain data: a request in, a JSON-ready answer
// out. Each request is first planned (parsed, checked, differentiated: cached) into a Job that
// knows its cost, so the caller can run it inline or on a worker, and refuse it past a limit.

import { EngineError } from './errors.js';
import { hasNonFinite, nonFiniteOrigins, run, type Bindings, type Plan } from './ir/evaluate.js';
import type { GraphJson } from './ir/from-json.js';
import type { Node } from './ir/graph.js';
import { LruCache } from './lru.js';
import { DEFAULT_LIMITS, Prepared, totalSize, type FunctionSource, type Limits, type Program } from './prepare.js';
import { Random } from './random.js';
import { permute, stridedSlice } from './tensor/layout.js';
import { formatShape, reshapeTensor, shapesEqual, sizeOf, type Shape, type Tensor } from './tensor/tensor.js';
import { fromTensor, jsonNumber, MAX_RANK, toTensor, type Value } from './values.js';

export interface FunctionRequest {
  expr?: string | undefined;
  graph?: GraphJson | undefined;
  at?: Record<string, unknown> | undefined;
  points?: Record<string, unknown>[] | undefined;
  wrt?: string[] | undefined;
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

export interface Warning {
  code: string;
  message: string;
  node?: string;
  position?: { line: number; column: number };
}

/** A planned request: its estimated cost, and how to compute the answer. */
export interface Job {
  /** Estimated work: floating-point operations plus elements written (copies cost too). */
  readonly flops: number;
  /** Numbers the answer will hold (its JSON must be built, sent and read). */
  readonly answer: number;
  run(): Record<string, unknown>;
}

/** PyTorch gradcheck's defaults. */
export const CHECK_DEFAULTS = { rtol: 1e-3, atol: 1e-5 } as const;

interface Point {
  prepared: Prepared;
  bindings: Map<string, Tensor>;
  wrt: string[];
}

export interface EngineOptions {
  /** Prepared functions kept (least recently used dropped first). */
  cacheSize?: number;
  /** Bytes of heap the kept functions may hold in all, weighed by `Prepared.bytes`. */
  cacheBytes?: number;
}

/** Estimated cost of one interpreted step beyond its flops (dispatch, allocation), in flop units. */
export const STEP_COST = 1000;

export class Engine {
  private readonly cache: LruCache<string, Prepared>;

  constructor(
    readonly limits: Limits = DEFAULT_LIMITS,
    options: EngineOptions = {},
  ) {
    // Weighed by the bytes a prepared function holds: its graphs (the primal and every derived
    // program built so far), plans, compiled code and constants.
    this.cache = new LruCache(options.cacheSize ?? 256, options.cacheBytes ?? 256 * 2 ** 20, (prepared) => prepared.bytes);
  }

  get cachedFunctions(): number {
    return this.cache.size;
  }

  /** Estimated bytes the cached functions hold. */
  get cachedBytes(): number {
    return this.cache.weight;
  }

  /** Plan a request; throws EngineError for bad input or work past a limit. */
  plan<K extends OperationName>(op: K, request: RequestTable[K], maxFlops = this.limits.maxFlops): Job {
    const planner = PLANNERS[op] as (engine: Engine, point: Point, request: RequestTable[K]) => Job;
    if (request.points !== undefined) {
      if (request.at !== undefined) {
        throw new EngineError('validation_error', 'give either `at` (one point) or `points` (several), not both', { path: ['points'] });
      }
      if (request.points.length > this.limits.maxPoints) {
        throw new EngineError('limit_exceeded', `${request.points.length} points, more than the limit of ${this.limits.maxPoints} (MAX_POINTS)`, {
          path: ['points'],
        });
      }
      const jobs = request.points.map((at, i) => planner(this, this.point(request, at, ['points', i]), request));
      return this.admit(
        {
          flops: jobs.reduce((n, j) => n + j.flops, 0),
          answer: jobs.reduce((n, j) => n + j.answer, 0),
          run: () => ({ results: jobs.map((j) => j.run()) }),
        },
        maxFlops,
      );
    }
    if (request.at === undefined) throw new EngineError('validation_error', 'give the point as `at` (or several as `points`)', { path: ['at'] });
    return this.admit(planner(this, this.point(request, request.at, ['at']), request), maxFlops);
  }

  private admit(job: Job, maxFlops: number): Job {
    this.reweigh();
    if (job.answer > this.limits.maxAnswerElements) {
      throw new EngineError(
        'limit_exceeded',
        `the answer would hold ${job.answer} numbers, more than the limit of ${this.limits.maxAnswerElements} (MAX_ANSWER_ELEMENTS): ask for less (fewer wrt inputs, a smaller output, fewer points)`,
      );
    }
    if (job.flops > maxFlops) {
      const limit = maxFlops < this.limits.maxFlops ? 'what is left of its allowance' : 'the limit of';
      throw new EngineError(
        'limit_exceeded',
        `this request needs about ${job.flops.toExponential(2)} floating-point operations, more than ${limit} ${maxFlops.toExponential(2)} (MAX_FLOPS)`,
      );
    }
    return job;
  }

  /** Parse the point and fetch (or prepare) the function for its input shapes. */
  point(request: FunctionRequest, at: Record<string, unknown>, path: (string | number)[]): Point {
    this.checkInputCount(Object.keys(at).length, path);
    const bindings = new Map<string, Tensor>();
    for (const [name, value] of Object.entries(at)) bindings.set(name, toTensor(value, [...path, name], this.limits.maxTensorElements));
    const prepared = this.prepare(request, bindings);
    const wrt = request.wrt ?? [...bindings.keys()];
    wrt.forEach((name, i) => {
      if (!bindings.has(name)) {
        throw new EngineError('unknown_input', `wrt names '${name}', which is not an input: the inputs are the keys of \`at\` (${[...bindings.keys()].join(', ')})`, {
          path: ['wrt', i],
        });
      }
    });
    if (new Set(wrt).size !== wrt.length) throw new EngineError('validation_error', 'wrt names an input twice', { path: ['wrt'] });
    return { prepared, bindings, wrt };
  }

  prepare(request: FunctionRequest, bindings: ReadonlyMap<string, Tensor>): Prepared {
    return this.prepareInputs(request, [...bindings].map(([name, t]) => ({ name, shape: t.shape })));
  }

  /** Prepare the function from input shapes alone (no values): for shape and cost analysis. */
  prepareShapes(request: FunctionRequest, shapes: Readonly<Record<string, readonly number[]>>): Prepared {
    this.checkInputCount(Object.keys(shapes).length, ['shapes']);
    const inputs = Object.entries(shapes).map(([name, shape]) => {
      const path = ['shapes', name];
      if (shape.length > MAX_RANK) throw new EngineError('validation_error', `shapes.${name} has more than ${MAX_RANK} dimensions`, { path });
      shape.forEach((d, i) => {
        if (!Number.isSafeInteger(d) || d < 0) {
          throw new EngineError('validation_error', `shapes.${name}[${i}] must be a whole number ≥ 0, got ${d}`, { path: [...path, i] });
        }
      });
      const size = sizeOf(shape);
      if (size > this.limits.maxTensorElements) {
        throw new EngineError('limit_exceeded', `shapes.${name} has ${size} elements, more than the limit of ${this.limits.maxTensorElements} (MAX_TENSOR_ELEMENTS)`, {
          path,
        });
      }
      return { name, shape: [...shape] };
    });
    return this.prepareInputs(request, inputs);
  }

  /** Many named inputs cost planning and bookkeeping per name: past MAX_INPUTS, send one array instead. */
  checkInputCount(count: number, path: (string | number)[]): void {
    if (count > this.limits.maxInputs) {
      throw new EngineError(
        'limit_exceeded',
        `${count} named inputs, more than the limit of ${this.limits.maxInputs} (MAX_INPUTS): pass many numbers as one array input instead`,
        { path },
      );
    }
  }

  private prepareInputs(request: FunctionRequest, inputs: { name: string; shape: Shape }[]): Prepared {
    const source = functionSource(request);
    const key = JSON.stringify([source.expr ?? source.graph, inputs.map((i) => [i.name, i.shape])]);
    let prepared = this.cache.get(key);
    if (!prepared) {
      prepared = new Prepared(source, inputs, this.limits);
      this.cache.set(key, prepared);
    }
    // Weighed again once the request's programs are built (they are built after this returns).
    this.pending.set(key, prepared);
    return prepared;
  }

  /** Functions prepared by the current plan, to be weighed again when it is done. */
  private readonly pending = new Map<string, Prepared>();

  /** Weigh the functions the last plan touched again: derived programs make them heavier. */
  reweigh(): void {
    for (const [key, prepared] of this.pending) if (this.cache.get(key) === prepared) this.cache.set(key, prepared);
    this.pending.clear();
  }
}

export function functionSource(request: FunctionRequest): FunctionSource {
  if (request.expr !== undefined && request.graph !== undefined) {
    throw new EngineError('validation_error', 'give exactly one of `expr` and `graph`, not both', { path: ['expr'] });
  }
  if (request.expr !== undefined) return { expr: request.expr };
  if (request.graph !== undefined) return { graph: request.graph };
  throw new EngineError('validation_error', 'give the function as `expr` (an expression) or `graph` (a JSON graph)', { path: ['expr'] });
}

// --- running programs --------------------------------------------------------------------

/** Run a program; when an output is not finite, say where the NaNs or infinities came from. */
export function runChecked(program: Program, bindings: Bindings, warnings: Warning[]): Tensor[] {
  const outputs = run(program.plan, bindings);
  if (outputs.some(hasNonFinite)) {
    for (const warning of nonFiniteWarnings(program.plan, bindings)) {
      if (!warnings.some((w) => w.message === warning.message)) warnings.push(warning);
    }
  }
  return outputs;
}

const HINTS: Partial<Record<string, string>> = {
  log: 'log of a negative number or of 0',
  log1p: 'log1p of a number ≤ -1',
  sqrt: 'sqrt of a negative number',
  div: 'a division by zero',
  pow: 'a power of a negative number or of 0',
  asin: 'asin outside [-1, 1]',
  acos: 'acos outside [-1, 1]',
  inv: 'the inverse of a singular matrix',
  solve: 'a singular system',
  logdet: 'the log-determinant of a singular matrix',
  cholesky: 'the Cholesky factor of a matrix that is not positive definite',
  exp: 'exp overflowed',
};

export function nonFiniteWarnings(plan: Plan, bindings: Bindings): Warning[] {
  const graph = plan.graph;
  const origins = nonFiniteOrigins(plan, bindings);
  const warnings: Warning[] = origins.inputs.map((id) => {
    const name = (graph.nodes[id] as Node<'input'>).attrs.name;
    const what = name === 'cotangent' ? 'the cotangent' : `the ${name.startsWith('tangent:') ? 'tangent of ' : 'input '}'${name.replace(/^tangent:/, '')}'`;
    return { code: 'non_finite_input', message: `${what} holds NaN or infinite values`, node: name.replace(/^tangent:/, '') };
  });
  if (origins.first === undefined) return warnings;
  const node = graph.nodes[origins.first]!;
  const primal = node.origin ? graph.nodes[node.origin.node]! : node;
  const label = primal.label ?? `#${primal.id}`;
  const where = primal.span ? ` (line ${primal.span.line}, column ${primal.span.column})` : '';
  const warning: Warning = {
    code: 'non_finite',
    message: node.origin
      ? `a NaN or infinity first arose in the ${node.origin.rule === 'jvp' ? 'forward-mode (tangent)' : 'reverse-mode (adjoint)'} rule of ${primal.op} at ${label}${where}` +
        (primal.op === 'sqrt' ? ': the derivative of sqrt is infinite at 0' : '')
      : `a NaN or infinity first arose at ${label}${where}: ${node.op}` + (HINTS[node.op] ? ` (${HINTS[node.op]})` : ''),
    node: label,
  };
  if (primal.span) warning.position = { line: primal.span.line, column: primal.span.column };
  warnings.push(warning);
  return warnings;
}

function withWarnings(answer: Record<string, unknown>, warnings: Warning[]): Record<string, unknown> {
  if (warnings.length > 0) answer.warnings = warnings;
  return answer;
}

/** An object keyed by input names: null-prototype, so a name like `__proto__` is an ordinary key. */
function byName<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function perInput(names: readonly string[], tensors: readonly Tensor[]): Record<string, Value> {
  const out: Record<string, Value> = byName();
  names.forEach((n, i) => (out[n] = fromTensor(tensors[i]!)));
  return out;
}

/** Seeds like `tangents`: a value per input (shape-checked), zeros for those not given. */
function seedsFor(point: Point, given: Record<string, unknown>, field: string, names: readonly string[]): Map<string, Tensor> {
  for (const name of Object.keys(given)) {
    if (!point.bindings.has(name)) {
      throw new EngineError('unknown_input', `${field} names '${name}', which is not an input: the inputs are the keys of \`at\``, { path: [field, name] });
    }
  }
  const seeds = new Map<string, Tensor>();
  for (const name of names) {
    const shape = point.bindings.get(name)!.shape;
    const value = Object.hasOwn(given, name) ? given[name] : undefined;
    const t = value === undefined ? { shape, data: new Float64Array(sizeOf(shape)) } : toTensor(value, [field, name], point.prepared.limits.maxTensorElements);
    if (!shapesEqual(t.shape, shape)) {
      throw new EngineError('shape_mismatch', `${field}.${name} has shape ${formatShape(t.shape)}, but the input has shape ${formatShape(shape)}`, {
        path: [field, name],
      });
    }
    seeds.set(`tangent:${name}`, t);
  }
  return seeds;
}

function bind(point: Point, extra?: ReadonlyMap<string, Tensor>): Map<string, Tensor> {
  const all = new Map(point.bindings);
  if (extra) for (const [k, v] of extra) all.set(k, v);
  return all;
}

/** A stack of n = Σ size(shapes) unit tangents, split by input: block a is [n, ...shape(a)], with ones where row = column. */
export function identityBlocks(shapes: readonly Shape[]): Tensor[] {
  const n = totalSize(shapes);
  let offset = 0;
  return shapes.map((shape) => {
    const size = sizeOf(shape);
    const data = new Float64Array(n * size);
    for (let i = 0; i < size; i++) data[(offset + i) * size + i] = 1;
    offset += size;
    return { shape: [n, ...shape], data };
  });
}

function tangentSeeds(names: readonly string[], blocks: readonly Tensor[]): Map<string, Tensor> {
  return new Map(names.map((name, i) => [`tangent:${name}`, blocks[i]!]));
}

/** Rows [offset, offset + count) of a stack [n, ...rest], as a [count, size(rest)] matrix. */
function rows(stack: Tensor, offset: number, count: number): Tensor {
  const n = stack.shape[0]!;
  const width = stack.data.length / Math.max(n, 1);
  return stridedSlice(reshapeTensor(stack, [n, width]), [offset, 0], [1, 1], [count, width]);
}

/** A program's estimated work: its flops, every element it writes, and a dispatch cost per step. */
export function work(plan: Plan): number {
  return plan.flops + plan.elements + STEP_COST * plan.schedule.length;
}

/**
 * Identity seeds for n = Σ size(shapes) batched passes hold n² numbers: counted as work and as
 * live memory before they are made (many scalar inputs in forward mode would otherwise be quadratic).
 */
function checkSeeds(point: Point, n: number, program: Program, advice: string): number {
  const seeds = n * n;
  const live = program.plan.peakElements + seeds;
  if (live > point.prepared.limits.maxLiveElements) {
    throw new EngineError(
      'limit_exceeded',
      `${n} batched passes with their ${n} × ${n} seeds would hold ${live} elements at once, more than the limit of ${point.prepared.limits.maxLiveElements} (MAX_LIVE_ELEMENTS): ${advice}`,
    );
  }
  return seeds;
}

/** A program's work and the numbers its answer will hold (its outputs). */
function cost(plan: Plan): { flops: number; answer: number } {
  let answer = 0;
  for (const o of plan.outputs) answer += sizeOf(plan.graph.nodes[o]!.shape);
  return { flops: work(plan), answer };
}

// --- the planners ------------------------------------------------------------------------

type Planner<K extends OperationName> = (engine: Engine, point: Point, request: RequestTable[K]) => Job;

const evalPlanner: Planner<'eval'> = (_e, point) => {
  const program = point.prepared.valueProgram();
  return {
    ...cost(program.plan),
    run: () => {
      const warnings: Warning[] = [];
      const [value] = runChecked(program, point.bindings, warnings);
      return withWarnings({ value: fromTensor(value!), shape: [...value!.shape] }, warnings);
    },
  };
};

const gradPlanner: Planner<'grad'> = (_e, point) => {
  const program = point.prepared.gradientProgram(point.wrt);
  return {
    ...cost(program.plan),
    run: () => {
      const warnings: Warning[] = [];
      const [value, ...grads] = runChecked(program, point.bindings, warnings);
      return withWarnings({ value: fromTensor(value!), gradient: perInput(point.wrt, grads) }, warnings);
    },
  };
};

const jvpPlanner: Planner<'jvp'> = (_e, point, request) => {
  const names = [...point.bindings.keys()].filter((n) => Object.hasOwn(request.tangents, n) && request.tangents[n] !== undefined);
  const seeds = seedsFor(point, request.tangents, 'tangents', names);
  const program = point.prepared.jvpProgram(names, []);
  return {
    ...cost(program.plan),
    run: () => {
      const warnings: Warning[] = [];
      const [value, tangent] = runChecked(program, bind(point, seeds), warnings);
      return withWarnings({ value: fromTensor(value!), tangent: fromTensor(tangent!) }, warnings);
    },
  };
};

const vjpPlanner: Planner<'vjp'> = (_e, point, request) => {
  const prepared = point.prepared;
  const cotangent = toTensor(request.cotangent, ['cotangent'], prepared.limits.maxTensorElements);
  if (!shapesEqual(cotangent.shape, prepared.outputShape)) {
    throw new EngineError(
      'shape_mismatch',
      `cotangent has shape ${formatShape(cotangent.shape)}, but the output has shape ${formatShape(prepared.outputShape)}`,
      { path: ['cotangent'] },
    );
  }
  const program = prepared.vjpProgram(point.wrt, []);
  return {
    ...cost(program.plan),
    run: () => {
      const warnings: Warning[] = [];
      const [value, ...vjps] = runChecked(program, bind(point, new Map([['cotangent', cotangent]])), warnings);
      return withWarnings({ value: fromTensor(value!), vjp: perInput(point.wrt, vjps) }, warnings);
    },
  };
};

function checkJacobianSize(point: Point, m: number, what: string): void {
  const n = totalSize(point.wrt.map((a) => point.bindings.get(a)!.shape));
  if (n * m > point.prepared.limits.maxJacobianElements) {
    throw new EngineError(
      'limit_exceeded',
      `the ${what} would have ${n * m} elements (${m} × ${n}), more than the limit of ${point.prepared.limits.maxJacobianElements} (MAX_JACOBIAN_ELEMENTS)`,
    );
  }
}

const jacobianPlanner: Planner<'jacobian'> = (_e, point, request) => {
  const prepared = point.prepared;
  const outShape = prepared.outputShape;
  const m = sizeOf(outShape);
  const shapes = point.wrt.map((a) => point.bindings.get(a)!.shape);
  const n = totalSize(shapes);
  checkJacobianSize(point, m, 'Jacobian');
  // The lecture's rule: n forward passes (one per input coordinate) or m reverse passes (one per output).
  const mode = request.mode === undefined || request.mode === 'auto' ? (n < m ? 'forward' : 'reverse') : request.mode;
  const reshapeBlock = (block: Tensor, inShape: Shape): Tensor => reshapeTensor(block, [...outShape, ...inShape]);
  if (mode === 'forward') {
    const program = prepared.jvpProgram(point.wrt, [n]);
    const seeds = checkSeeds(point, n, program, 'use mode "reverse" (one pass per output element), or fewer wrt inputs');
    const { flops, answer } = cost(program.plan);
    return {
      flops: flops + seeds,
      answer,
      run: () => {
        const warnings: Warning[] = [];
        const [value, tangents] = runChecked(program, bind(point, tangentSeeds(point.wrt, identityBlocks(shapes))), warnings);
        const jacobian: Record<string, Value> = byName();
        let offset = 0;
        point.wrt.forEach((a, i) => {
          const size = sizeOf(shapes[i]!);
          // tangents[k] is column k of J: take this input's columns and transpose them into rows.
          jacobian[a] = fromTensor(reshapeBlock(permute(rows(tangents!, offset, size), [1, 0]), shapes[i]!));
          offset += size;
        });
        return withWarnings({ value: fromTensor(value!), jacobian, mode, passes: n }, warnings);
      },
    };
  }
  const program = prepared.vjpProgram(point.wrt, [m]);
  const seeds = checkSeeds(point, m, program, 'use mode "forward" (one pass per input coordinate), or a smaller output');
  const reverseCost = cost(program.plan);
  return {
    flops: reverseCost.flops + seeds,
    answer: reverseCost.answer,
    run: () => {
      const warnings: Warning[] = [];
      const [value, ...adjoints] = runChecked(program, bind(point, new Map([['cotangent', identityBlocks([outShape])[0]!]])), warnings);
      const jacobian: Record<string, Value> = byName();
      // adjoints[a][k] is row k of J restricted to a.
      point.wrt.forEach((a, i) => (jacobian[a] = fromTensor(reshapeBlock(adjoints[i]!, shapes[i]!))));
      return withWarnings({ value: fromTensor(value!), jacobian, mode, passes: m }, warnings);
    },
  };
};

const hessianPlanner: Planner<'hessian'> = (_e, point) => {
  const prepared = point.prepared;
  const shapes = point.wrt.map((a) => point.bindings.get(a)!.shape);
  const n = totalSize(shapes);
  checkJacobianSize(point, n, 'Hessian');
  const program = prepared.secondOrderProgram(point.wrt, [n]);
  const seeds = checkSeeds(point, n, program, 'ask for fewer wrt inputs, or use /hvp');
  const { flops, answer } = cost(program.plan);
  return {
    flops: flops + seeds,
    answer,
    run: () => {
      const warnings: Warning[] = [];
      const outputs = runChecked(program, bind(point, tangentSeeds(point.wrt, identityBlocks(shapes))), warnings);
      const k = point.wrt.length;
      const grads = outputs.slice(1, 1 + k);
      const second = outputs.slice(1 + k);
      const hessian: Record<string, Record<string, Value>> = byName();
      let offset = 0;
      point.wrt.forEach((a, i) => {
        const size = sizeOf(shapes[i]!);
        hessian[a] = byName();
        // second[j][r] = ∂(∂f/∂b_j)/∂(coordinate r): rows of a's block give H[a][b].
        point.wrt.forEach((b, j) => (hessian[a]![b] = fromTensor(reshapeTensor(rows(second[j]!, offset, size), [...shapes[i]!, ...shapes[j]!]))));
        offset += size;
      });
      return withWarnings({ value: fromTensor(outputs[0]!), gradient: perInput(point.wrt, grads), hessian }, warnings);
    },
  };
};

const hvpPlanner: Planner<'hvp'> = (_e, point, request) => {
  const seeds = seedsFor(point, request.vector, 'vector', point.wrt);
  const program = point.prepared.secondOrderProgram(point.wrt, []);
  return {
    ...cost(program.plan),
    run: () => {
      const warnings: Warning[] = [];
      const outputs = runChecked(program, bind(point, seeds), warnings);
      const k = point.wrt.length;
      return withWarnings(
        { value: fromTensor(outputs[0]!), gradient: perInput(point.wrt, outputs.slice(1, 1 + k)), hvp: perInput(point.wrt, outputs.slice(1 + k)) },
        warnings,
      );
    },
  };
};

/** The finite-difference step for a coordinate of magnitude |x|: eps^(1/3) max(1, |x|). */
export function centralStep(x: number): number {
  return Math.cbrt(Number.EPSILON) * Math.max(1, Math.abs(x));
}

const checkPlanner: Planner<'check'> = (_e, point, request) => {
  const prepared = point.prepared;
  const gradient = prepared.gradientProgram(point.wrt);
  const value = prepared.valueProgram();
  const central = (request.method ?? 'central') === 'central';
  const rtol = request.rtol ?? CHECK_DEFAULTS.rtol;
  const atol = request.atol ?? CHECK_DEFAULTS.atol;
  const shapes = point.wrt.map((a) => point.bindings.get(a)!.shape);
  const n = totalSize(shapes);
  const probes = request.directions ?? n;
  const evaluations = (central ? 2 : 1) * probes + (central ? 0 : 1);
  // Each evaluation copies the perturbed input (one coordinate) or all wrt inputs (a direction).
  const copied = request.directions === undefined ? Math.max(...shapes.map(sizeOf), 0) : n;
  return {
    flops: work(gradient.plan) + evaluations * (work(value.plan) + copied + STEP_COST * point.bindings.size),
    answer: cost(gradient.plan).answer + n,
    run: () => {
      const warnings: Warning[] = [];
      const [f0, ...grads] = runChecked(gradient, point.bindings, warnings);
      const fx = f0!.data[0]!;
      const evalAt = (bindings: Map<string, Tensor>): number => run(value.plan, bindings)[0]!.data[0]!;
      /** The derivative along `direction` (per-input perturbations), by differences with step h. */
      const differentiate = (perturb: (name: string, x: Float64Array, h: number) => void, h: number, perturbed: readonly string[] = point.wrt): number => {
        const at = (sign: number): number => {
          const moved = new Map(point.bindings);
          for (const name of perturbed) {
            const x = point.bindings.get(name)!;
            const data = x.data.slice();
            perturb(name, data, sign * h);
            moved.set(name, { shape: x.shape, data });
          }
          return evalAt(moved);
        };
        return central ? (at(1) - at(-1)) / (2 * h) : (at(1) - fx) / h;
      };
      const step = (x: number): number => (central ? centralStep(x) : Math.sqrt(Number.EPSILON) * Math.max(1, Math.abs(x)));
      let maxAbs = 0;
      let maxRel = 0;
      let ok = true;
      const compare = (ad: number, fd: number): { abs: number; rel: number } => {
        const abs = Math.abs(ad - fd);
        const rel = abs / Math.max(Math.abs(fd), Number.MIN_VALUE);
        if (!(abs <= atol + rtol * Math.abs(fd))) ok = false;
        maxAbs = Math.max(maxAbs, abs);
        if (abs > atol) maxRel = Math.max(maxRel, rel);
        return { abs, rel };
      };
      const answer: Record<string, unknown> = { value: fromTensor(f0!), gradient: perInput(point.wrt, grads) };
      if (request.directions === undefined) {
        const numeric: Record<string, Value> = byName();
        const errors: Record<string, { maxAbsError: number | string; maxRelError: number | string }> = byName();
        point.wrt.forEach((name, i) => {
          const x = point.bindings.get(name)!;
          const fd = new Float64Array(x.data.length);
          let abs = 0;
          let rel = 0;
          for (let k = 0; k < x.data.length; k++) {
            const h = step(x.data[k]!);
            fd[k] = differentiate((_, data, s) => (data[k] = data[k]! + s), h, [name]);
            const e = compare(grads[i]!.data[k]!, fd[k]!);
            abs = Math.max(abs, e.abs);
            if (e.abs > atol) rel = Math.max(rel, e.rel);
          }
          numeric[name] = fromTensor({ shape: x.shape, data: fd });
          errors[name] = { maxAbsError: jsonNumber(abs), maxRelError: jsonNumber(rel) };
        });
        answer.numeric = numeric;
        answer.errors = errors;
      } else {
        const random = new Random(request.seed ?? 0);
        const directional: { ad: number | string; numeric: number | string }[] = [];
        let scale = 1;
        for (const name of point.wrt) for (const v of point.bindings.get(name)!.data) scale = Math.max(scale, Math.abs(v));
        for (let d = 0; d < probes; d++) {
          const v = point.wrt.map((name) => Float64Array.from(point.bindings.get(name)!.data, () => random.normal()));
          const norm = Math.sqrt(v.reduce((s, dv) => s + dv.reduce((t, x) => t + x * x, 0), 0)) || 1;
          v.forEach((dv) => dv.forEach((x, k) => (dv[k] = x / norm)));
          const ad = v.reduce((s, dv, i) => s + dv.reduce((t, x, k) => t + x * grads[i]!.data[k]!, 0), 0);
          const h = step(scale);
          const fd = differentiate((name, data, s) => {
            const dv = v[point.wrt.indexOf(name)]!;
            for (let k = 0; k < data.length; k++) data[k] = data[k]! + s * dv[k]!;
          }, h);
          compare(ad, fd);
          directional.push({ ad: jsonNumber(ad), numeric: jsonNumber(fd) });
        }
        answer.directions = directional;
        answer.numeric = directional.map((d) => d.numeric);
      }
      // Errors may be infinite (a finite difference of exactly 0, a NaN gradient): JSON-safe numbers.
      Object.assign(answer, { ok, maxAbsError: jsonNumber(maxAbs), maxRelError: jsonNumber(maxRel), evaluations, rtol, atol, method: central ? 'central' : 'forward' });
      if (!Number.isFinite(fx)) ok = false;
      answer.ok = ok;
      return withWarnings(answer, warnings);
    },
  };
};

const PLANNERS: { [K in OperationName]: Planner<K> } = {
  eval: evalPlanner,
  grad: gradPlanner,
  jvp: jvpPlanner,
  vjp: vjpPlanner,
  jacobian: jacobianPlanner,
  hessian: hessianPlanner,
  hvp: hvpPlanner,
  check: checkPlanner,
};
