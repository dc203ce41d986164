// Every error answer is application/problem+json with a stable code (README "Errors").

import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EngineError } from '../../src/engine/errors.js';
import type { App } from '../../src/service/app.js';
import { HttpProblem } from '../../src/service/problem.js';
import { buildTestApp, captureLog, type LogCapture } from '../helpers.js';

const PROBLEM_JSON = /^application\/problem\+json/;

/** Routes that exist only in these tests, to reach each kind of error. */
function addTestRoutes(app: App): void {
  app.post(
    '/test/echo',
    {
      schema: {
        body: z.object({ at: z.record(z.string(), z.number()), wrt: z.array(z.string()).optional() }),
        querystring: z.object({ repeat: z.coerce.number().int().min(1).optional() }),
        response: { 200: z.object({ at: z.record(z.string(), z.number()) }) },
      },
    },
    async (req) => ({ at: req.body.at }),
  );
  app.get('/test/crash', async () => {
    throw new Error('connection to postgres://admin:hunter2@db failed');
  });
  app.get('/test/bad-response', { schema: { response: { 200: z.object({ n: z.number() }) } } }, async () => {
    return { n: 'not a number' } as unknown as { n: number };
  });
  app.get('/test/engine', async () => {
    throw new EngineError('parse_error', "Unexpected ')'", { position: { line: 1, column: 7 } });
  });
  app.get('/test/engine-path', async () => {
    throw new EngineError('missing_input', 'No value for input y', { path: ['at', 'y'] });
  });
  app.get('/test/busy', async () => {
    throw new HttpProblem(503, 'overloaded', 'Every worker is busy', {}, { headers: { 'retry-after': '2' } });
  });
}

