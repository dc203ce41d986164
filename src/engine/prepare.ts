// A prepared function: the source parsed, checked and lowered once for given input shapes, with
// its derived programs (gradient, JVP, VJP, Jacobian, Hessian) built on first use and kept, so a
// caller that asks again pays only for evaluation.

import { forwardMode, reverseMode } from './ad/transform.js';
import { EngineError } from './errors.js';
import { Builder } from './ir/builder.js';
import { makePlan, type Plan } from './ir/evaluate.js';
import { lowerGraph, type GraphJson } from './ir/from-json.js';
import { dependents, type Node, type NodeId } from './ir/graph.js';
import { lowerProgram } from './lang/lower.js';
import { parseProgram } from './lang/parser.js';
import { DEFAULT_MAX_DIMENSION } from './ops/shapes.js';
import type { AttrsOf, OpName } from './ops/types.js';
import { formatShape, sizeOf, type Shape } from './tensor/tensor.js';

export type FunctionSource = { expr: string; graph?: undefined } | { graph: GraphJson; expr?: undefined };

export interface Limits {
  /** Characters of an expression. */
  maxExprLength: number;
  /** Primitive steps of a function, and of any program derived from it. */
  maxNodes: number;
  /** Elements of any one tensor: an input, an intermediate, a result (rows, for one of zero elements). */
  maxTensorElements: number;
  /** Length of any one dimension of any tensor. */
  maxDimension: number;
  /** Elements held at once while a program runs. */
  maxLiveElements: number;
  /** Estimated floating-point operations of one request. */
  maxFlops: number;
  /** Elements of a Jacobian or Hessian. */
  maxJacobianElements: number;
  /** Points of a `points` batch. */
  maxPoints: number;
  /** Numbers a trace returns (every step's value and derivatives). */
  maxTraceElements: number;
  /** Numbers any other answer holds (values, gradients, Jacobians, ...). */
  maxAnswerElements: number;
  /** Named inputs of one point (keys of `at`, `shapes`). */
  maxInputs: number;
  /** Steps of one derived program (value + derivatives): what its graph holds in memory. */
  maxDerivedNodes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxExprLength: 100_000,
  maxNodes: 100_000,
  maxTensorElements: 4_000_000,
  maxDimension: DEFAULT_MAX_DIMENSION,
  maxLiveElements: 64_000_000,
  maxFlops: 20e9,
  maxJacobianElements: 1_000_000,
  maxPoints: 1000,
  maxTraceElements: 200_000,
  maxAnswerElements: 1_000_000,
  maxInputs: 1000,
  maxDerivedNodes: 250_000,
};

/**
 * Bytes of heap one graph node costs with its plan and compiled code, as measured (about 500 with
 * its shape, attributes, origin and plan slots; compiled source adds the rest): what the cache weighs.
 */
export const NODE_BYTES = 600;

/**
 * Planning work allowed where the caller cannot afford a long synchronous stall (the event loop),
 * in estimated derived-graph nodes; past it, building a program throws PlanningDeferred so the
 * caller can plan elsewhere. Set by `withPlanningAllowance` around one synchronous call.
 */
let planningAllowance = Infinity;

/** Thrown when a program would take more planning than `withPlanningAllowance` allows here. */
export class PlanningDeferred extends Error {
  constructor(readonly estimatedNodes: number) {
    super(`planning needs about ${estimatedNodes} derived steps: plan it elsewhere`);
    this.name = 'PlanningDeferred';
  }
}

/** Run `f` (synchronous) with at most `nodes` estimated derived-graph nodes of new planning. */
export function withPlanningAllowance<T>(nodes: number, f: () => T): T {
  const saved = planningAllowance;
  planningAllowance = nodes;
  try {
    return f();
  } finally {
    planningAllowance = saved;
  }
}

/** How many derived nodes a program of each kind makes per primal node (measured: a Hessian ~48). */
function growth(key: string): number {
  if (key === 'value') return 1;
  if (key.startsWith('hess:')) return 60;
  return 8;
}

export interface Program {
  readonly plan: Plan;
  readonly graph: Builder;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Whether `name` can name an input (an identifier). */
export function isInputName(name: string): boolean {
  return IDENTIFIER.test(name);
}

export function inputNameMessage(name: string): string {
  return `input name '${name}' must be an identifier (letters, digits, _; not starting with a digit)`;
}

export class Prepared {
  /** The function as written (no sharing or shortcuts): what traces show. */
  readonly primal: Builder;
  readonly output: NodeId;
  readonly inputs: readonly { name: string; shape: Shape }[];
  private readonly programs = new Map<string, Program>();

