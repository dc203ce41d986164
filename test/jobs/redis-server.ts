// A real redis-server (Debian's package) for the Redis backend's tests, started on a free loopback
// port with no persistence, and stopped by its own pid. Where redis-server cannot be found,
// `redisUnavailable` says why, and the tests are skipped loudly.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's redis-server, found on the PATH. */
const REDIS_SERVER = 'redis-server';

/** Why the Redis tests cannot run here, or undefined when they can. */
export function redisUnavailable(): string | undefined {
  if (spawnSync(REDIS_SERVER, ['--version']).status !== 0) {
    return 'redis-server is not installed (apt-get install redis-server; .ci/run installs it)';
  }
  return undefined;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Resolves once the server at `port` answers PING. */
async function pinged(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer PING`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export interface RedisServer {
  url: string;
  stop(): Promise<void>;
  /** Stops the server, waits `downMs`, and starts it again on the same port with the same data (`persist` only). */
  restart(downMs: number): Promise<void>;
}

/**
 * A redis-server on a free port. With `persist`, it keeps its data in an append-only file in a
 * directory of its own (fsync on every write), so that a restart loses nothing, as a production
 * Redis configured for jobs would.
 */
export async function startRedis(options: { persist?: boolean } = {}): Promise<RedisServer> {
  const port = await freePort();
  const dir = options.persist ? mkdtempSync(join(tmpdir(), 'adjoint-redis-')) : undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', ''];
  args.push(...(dir === undefined ? ['--appendonly', 'no'] : ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]));
  const launch = async () => {
    const started = spawn(REDIS_SERVER, args, { stdio: 'ignore' });
    await pinged(port, Date.now() + 10_000);
    return started;
  };
  let child: ChildProcess = await launch();
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      await stop();
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    },
    restart: async (downMs: number) => {
      if (dir === undefined) throw new Error('restart() keeps data only with { persist: true }');
      await stop();
      await new Promise((resolve) => setTimeout(resolve, downMs));
      child = await launch();
    },
  };
}