describe('problem+json answers', () => {
  let app: App;
  let log: LogCapture;

  beforeEach(async () => {
    log = captureLog();
    app = buildTestApp({ BODY_LIMIT: 1024, LOG_LEVEL: 'trace' }, { logger: true, logStream: log.stream });
    addTestRoutes(app);
    await app.ready();
  });
  afterEach(() => app.close());

  it('answers malformed JSON with 400 invalid_json', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/test/echo',
      headers: { 'content-type': 'application/json' },
      payload: '{"at": {"x": 1',
    });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.json()).toEqual({
      type: 'urn:adjoint:problem:invalid_json',
      title: 'Malformed JSON body',
      status: 400,
      detail: 'The request body is not valid JSON',
      code: 'invalid_json',
    });
  });

  it('answers an empty JSON body with 400 invalid_json', async () => {
    const res = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json' } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'invalid_json' });
  });

  it('answers a schema violation with 400 validation_error listing each issue and its path', async () => {
    const res = await app.inject({ method: 'POST', url: '/test/echo', payload: { at: { x: 'one' }, wrt: ['x', 2] } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    const problem = res.json();
    expect(problem).toMatchObject({
      type: 'urn:adjoint:problem:validation_error',
      status: 400,
      code: 'validation_error',
      errors: [
        { path: 'at.x', message: expect.stringContaining('expected number') },
        { path: 'wrt.1', message: expect.stringContaining('expected string') },
      ],
    });
    expect(problem.detail).toContain('at.x');
  });

  it('reports a missing field and a whole-body violation', async () => {
    const missing = await app.inject({ method: 'POST', url: '/test/echo', payload: { wrt: [] } });
    expect(missing.json().errors).toEqual([{ path: 'at', message: expect.any(String) }]);
    const notObject = await app.inject({ method: 'POST', url: '/test/echo', payload: [1, 2] });
    expect(notObject.statusCode).toBe(400);
    expect(notObject.json().errors).toEqual([{ path: '', message: expect.stringContaining('expected object') }]);
  });

  it('names the request part of a non-body violation', async () => {
    const res = await app.inject({ method: 'POST', url: '/test/echo?repeat=0', payload: { at: {} } });
    expect(res.statusCode).toBe(400);
    expect(res.json().errors).toEqual([{ path: 'querystring.repeat', message: expect.any(String) }]);
  });

  it('answers a malformed URL with 400 bad_request', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz/%E0%A4%A', headers: { 'x-request-id': 'bad-url' } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.headers['x-request-id']).toBe('bad-url');
    expect(res.json()).toMatchObject({ code: 'bad_request', status: 400 });
  });

  it('answers an unknown route with 404 not_found', async () => {
    const res = await app.inject({ method: 'GET', url: '/no/such/thing?token=secret' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.json()).toEqual({
      type: 'urn:adjoint:problem:not_found',
      title: 'Not found',
      status: 404,
      detail: 'There is no GET /no/such/thing',
      code: 'not_found',
    });
  });

  it('answers a body over BODY_LIMIT with 413 limit_exceeded', async () => {
    const res = await app.inject({ method: 'POST', url: '/test/echo', payload: { at: { x: 1 }, pad: 'x'.repeat(2000) } });
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.json()).toMatchObject({
      code: 'limit_exceeded',
      status: 413,
      detail: 'The request body is larger than the limit of 1024 bytes',
    });
  });

  it('answers a body that is not JSON with 415 unsupported_media_type', async () => {
    for (const contentType of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded']) {
      const res = await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': contentType }, payload: 'at=1' });
      expect(res.statusCode, contentType).toBe(415);
      expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
      expect(res.json()).toMatchObject({ code: 'unsupported_media_type', status: 415 });
    }
  });

  it('answers an unexpected error with 500 and no internals, and logs it with the stack', async () => {
    const res = await app.inject({ method: 'GET', url: '/test/crash' });
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(res.json()).toEqual({
      type: 'urn:adjoint:problem:internal_error',
      title: 'Internal server error',
      status: 500,
      detail: expect.any(String),
      code: 'internal_error',
    });
    expect(res.body).not.toMatch(/hunter2|postgres|at |\.ts/);

    const entry = log.entries().find((line) => line.msg === 'request failed');
    expect(entry).toMatchObject({ level: 50, code: 'internal_error', reqId: res.headers['x-request-id'] });
    const err = entry?.err as { message: string; stack: string };
    expect(err.message).toContain('hunter2');
    expect(err.stack).toContain('errors.test.ts');
  });

  it('treats a response that breaks its own schema as a 500', async () => {
    const res = await app.inject({ method: 'GET', url: '/test/bad-response' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ code: 'internal_error' });
    expect(res.body).not.toContain('not a number');
  });

  it('maps an EngineError to its status, keeping position and path', async () => {
    const parse = await app.inject({ method: 'GET', url: '/test/engine' });
    expect(parse.statusCode).toBe(400);
    expect(parse.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(parse.json()).toEqual({
      type: 'urn:adjoint:problem:parse_error',
      title: 'Expression does not parse',
      status: 400,
      detail: "Unexpected ')'",
      code: 'parse_error',
      position: { line: 1, column: 7 },
    });
    const missing = await app.inject({ method: 'GET', url: '/test/engine-path' });
    expect(missing.statusCode).toBe(422);
    expect(missing.json()).toMatchObject({ code: 'missing_input', errors: [{ path: 'at.y', message: 'No value for input y' }] });
  });

  it('sends the headers an HttpProblem carries', async () => {
    const res = await app.inject({ method: 'GET', url: '/test/busy' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json()).toMatchObject({ code: 'overloaded', detail: 'Every worker is busy' });
  });

  it('answers the same through a real socket (supertest)', async () => {
    const notFound = await request(app.server).get('/nowhere');
    expect(notFound.status).toBe(404);
    expect(notFound.headers['content-type']).toMatch(PROBLEM_JSON);
    expect(notFound.body).toMatchObject({ code: 'not_found' });

    const tooLarge = await request(app.server)
      .post('/test/echo')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ at: { x: 1 }, pad: 'x'.repeat(5000) }));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toMatchObject({ code: 'limit_exceeded' });

    const ok = await request(app.server).post('/test/echo').send({ at: { x: 1.5 } });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ at: { x: 1.5 } });
  });

  it('never logs a request body', async () => {
    const marker = 'BODY-MARKER-7f3a';
    await app.inject({ method: 'POST', url: '/test/echo', payload: { at: { [marker]: 1 } } });
    await app.inject({ method: 'POST', url: '/test/echo', payload: { at: { x: marker } } });
    await app.inject({ method: 'POST', url: '/test/echo', headers: { 'content-type': 'application/json' }, payload: `{"${marker}` });
    expect(log.entries().length).toBeGreaterThan(5);
    expect(log.text()).not.toContain(marker);
  });
});
