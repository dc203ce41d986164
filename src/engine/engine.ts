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

export class Engine {
  private readonly cache: LruCache<string, Prepared>;
  /** Functions prepared since the last `reweigh`, to be weighed again when their programs are built. */
  private readonly pending = new Map<string, Prepared>();

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
    const key = JSON.stringify([source.expr ?? source.graph, inputs.map((i) => [i.name, i.shape])]);
    let prepared = this.cache.get(key);
    if (!prepared) {
      prepared = new Prepared(source, inputs, this.limits);
      this.cache.set(key, prepared);
    }
    // Weighed again once the caller's programs are built (they are built after this returns).
    this.pending.set(key, prepared);
    return prepared;
  }

  /**
   * Weigh the functions prepared since the last call again: derived programs make them heavier.
   * Done at the next `prepare` and whenever the cache is read, so no caller has to remember it.
   */
  private reweigh(): void {
    for (const [key, prepared] of this.pending) this.cache.reweigh(key, prepared);
    this.pending.clear();
  }
}
