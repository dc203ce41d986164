import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../src/probe/semaphore.js';
import { runBounded, type Task } from '../../src/probe/pool.js';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Semaphore', () => {
  it('admits `capacity` holders, queues the rest in order, and lets an aborted waiter go', async () => {
    const sem = new Semaphore(1);
    const order: string[] = [];
    await sem.acquire();
    const controller = new AbortController();
    const a = sem.acquire().then(() => order.push('a'));
    const gone = sem.acquire(controller.signal).catch(() => order.push('aborted'));
    const c = sem.acquire().then(() => order.push('c'));
    controller.abort(new Error('client left'));
    await gone;
    sem.release();
    await a;
    sem.release();
    await c;
    expect(order).toEqual(['aborted', 'a', 'c']);
    expect(sem.inUse).toBe(1);
    sem.release();
    expect(sem.inUse).toBe(0);
  });

  it('refuses a waiter whose signal has aborted already, with its reason, taking no place', async () => {
    const sem = new Semaphore(2);
    const reason = new Error('gone before asking');
    await expect(sem.acquire(AbortSignal.abort(reason))).rejects.toBe(reason);
    expect(sem.inUse).toBe(0);
  });

  it('never has more than `capacity` holders, however many come and go (aborted waiters included)', async () => {
    const sem = new Semaphore(3);
    let holding = 0;
    let most = 0;
    const holder = async (k: number) => {
      const controller = new AbortController();
      if (k % 4 === 0) setImmediate(() => controller.abort(new Error('left')));
      try {
        await sem.acquire(controller.signal);
      } catch {
        return 'aborted';
      }
      holding++;
      most = Math.max(most, holding);
      for (let t = 0; t < k % 3; t++) await tick();
      holding--;
      sem.release();
      return 'held';
    };
    const outcomes = await Promise.all(Array.from({ length: 40 }, (_, k) => holder(k)));
    expect(most).toBe(3);
    expect(outcomes.filter((o) => o === 'held').length).toBeGreaterThanOrEqual(30);
    expect(sem.inUse).toBe(0);
  });

  it('admits everyone at once with an infinite capacity', async () => {
    const sem = new Semaphore(Infinity);
    await Promise.all(Array.from({ length: 100 }, () => sem.acquire()));
    expect(sem.inUse).toBe(100);
  });
});

describe('runBounded', () => {
  it('runs at most `concurrency` tasks at once, pulling each only when a worker is free', async () => {
    let running = 0;
    let most = 0;
    let pulled = 0;
    let finished = 0;
    let mostAhead = 0;
    function* tasks(): Generator<Task> {
      for (let i = 0; i < 50; i++) {
        pulled++;
        mostAhead = Math.max(mostAhead, pulled - finished);
        yield async () => {
          running++;
          most = Math.max(most, running);
          for (let t = 0; t < i % 3; t++) await tick();
          running--;
          finished++;
        };
      }
    }
    await runBounded(tasks(), 4, new AbortController());
    expect([most, finished, mostAhead]).toEqual([4, 50, 4]);
  });

  it('stops at the first failure: nothing new starts, the others are aborted, and it throws once all have stopped', async () => {
    const controller = new AbortController();
    const failure = new Error('target down');
    let started = 0;
    let stopped = 0;
    function* tasks(): Generator<Task> {
      for (let i = 0; i < 100; i++) {
        yield async () => {
          started++;
          if (i === 5) throw failure;
          await new Promise<void>((resolve) => {
            // An in-flight query ends when aborted (a few ticks later, as a socket would).
            controller.signal.addEventListener('abort', () => setTimeout(resolve, 5), { once: true });
            if (i % 2 === 0) setImmediate(resolve);
          });
          stopped++;
        };
      }
    }
    await expect(runBounded(tasks(), 3, controller)).rejects.toBe(failure);
    expect(controller.signal.reason).toBe(failure);
    expect(stopped).toBe(started - 1);
    expect(started).toBeLessThan(10);
  });

  it('throws the abort reason when the controller is aborted from outside', async () => {
    const controller = new AbortController();
    const reason = new Error('deadline');
    const task: Task = async () => {
      await tick();
      controller.abort(reason);
    };
    await expect(runBounded([task, task, task], 1, controller)).rejects.toBe(reason);
  });
});
