// watchJob (the event streams' source) when the job store fails or hangs: heartbeats go on, the
// stream resumes when the store answers again, and ends with a problem when it never does.

import { describe, expect, it } from 'vitest';
import { watchJob, type Happening } from '../../src/jobs/watch.js';
import type { JobBackend, JobView } from '../../src/jobs/types.js';

/** A backend whose get() does what `script` says for the n-th read. */
function scripted(script: (n: number) => 'fail' | 'hang' | JobView | undefined): JobBackend {
  let n = 0;
  const never = new Promise<never>(() => undefined);
  return {
    name: 'in-process',
    check: () => undefined,
    submit: () => never,
    cancel: () => never,
    queued: async () => 0,
    close: async () => undefined,
    get: async () => {
      const step = script(n++);
      if (step === 'fail') throw new Error('Connection is closed.');
      if (step === 'hang') return never;
      return step;
    },
  };
}

const view = (state: JobView['state']): JobView => ({ id: 'j', kind: 'compute', state, progress: { done: state === 'succeeded' ? 1 : 0, total: 1 }, createdAt: 0 });

async function collect(backend: JobBackend, outageLimitMs?: number): Promise<{ happenings: Happening[]; ms: number }> {
  const started = Date.now();
  const happenings: Happening[] = [];
  for await (const happening of watchJob(backend, 'j', undefined, new AbortController().signal, { outageLimitMs })) happenings.push(happening);
  return { happenings, ms: Date.now() - started };
}

describe('watchJob through a job store outage', () => {
  it('failing reads: heartbeats about every second, then the job again, then its final state', async () => {
    // ~3 s of failures (a read every 250 ms).
    const { happenings } = await collect(scripted((n) => (n === 0 ? view('running') : n <= 12 ? 'fail' : view('succeeded'))));
    const types = happenings.map((h) => (h.type === 'view' ? h.view.state : h.type));
    expect(types[0]).toBe('running');
    expect(types.at(-1)).toBe('succeeded');
    expect(types.filter((t) => t === 'heartbeat').length).toBeGreaterThanOrEqual(2);
  }, 20_000);

  it('a read that hangs (Redis stopped, not closed): heartbeats while it waits, the answer when it comes', async () => {
    let release: (view: JobView) => void = () => undefined;
    const late = new Promise<JobView>((resolve) => (release = resolve));
    let calls = 0;
    const backend = scripted(() => 'hang');
    backend.get = () => (calls++ === 0 ? late : Promise.resolve(view('succeeded')));
    setTimeout(() => release(view('running')), 5000);
    const { happenings } = await collect(backend);
    const types = happenings.map((h) => (h.type === 'view' ? h.view.state : h.type));
    expect(types.slice(0, 2)).toEqual(['heartbeat', 'heartbeat']);
    expect(types.slice(-2)).toEqual(['running', 'succeeded']);
  }, 20_000);

  it('a store that never comes back: heartbeats, then a 503 problem after the outage limit', async () => {
    const { happenings, ms } = await collect(scripted(() => 'fail'), 3000);
    const last = happenings.at(-1)!;
    expect(last.type).toBe('problem');
    expect(last.type === 'problem' && last.problem.status).toBe(503);
    expect(happenings.filter((h) => h.type === 'heartbeat').length).toBeGreaterThanOrEqual(2);
    expect(ms).toBeGreaterThanOrEqual(3000);
  }, 20_000);

  it('a job that is gone ends the stream with a 404 problem', async () => {
    const { happenings } = await collect(scripted(() => undefined));
    expect(happenings).toHaveLength(1);
    expect(happenings[0]!.type === 'problem' && happenings[0]!.problem.code).toBe('not_found');
  });
});
