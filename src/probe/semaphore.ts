// A counting semaphore: at most `capacity` holders at once, the rest wait in order. Shared by all
// probes, so the server's outgoing queries stay bounded however many probes run.

export class Semaphore {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly capacity: number) {}

  /** Waits for a place (or rejects with the signal's reason when it aborts first). */
  async acquire(signal?: AbortSignal): Promise<void> {
    if (this.held < this.capacity) {
      this.held++;
      return;
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', abort);
        resolve();
      };
      const abort = (): void => {
        const i = this.waiting.indexOf(grant);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal!.reason);
      };
      this.waiting.push(grant);
      signal?.addEventListener('abort', abort, { once: true });
    });
  }

  release(): void {
    const next = this.waiting.shift();
    // A waiter takes over the place directly; otherwise the place is freed.
    if (next) next();
    else this.held--;
  }

  get inUse(): number {
    return this.held;
  }
}
