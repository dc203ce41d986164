// The engine: prepared functions (parsed, checked, differentiated) kept by source and input
// shapes, so asking again costs only evaluation. What to compute over them, tensors in and tensors
// out, is in ad/; requests and answers (JSON, field names, endpoints) are the service's.

import { EngineError } from './errors.js';
import { LruCache } from './lru.js';
import { DEFAULT_LIMITS, Prepared, type FunctionSource, type Limits } from './prepare.js';
import type { Shape } from './tensor/tensor.js';

export interface EngineOptions {
  /** Prepared functions kept (least recently used dropped first). */
  cacheSize?: number;
  /** Bytes of heap the kept functions may hold in all, weighed by `Prepared.bytes`. */
  cacheBytes?: number;
}

/** A named input of a function and its shape. */
export interface InputShape {
  name: string;
  shape: Shape;
}

/**
 * The function last fetched from or stored in the cache: the cache's most recently used entry, so
 * asking for it again needs neither its key nor a cache lookup (which would only move it to where
 * it already is). Expressions only: a graph is compared by its key.
 */
interface Latest {
  expr: string;
  key: string;
  prepared: Prepared;
}

/** The cache key of a function and its input shapes: distinct (source, inputs) never share one. */
function cacheKey(source: FunctionSource, inputs: readonly InputShape[]): string {
  return JSON.stringify([source.expr ?? source.graph, inputs.map((i) => [i.name, i.shape])]);
}

/** Whether `a` and `b` name the same inputs with the same shapes, in order (as their cache keys would say). */
function sameInputs(a: readonly InputShape[], b: readonly InputShape[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name || x.shape.length !== y.shape.length) return false;
    for (let d = 0; d < x.shape.length; d++) if (x.shape[d] !== y.shape[d]) return false;
  }
  return true;
}

export class Engine {
  private readonly cache: LruCache<string, Prepared>;
  /**
   * Functions prepared since the last `reweigh` (keys and functions, in step), to be weighed again
   * once their programs are built. Arrays emptied in place: nothing is allocated per request.
   */
  private readonly pendingKeys: string[] = [];
  private readonly pendingFunctions: Prepared[] = [];
  /** The most recently used cache entry; dropped whenever the cache may have evicted anything. */
  private latest: Latest | undefined;

  constructor(
    readonly limits: Limits = DEFAULT_LIMITS,
    options: EngineOptions = {},
  ) {
    // Weighed by the bytes a prepared function holds: its graphs (the primal and every derived
    // program built so far), plans, compiled code and constants.
    this.cache = new LruCache(options.cacheSize ?? 256, options.cacheBytes ?? 256 * 2 ** 20, (prepared) => prepared.bytes);
  }

  get cachedFunctions(): number {
    this.reweigh();
    return this.cache.size;
  }

  /** Estimated bytes the cached functions hold. */
  get cachedBytes(): number {
    this.reweigh();
    return this.cache.weight;
  }

  /** Many named inputs cost planning and bookkeeping per name: past MAX_INPUTS, send one array instead. */
  checkInputCount(count: number, path?: (string | number)[]): void {
    if (count > this.limits.maxInputs) {
      throw new EngineError(
        'limit_exceeded',
        `${count} named inputs, more than the limit of ${this.limits.maxInputs} (MAX_INPUTS): pass many numbers as one array input instead`,
        { path },
      );
    }
  }

  /** The function prepared for these input shapes (cached). */
  prepare(source: FunctionSource, inputs: readonly InputShape[]): Prepared {
    // The functions the last caller prepared have their programs built by now: weigh them again.
    this.reweigh();
    const latest = this.latest;
    let key: string;
    let prepared: Prepared | undefined;
    if (latest !== undefined && source.expr !== undefined && latest.expr === source.expr && sameInputs(latest.prepared.inputs, inputs)) {
      // Asked again for the most recently used function (the common case under load): no key, no lookup.
      ({ key, prepared } = latest);
    } else {
      key = cacheKey(source, inputs);
      prepared = this.cache.get(key);
      if (prepared === undefined) {
        prepared = new Prepared(source, inputs, this.limits);
        const size = this.cache.size;
        this.cache.set(key, prepared);
        // Kept without evicting anything: it is the most recently used. Otherwise (it was too
        // heavy to keep, or others were evicted) the next request looks up its key.
        this.latest = this.cache.size === size + 1 && source.expr !== undefined ? { expr: source.expr, key, prepared } : undefined;
      } else {
        this.latest = source.expr !== undefined ? { expr: source.expr, key, prepared } : undefined;
      }
    }
    // Weighed again once the caller's programs are built (they are built after this returns).
    this.pendingKeys.push(key);
    this.pendingFunctions.push(prepared);
    return prepared;
  }

  /**
   * Weigh the functions prepared since the last call again: derived programs make them heavier.
   * Done at the next `prepare` and whenever the cache is read, so no caller has to remember it.
   */
  private reweigh(): void {
    const n = this.pendingKeys.length;
    if (n === 0) return;
    const size = this.cache.size;
    for (let i = 0; i < n; i++) this.cache.reweigh(this.pendingKeys[i]!, this.pendingFunctions[i]!);
    this.pendingKeys.length = 0;
    this.pendingFunctions.length = 0;
    // Something was evicted (perhaps the most recently used): look keys up again.
    if (this.cache.size !== size) this.latest = undefined;
  }
}
