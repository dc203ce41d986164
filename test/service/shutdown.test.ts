// Graceful shutdown: app.close() lets in-flight requests finish, and refuses new ones with 503.

import { connect, type AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

describe('graceful shutdown', () => {
  let app: App;
  let port: number;
  let handlerEntered: Promise<void>;
  let events: string[];

  beforeEach(async () => {
    app = buildTestApp();
    events = [];
    app.addHook('onResponse', async (req) => void events.push(`answered ${req.url}`));
    let entered = () => {};
    handlerEntered = new Promise((resolve) => (entered = resolve));
    app.get('/test/slow', async () => {
      entered();
      await sleep(300);
      return { done: true };
    });
    await app.ready();
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
  });
  afterEach(() => app.close());

  it('answers an in-flight request while app.close() runs', async () => {
    // `.then` sends the request now; it is awaited after close() has begun.
    const response = request(app.server)
      .get('/test/slow')
      .then((res) => res);
    await handlerEntered;
    const closed = app.close().then(() => events.push('closed'));

    const res = await response;
    await closed;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ done: true });
    expect(events).toEqual(['answered /test/slow', 'closed']);
  });

  it('says not ready, with 503 shutting_down, to a request arriving during shutdown', async () => {
    // A second request pipelined on the busy connection reaches the server after close() began
    // (new connections are refused by then).
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));

    socket.write('GET /test/slow HTTP/1.1\r\nHost: adjoint\r\n\r\n');
    await handlerEntered;
    const closed = app.close();
    await vi.waitFor(() => expect(app.lifecycle.draining).toBe(true));
    socket.write('GET /readyz HTTP/1.1\r\nHost: adjoint\r\nx-request-id: during-shutdown\r\n\r\n');

    await ended;
    await closed;
    const [slow, readyz] = received.split(/(?=HTTP\/1\.1 )/);
    expect(slow).toMatch(/^HTTP\/1\.1 200 /);
    expect(slow).toContain('{"done":true}');
    expect(readyz).toMatch(/^HTTP\/1\.1 503 /);
    expect(readyz).toMatch(/content-type: application\/problem\+json/i);
    expect(readyz).toMatch(/x-request-id: during-shutdown/i);
    expect(readyz).toContain('"code":"shutting_down"');
  });
});
