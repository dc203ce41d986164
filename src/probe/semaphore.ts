// A counting semaphore: at most `capacity` holders at once, the rest wait in order. Shared by all
// probes, so the server's outgoing queries stay bounded however many probes run. p-limit keeps
// the count and the queue; a place is held by a task that ends only when `release` is called.
// p-limit cannot take one waiter out of its queue, so a waiter whose signal aborts is refused at
// once and, when its turn comes, passes the place straight on.

import pLimit, { type LimitFunction } from 'p-limit';

export class Semaphore {
  private readonly limit: LimitFunction;
  /** Ends the task holding each place taken and not yet released, oldest first. */
  private readonly holders: (() => void)[] = [];

  constructor(readonly capacity: number) {
    this.limit = pLimit(capacity);
  }

  /** Waits for a place (or rejects with the signal's reason when it aborts first). */
  async acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await new Promise<void>((granted, refused) => {
      const abort = (): void => refused(signal!.reason);
      signal?.addEventListener('abort', abort, { once: true });
      void this.limit(() => {
        signal?.removeEventListener('abort', abort);
        if (signal?.aborted) return undefined;
        granted();
        return new Promise<void>((release) => this.holders.push(release));
      });
    });
  }

  /** Frees a place (places are alike: the oldest holder's task ends). */
  release(): void {
    this.holders.shift()?.();
  }

  /** Places taken and not yet released. */
  get inUse(): number {
    return this.holders.length;
  }
}