  constructor(
    source: FunctionSource,
    inputs: readonly { name: string; shape: Shape }[],
    readonly limits: Limits,
  ) {
    this.inputs = inputs;
    const b = new Builder({ optimize: false, maxElements: limits.maxTensorElements, maxDimension: limits.maxDimension, maxNodes: limits.maxNodes });
    for (const { name, shape } of inputs) {
      if (!IDENTIFIER.test(name)) {
        throw new EngineError('validation_error', inputNameMessage(name), { node: name });
      }
      b.input(name, shape);
    }
    if (source.expr !== undefined) {
      if (source.expr.length > limits.maxExprLength) {
        throw new EngineError('limit_exceeded', `the expression has ${source.expr.length} characters, more than the limit of ${limits.maxExprLength} (MAX_EXPR_LENGTH)`);
      }
      this.output = lowerProgram(b, parseProgram(source.expr)).output;
    } else {
      if (source.graph.nodes.length > limits.maxNodes) {
        throw new EngineError('limit_exceeded', `the graph has ${source.graph.nodes.length} nodes, more than the limit of ${limits.maxNodes} (MAX_NODES)`);
      }
      this.output = lowerGraph(b, source.graph, limits).output;
    }
    labelUnnamed(b, this.output);
    this.primal = b;
  }

  /** Elements of the constant tensors the function holds (what caching it costs). */
  get constantElements(): number {
    if (this.#constantElements === undefined) {
      let n = 0;
      for (const node of this.primal.nodes) if (node.op === 'const') n += sizeOf(node.shape);
      this.#constantElements = n;
    }
    return this.#constantElements;
  }

  /** The primal graph never changes once built: its constants are counted once. */
  #constantElements: number | undefined;

  get outputShape(): Shape {
    return this.primal.shapeOf(this.output);
  }

  inputShape(name: string): Shape {
    return this.primal.shapeOf(this.primal.inputs.get(name)!);
  }

  /** Estimated bytes of heap this prepared function holds: its graphs, plans, compiled code and constants. */
  get bytes(): number {
    let nodes = this.primal.nodes.length;
    let code = 0;
    for (const program of this.programs.values()) {
      nodes += program.graph.nodes.length;
      // Compiled code: its source text and the function V8 makes of it (measured: about 4 bytes a character).
      const runner = program.plan.compiled.runner;
      if (runner) code += 4 * runner.source.length;
    }
    return nodes * NODE_BYTES + code + 8 * this.constantElements;
  }

  /** Whether the program for `key` is built already (using it costs no planning). */
  hasProgram(key: string): boolean {
    return this.programs.has(key);
  }

  /** The program for `key`, built by `build` the first time. */
  program(key: string, build: () => { graph: Builder; outputs: NodeId[] }): Program {
    let program = this.programs.get(key);
    if (!program) {
      const estimate = this.primal.nodes.length * growth(key);
      if (estimate > planningAllowance) throw new PlanningDeferred(estimate);
      const { graph, outputs } = build();
      const plan = makePlan(graph, outputs);
      if (plan.peakElements > this.limits.maxLiveElements) {
        throw new EngineError(
          'limit_exceeded',
          `this computation would hold ${plan.peakElements} elements at once, more than the limit of ${this.limits.maxLiveElements} (MAX_LIVE_ELEMENTS)`,
        );
      }
      program = { plan, graph };
      this.programs.set(key, program);
    }
    return program;
  }

  /**
   * A fresh optimising builder holding a copy of the primal graph; `map` sends primal ids to copies.
   * The copy is optimised too (equal steps shared, shortcuts such as x*1 → x) unless `asWritten`:
   * then every primal node has its own copy, and only what is built afterwards is optimised.
   */
  copy(asWritten = false): { b: Builder; map: NodeId[] } {
    const b = new Builder({
      optimize: true,
      maxElements: this.limits.maxTensorElements,
      maxDimension: this.limits.maxDimension,
      maxNodes: this.limits.maxDerivedNodes,
      nodesLimitName: 'MAX_DERIVED_NODES',
    });
    const map: NodeId[] = [];
    b.verbatim = asWritten;
    for (const node of this.primal.nodes) {
      b.site = { span: node.span };
      let id: NodeId;
      if (node.op === 'input') id = b.input((node as Node<'input'>).attrs.name, node.shape);
      else if (node.op === 'const') id = b.constant((node as Node<'const'>).attrs.value);
      else id = b.apply(node.op, node.args.map((a) => map[a]!), node.attrs as AttrsOf<OpName>);
      const copy = b.node(id);
      if (copy.label === undefined && node.label !== undefined) copy.label = node.label;
      map.push(id);
    }
    b.verbatim = false;
    b.site = {};
    return { b, map };
  }

  // --- derived programs: outputs are [value, ...] -----------------------------------------

  valueProgram(): Program {
    return this.program('value', () => {
      const { b, map } = this.copy();
      return { graph: b, outputs: [map[this.output]!] };
    });
  }

