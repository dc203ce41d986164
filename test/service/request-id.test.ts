import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { App } from '../../src/service/app.js';
import { buildTestApp, captureLog, type LogCapture } from '../helpers.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe('x-request-id', () => {
  let app: App;
  let log: LogCapture;

  beforeEach(async () => {
    log = captureLog();
    app = buildTestApp({}, { logger: true, logStream: log.stream });
    app.post('/test/echo', async (req) => req.body);
    await app.ready();
  });
  afterEach(() => app.close());

  it('honours a sane incoming id, returns it and logs with it', async () => {
    const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'grader-42.run:7' } });
    expect(res.headers['x-request-id']).toBe('grader-42.run:7');
    const lines = log.entries().filter((line) => line.reqId === 'grader-42.run:7');
    expect(lines.map((line) => line.msg)).toEqual(['incoming request', 'request completed']);
  });

  it('generates an id when there is none, a fresh one per request', async () => {
    const first = await app.inject({ url: '/healthz' });
    const second = await app.inject({ url: '/healthz' });
    expect(first.headers['x-request-id']).toMatch(UUID);
    expect(second.headers['x-request-id']).toMatch(UUID);
    expect(first.headers['x-request-id']).not.toBe(second.headers['x-request-id']);
  });

  it.each([
    ['too long', 'a'.repeat(129)],
    ['with spaces', 'id with spaces'],
    ['with a quote', 'x"y'],
    ['with a newline escape', 'x\\ny'],
  ])('replaces an id %s', async (_what, id) => {
    const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': id } });
    expect(res.headers['x-request-id']).toMatch(UUID);
  });

  it('keeps an id of exactly 128 characters', async () => {
    const id = 'b'.repeat(128);
    const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': id } });
    expect(res.headers['x-request-id']).toBe(id);
  });

  it('is on error answers too', async () => {
    const notFound = await app.inject({ url: '/nope', headers: { 'x-request-id': 'abc-404' } });
    expect(notFound.statusCode).toBe(404);
    expect(notFound.headers['x-request-id']).toBe('abc-404');
    const invalid = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'x-request-id': 'abc-415', 'content-type': 'text/csv' },
      payload: 'a,b',
    });
    expect(invalid.statusCode).toBe(415);
    expect(invalid.headers['x-request-id']).toBe('abc-415');
  });

  it('is returned over a real socket (supertest)', async () => {
    const res = await request(app.server).get('/readyz').set('x-request-id', 'sock-1');
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('sock-1');
  });
});
