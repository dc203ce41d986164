// The real process: `node --import tsx src/server.ts`, as `npm run dev` runs it.

import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

type ServerProcess = ChildProcessByStdio<null, Readable, Readable>;

function startServer(env: Record<string, string>): ServerProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: repoRoot,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Resolves with the address the server logs once it listens. */
function listeningAddress(child: ServerProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const match = /"msg":"Server listening at (http:\/\/[^"]+)"/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code} before listening:\n${out}`)));
  });
}

function exited(child: ServerProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null) return Promise.resolve({ code: child.exitCode, signal: null });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('src/server.ts', () => {
  let child: ServerProcess | undefined;

  afterEach(() => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child = undefined;
  });

  it('listens, answers /healthz, and exits 0 on SIGTERM', async () => {
    child = startServer({ LOG_LEVEL: 'info' });
    const address = await listeningAddress(child);

    const health = await fetch(`${address}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });

    const exit = exited(child);
    child.kill('SIGTERM');
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it('exits 0 on SIGINT, logging the shutdown', async () => {
    child = startServer({ LOG_LEVEL: 'info' });
    const address = await listeningAddress(child);
    expect((await fetch(`${address}/readyz`)).status).toBe(200);

    let log = '';
    child.stdout.on('data', (chunk: string) => (log += chunk));
    const exit = exited(child);
    child.kill('SIGINT');
    expect(await exit).toEqual({ code: 0, signal: null });
    expect(log).toContain('"signal":"SIGINT"');
    expect(log).toContain('"msg":"closed"');
  });

  it('refuses to start on a bad variable, naming it on stderr, exit code 1', async () => {
    child = startServer({ PORT: 'eighty' });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    expect(await exited(child)).toEqual({ code: 1, signal: null });
    expect(stderr).toContain('PORT must be an integer from 0 to 65535');
    expect(stderr).toContain('"eighty"');
  });
});
