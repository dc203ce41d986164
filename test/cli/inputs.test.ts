// What the command line reads and how it follows a job, without a process of its own: `@file`
// only from regular files and never past its byte limit (a FIFO, a device, a directory refused
// at once, by name); a job's progress told as the service reports it; and the import graph of
// the command itself, which must not reach the engine or the app (they load only in-process).

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { makeFifo } from './fifo.js';
import { DEFAULT_MAX_FILE_BYTES, InputError, readArgument, readText, setMaxFileBytes } from '../../src/cli/inputs.js';
import { type JobState, progressBar, type Reply, runAsJob, type Service } from '../../src/cli/service.js';

const scratch = mkdtempSync(join(tmpdir(), 'adjoint-cli-inputs-'));

describe('@file', () => {
  afterEach(() => setMaxFileBytes(DEFAULT_MAX_FILE_BYTES));

  it("reads a regular file; the default limit is the server's BODY_LIMIT default, 48 MiB", () => {
    const path = join(scratch, 'f.txt');
    writeFileSync(path, 'sin(x) * y');
    expect(readArgument(`@${path}`)).toBe('sin(x) * y');
    expect(readArgument('not a file')).toBe('not a file');
    expect(DEFAULT_MAX_FILE_BYTES).toBe(50_331_648);
  });

  it('refuses a file above the limit before reading it, naming the limit and how to raise it', () => {
    const path = join(scratch, 'big.json');
    writeFileSync(path, 'x'.repeat(1001));
    setMaxFileBytes(1000);
    expect(() => readText(path)).toThrow(new InputError(`${path} holds 1001 bytes, above the limit of 1000 bytes (raise it with --max-file-bytes N or $ADJOINT_MAX_FILE_BYTES)`));
    setMaxFileBytes(1001);
    expect(readText(path)).toHaveLength(1001);
  });

  it('refuses a device (/dev/zero never ends), a directory and a FIFO (it would wait for a writer) at once', () => {
    expect(() => readText('/dev/zero')).toThrow(/\/dev\/zero: it is a device, not a regular file/);
    expect(() => readText(scratch)).toThrow(/it is a directory, not a regular file/);
    const fifo = join(scratch, 'fifo');
    makeFifo(fifo);
    // Without a writer, opening it blockingly would hang this test (and vitest's timeout would fail it).
    expect(() => readText(fifo)).toThrow(/it is a FIFO \(named pipe\), not a regular file/);
    expect(() => readText(join(scratch, 'missing'))).toThrow(/cannot read .*missing: ENOENT/);
  });
});

/** A service that answers from a script of replies, recording what it was sent. */
function scripted(replies: Reply[]): Service & { sent: string[] } {
  const sent: string[] = [];
  return {
    where: 'scripted',
    sent,
    async send(method, path) {
      sent.push(`${method} ${path}`);
      const next = replies.shift();
      if (next === undefined) throw new Error(`no reply left for ${method} ${path}`);
      return next;
    },
    close: async () => {},
  };
}

const json = (status: number, body: unknown): Reply => ({ status, body: JSON.stringify(body), contentType: 'application/json' });

describe('a job followed to its end', () => {
  it("tells each state to the progress bar (a probe's queries as they grow) and returns the answer as the endpoint would", async () => {
    const job = (state: string, done: number, queries?: number, extra: object = {}) => ({ id: 'abc', state, progress: { done, total: 9, ...(queries === undefined ? {} : { queries }) }, ...extra });
    const service = scripted([
      json(202, job('queued', 0)),
      json(200, job('running', 3, 3)),
      json(200, job('running', 7, 7)),
      json(200, job('succeeded', 9, 9, { result: { value: 1, queries: 9 } })),
    ]);
    const seen: JobState[] = [];
    const reply = await runAsJob(service, '/probe', { at: [1] }, (view) => seen.push(view));
    expect(service.sent).toEqual(['POST /probe?async=true', 'GET /jobs/abc', 'GET /jobs/abc', 'GET /jobs/abc']);
    expect(seen.map((s) => s.progress?.queries)).toEqual([undefined, 3, 7, 9]);
    expect(reply).toEqual({ status: 200, body: '{"value":1,"queries":9}', contentType: 'application/json' });
  });

  it("a failed job gives its problem with the problem's status; a refused submission is returned as it came", async () => {
    const failed = scripted([json(202, { id: 'j1', state: 'queued' }), json(200, { id: 'j1', state: 'failed', problem: { status: 422, code: 'shape_error' } })]);
    expect(await runAsJob(failed, '/grad', {}, () => undefined)).toMatchObject({ status: 422, body: '{"status":422,"code":"shape_error"}' });
    const refused = scripted([json(413, { status: 413, code: 'payload_too_large' })]);
    expect((await runAsJob(refused, '/grad', {}, () => undefined)).status).toBe(413);
  });

  it('an interrupt cancels the job on the server (DELETE) and stops following it', async () => {
    const interrupt = new AbortController();
    const service = scripted([json(202, { id: 'j2', state: 'running' }), json(200, { id: 'j2', state: 'cancelled' }), json(200, { id: 'j2', state: 'cancelled' })]);
    const following = runAsJob(service, '/probe', {}, () => interrupt.abort(), interrupt.signal);
    await expect(following).rejects.toThrow(/the job \/jobs\/j2 was cancelled/);
    expect(service.sent).toContain('DELETE /jobs/j2');
  });

  it('the bar, on a terminal, shows done/total and the queries; the state is shown with its controls escaped', () => {
    let written = '';
    const stream = { isTTY: true, write: (text: string) => ((written += text), true) } as unknown as NodeJS.WriteStream;
    const bar = progressBar(stream);
    bar({ state: 'running', progress: { done: 15, total: 30, queries: 15 } });
    expect(written).toBe(`\r[${'#'.repeat(15)}${'.'.repeat(15)}] 15/30 running, 15 queries`);
    written = '';
    bar({ state: 'succ\u001b[2Jeeded' as JobState['state'], progress: { done: 30, total: 30, queries: 31 } });
    expect(written).toBe(`\r[${'#'.repeat(30)}] 30/30 succ\\u001b[2Jeeded, 31 queries\n`);
    written = '';
    progressBar({ isTTY: false, write: () => ((written += 'x'), true) } as unknown as NodeJS.WriteStream)({ state: 'running' });
    expect(written).toBe('');
  });
});

it('the command never imports the engine or the app statically: with --url they are not loaded', () => {
  const root = resolve(fileURLToPath(new URL('../..', import.meta.url)));
  const seen = new Set<string>();
  const pending = [join(root, 'src/cli/main.ts')];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    // Static value imports only: `import type` is erased, `await import(...)` is the lazy load.
    for (const [, what] of readFileSync(file, 'utf8').matchAll(/^import (?!type )[^;]*? from '(\.[^']+)';/gm)) {
      const target = resolve(dirname(file), what!.replace(/\.js$/, '.ts'));
      if (existsSync(target)) pending.push(target);
    }
  }
  const loaded = [...seen].map((f) => f.slice(root.length + 1)).sort();
  expect(loaded).toContain('src/cli/commands.ts');
  expect(loaded.filter((f) => !f.startsWith('src/cli/'))).toEqual(['src/service/package-info.ts']);
});
