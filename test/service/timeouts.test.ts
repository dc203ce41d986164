// Slow clients, over real sockets: a body dripped a byte at a time, headers that never end, a
// client that hangs up mid-body. Each is cut off (or let go) within REQUEST_TIMEOUT_MS /
// HEADERS_TIMEOUT_MS plus the one-second deadline check, and logged at info without a stack.

import { connect, type AddressInfo, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp, captureLog, type LogCapture } from '../helpers.js';

const REQUEST_TIMEOUT_MS = 1000;
/** The deadlines are checked at least every second (here every 250 ms: a quarter of the deadline). */
const CHECK_MS = 1000;

/** What a loaded 2-core machine may add to either: "cut off" stays far from "held" (issue 9: 22 s+). */
const SLACK_MS = 8000;

interface Connection {
  socket: Socket;
  /** Everything the server sent. */
  received(): string;
  /** Resolves with the milliseconds from `since` to the server closing the connection. */
  closedAfter(since: number): Promise<number>;
}

function open(port: number): Connection {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
  return { socket, received: () => received, closedAfter: async (since) => (await closed) - since };
}

describe('request and body timeouts', () => {
  let app: App;
  let log: LogCapture;
  let port: number;
  const sockets: Socket[] = [];

  async function start(overrides: Parameters<typeof buildTestApp>[0] = {}): Promise<void> {
    log = captureLog();
    app = buildTestApp({ REQUEST_TIMEOUT_MS, HEADERS_TIMEOUT_MS: REQUEST_TIMEOUT_MS, ...overrides }, { logger: true, logStream: log.stream });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  }

  function connection(): Connection {
    const conn = open(port);
    sockets.push(conn.socket);
    return conn;
  }

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await app?.close();
  });

  it('cuts off a body dripped one byte at a time within REQUEST_TIMEOUT_MS plus a second, with 408', async () => {
    await start();
    const conn = connection();
    const body = JSON.stringify({ expr: 'x^2', at: { x: 3 } });
    const started = Date.now();
    conn.socket.write(`POST /grad HTTP/1.1\r\nHost: adjoint\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    // One byte a second: the body would take 25 s; the connection must not last that long.
    const drip = setInterval(() => {
      if (!conn.socket.destroyed) conn.socket.write(body[Math.floor((Date.now() - started) / 1000)] ?? ' ');
    }, 1000);
    try {
      const lasted = await conn.closedAfter(started);
      expect(lasted).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      expect(lasted).toBeLessThan(REQUEST_TIMEOUT_MS + CHECK_MS + SLACK_MS);
    } finally {
      clearInterval(drip);
    }
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);
    expect(conn.received()).toMatch(/content-type: application\/problem\+json/i);
    expect(conn.received()).toContain('"code":"timeout"');

    // The cut-off request is logged at info, never as an error with a stack.
    await sleep(50);
    const entries = log.entries();
    expect(entries.filter((e) => (e.level as number) >= 50)).toEqual([]);
    expect(entries).toContainEqual(expect.objectContaining({ level: 30, msg: 'client error', code: 'timeout', status: 408 }));
    expect(log.text()).not.toContain('"stack"');
  });

  it('holds none of 50 dripping connections past the deadline (issue 9: 500 held 22 s+)', async () => {
    await start();
    const started = Date.now();
    const conns = Array.from({ length: 50 }, () => connection());
    for (const conn of conns) {
      conn.socket.write('POST /grad HTTP/1.1\r\nHost: adjoint\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
    }
    const drip = setInterval(() => conns.forEach((conn) => !conn.socket.destroyed && conn.socket.write(' ')), 200);
    try {
      const lasted = await Promise.all(conns.map((conn) => conn.closedAfter(started)));
      expect(Math.max(...lasted)).toBeLessThan(REQUEST_TIMEOUT_MS + CHECK_MS + SLACK_MS);
    } finally {
      clearInterval(drip);
    }
    // Still serving.
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
  });

  it('does not cut off a body that arrives in time, however slowly it starts', async () => {
    await start();
    const conn = connection();
    const body = JSON.stringify({ expr: 'x^2', at: { x: 3 } });
    conn.socket.write(`POST /grad HTTP/1.1\r\nHost: adjoint\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
    await sleep(REQUEST_TIMEOUT_MS / 2);
    conn.socket.write(body);
    await conn.closedAfter(Date.now());
    expect(conn.received()).toMatch(/^HTTP\/1\.1 200 /);
    expect(conn.received()).toContain('"gradient":{"x":6}');
  });

  it('cuts off headers that never end within HEADERS_TIMEOUT_MS plus a second', async () => {
    await start({ REQUEST_TIMEOUT_MS: 60_000, HEADERS_TIMEOUT_MS: 1000 });
    const conn = connection();
    const started = Date.now();
    conn.socket.write('GET /healthz HTTP/1.1\r\nHost: adjoint\r\n');
    const drip = setInterval(() => !conn.socket.destroyed && conn.socket.write('x-slow: 1\r\n'), 100);
    try {
      const lasted = await conn.closedAfter(started);
      expect(lasted).toBeLessThan(1000 + CHECK_MS + SLACK_MS);
    } finally {
      clearInterval(drip);
    }
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('logs a client that hangs up mid-body at info, without a stack, not as internal_error', async () => {
    await start();
    const conn = connection();
    conn.socket.write('POST /grad HTTP/1.1\r\nHost: adjoint\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"expr":');
    await sleep(100);
    conn.socket.destroy();
    await sleep(200);

    const entries = log.entries();
    expect(entries.filter((e) => (e.level as number) >= 40)).toEqual([]);
    expect(log.text()).not.toContain('internal_error');
    expect(log.text()).not.toContain('"stack"');
    expect(entries).toContainEqual(
      expect.objectContaining({ level: 30, reason: 'client_aborted', msg: 'connection closed before the whole request arrived' }),
    );
  });

  it('passes the timeouts to the http server, headersTimeout never above requestTimeout', async () => {
    await start({ REQUEST_TIMEOUT_MS: 2000, HEADERS_TIMEOUT_MS: 9000, KEEP_ALIVE_TIMEOUT_MS: 4000 });
    expect(app.server.requestTimeout).toBe(2000);
    expect(app.server.headersTimeout).toBe(2000);
    expect(app.server.keepAliveTimeout).toBe(4000);
  });
});
