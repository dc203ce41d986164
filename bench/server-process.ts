// A compiled server in a child process, for the soak and load scripts: the load generator and the
// server do not share a heap or an event loop, so the server's RSS and latency are its own.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface ServerProcess {
  base: string;
  pid: number;
  child: ChildProcess;
  /** Resident set size of the server process, in bytes (Linux /proc). */
  rss(): number;
  /** SIGTERM, then the exit code and how long the exit took. */
  stop(): Promise<{ code: number | null; ms: number }>;
  /** The server's log lines so far. */
  log(): string[];
}

/** Starts `dist/src/server.js` (run `npm run build` first) with the default configuration plus `env`. */
export async function startServer(
  env: Record<string, string> = {},
  port = 31_000 + Math.floor(Math.random() * 2000),
  nodeFlags: string[] = (process.env.SERVER_NODE_FLAGS ?? '').split(' ').filter(Boolean),
): Promise<ServerProcess> {
  const entry = `${ROOT}dist/src/server.js`;
  if (!existsSync(entry)) throw new Error('dist/src/server.js is missing: run `npm run build` first');
  const child = spawn(process.execPath, [...nodeFlags, entry], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  child.stderr!.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
  const base = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${base}/healthz`);
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    // 30 s: a shared 2-core machine under load can take over 10 s to start the server.
    if (attempt > 300 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the server did not start:\n${lines.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pid = child.pid!;
  return {
    base,
    pid,
    child,
    rss: () => {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const kb = /VmRSS:\s+(\d+)/.exec(status);
        return kb ? Number(kb[1]) * 1024 : 0;
      } catch {
        return 0;
      }
    },
    stop: () =>
      new Promise((resolve) => {
        const start = performance.now();
        if (child.exitCode !== null) return resolve({ code: child.exitCode, ms: 0 });
        child.once('exit', (code) => resolve({ code, ms: performance.now() - start }));
        child.kill('SIGTERM');
      }),
    log: () => lines,
  };
}

/** Percentile (0–100) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * GET /healthz every `everyMs` for `ms`, timed on a thread of its own, so the soak's own work (reading
 * megabytes of answers) does not count as the server's latency. -1 marks a failed check.
 */
export function timeHealth(base: string, ms: number, everyMs = 100): Promise<number[]> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const http = require('node:http');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const times = [];
    const end = Date.now() + workerData.ms;
    const once = () => new Promise((resolve) => {
      const start = performance.now();
      http.get(workerData.base + '/healthz', { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200 ? performance.now() - start : -1));
      }).on('error', () => resolve(-1));
    });
    (async () => {
      while (Date.now() < end) {
        times.push(await once());
        await new Promise((r) => setTimeout(r, workerData.everyMs));
      }
      agent.destroy();
      parentPort.postMessage(times);
    })();
  `;
  const worker = new Worker(code, { eval: true, workerData: { base, ms, everyMs } });
  return new Promise((resolve, reject) => {
    worker.once('message', (times: number[]) => resolve(times));
    worker.once('error', reject);
  });
}

/** Prints PASSED with `passed`, or FAILED with the failures (and sets the exit code). */
export function verdict(failures: readonly string[], passed: string): void {
  if (failures.length > 0) {
    console.log(`\nFAILED: ${failures.join('; ')}`);
    process.exitCode = 1;
  } else {
    console.log(`\nPASSED: ${passed}`);
  }
}
