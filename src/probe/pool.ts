// Queries in flight at once, at most `concurrency`. The first failure stops the others: no new
// query starts, the ones in flight are aborted through `controller`, and that failure is thrown
// once every worker has stopped (so the count of queries sent is final).
// Hand-written rather than p-limit: p-limit is handed every task up front and holds them all
// queued, while the probes' tasks come from generators that build each query's input (a copy of
// the point) as it is pulled; pulling only when a worker is free keeps `concurrency` inputs alive,
// not the whole plan (10,000 copies of a large point for central differences).

export type Task = () => Promise<void>;

export async function runBounded(tasks: Iterable<Task>, concurrency: number, controller: AbortController): Promise<void> {
  const pending = tasks[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && !controller.signal.aborted) {
      const next = pending.next();
      if (next.done) return;
      try {
        await next.value();
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          controller.abort(error);
        }
        return;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (failure !== undefined) throw failure.error;
  if (controller.signal.aborted) throw controller.signal.reason;
}