  private requireScalar(what: string): void {
    if (this.outputShape.length !== 0) {
      throw new EngineError(
        'not_scalar',
        `${what} needs a scalar output, but the function's output has shape ${formatShape(this.outputShape)}: reduce it (e.g. sum(...))`,
        { alternative: 'jacobian_or_vjp' },
      );
    }
  }

  /** Reverse mode with the seed 1: [value, ∂f/∂wrt...]. */
  private buildGradient(b: Builder, map: NodeId[], wrt: readonly string[]): NodeId[] {
    const count = b.nodes.length;
    const wrtIds = wrt.map((a) => map[this.primal.inputs.get(a)!]!);
    const out = map[this.output]!;
    const adjoint = reverseMode(b, count, new Map([[out, b.scalar(1)]]), dependents(b, wrtIds), []);
    return [out, ...wrtIds.map((id) => adjoint[id] ?? b.zeros(b.shapeOf(id)))];
  }

  gradientProgram(wrt: readonly string[]): Program {
    this.requireScalar('a gradient');
    return this.program(`grad:${wrt.join(',')}`, () => {
      const { b, map } = this.copy();
      return { graph: b, outputs: this.buildGradient(b, map, wrt) };
    });
  }

  /** Forward mode: inputs `tangent:<a>` of shape [...batch, ...shape(a)]; [value, tangent]. */
  jvpProgram(wrt: readonly string[], batch: Shape): Program {
    return this.program(`jvp:${wrt.join(',')}:${batch.join('x')}`, () => {
      const { b, map } = this.copy();
      const count = b.nodes.length;
      const seeds = new Map<NodeId, NodeId>();
      for (const a of wrt) seeds.set(map[this.primal.inputs.get(a)!]!, b.input(`tangent:${a}`, [...batch, ...this.inputShape(a)]));
      const tangent = forwardMode(b, count, seeds, batch);
      const out = map[this.output]!;
      return { graph: b, outputs: [out, tangent[out] ?? b.zeros([...batch, ...this.outputShape])] };
    });
  }

  /** Reverse mode: input `cotangent` of shape [...batch, ...output shape]; [value, ...vjp]. */
  vjpProgram(wrt: readonly string[], batch: Shape): Program {
    return this.program(`vjp:${wrt.join(',')}:${batch.join('x')}`, () => {
      const { b, map } = this.copy();
      const count = b.nodes.length;
      const wrtIds = wrt.map((a) => map[this.primal.inputs.get(a)!]!);
      const out = map[this.output]!;
      const seed = b.input('cotangent', [...batch, ...this.outputShape]);
      const adjoint = reverseMode(b, count, new Map([[out, seed]]), dependents(b, wrtIds), batch);
      return { graph: b, outputs: [out, ...wrtIds.map((id) => adjoint[id] ?? b.zeros([...batch, ...b.shapeOf(id)]))] };
    });
  }

  /**
   * Forward over reverse: the gradient program, then forward mode through it with tangent inputs
   * `tangent:<a>` of shape [...batch, ...shape(a)]. [value, ...gradient, ...tangents of the gradient].
   */
  secondOrderProgram(wrt: readonly string[], batch: Shape): Program {
    this.requireScalar('a Hessian');
    return this.program(`hess:${wrt.join(',')}:${batch.join('x')}`, () => {
      const { b, map } = this.copy();
      const first = this.buildGradient(b, map, wrt);
      const count = b.nodes.length;
      const seeds = new Map<NodeId, NodeId>();
      for (const a of wrt) seeds.set(map[this.primal.inputs.get(a)!]!, b.input(`tangent:${a}`, [...batch, ...this.inputShape(a)]));
      const tangent = forwardMode(b, count, seeds, batch);
      const grads = first.slice(1);
      return {
        graph: b,
        outputs: [first[0]!, ...grads, ...grads.map((g) => tangent[g] ?? b.zeros([...batch, ...b.shapeOf(g)]))],
      };
    });
  }
}

/**
 * Unnamed intermediates get stable generated ids v1, v2, ... that no user name takes. Scalar
 * constants stay unnamed (traces show them inline) unless one is the output.
 */
export function labelUnnamed(b: Builder, output: NodeId): void {
  const taken = new Set<string>();
  for (const node of b.nodes) if (node.label !== undefined) taken.add(node.label);
  let k = 0;
  for (const node of b.nodes) {
    if (node.label !== undefined || node.within !== undefined) continue;
    if (node.op === 'const' && node.shape.length === 0 && node.id !== output) continue;
    let label: string;
    do label = `v${++k}`;
    while (taken.has(label));
    node.label = label;
  }
  // A primitive within a step as written answers to the step's name (in warnings).
  for (const node of b.nodes) if (node.within !== undefined) node.label = b.nodes[node.within]!.label;
}

export function totalSize(shapes: readonly Shape[]): number {
  return shapes.reduce((n, s) => n + sizeOf(s), 0);
}
