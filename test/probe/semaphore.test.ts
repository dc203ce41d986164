import { describe, expect, it } from 'vitest';
import { Semaphore } from '../../src/probe/semaphore.js';

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
});
