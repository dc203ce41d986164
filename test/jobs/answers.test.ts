// Writing jobs' answers and events (issue 20, item 2, and the event-stream parts of item 8), on
// the in-process backend over real sockets: clients that never read are cut off by the write
// timeout while every one of them is sent the same Buffer (serialised once); event streams are
// bounded per client and in all, carry the CORS headers, and end with an event on shutdown.

import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { writeTimeouts } from '../../routes/answer.js';
import type { App } from '../../src/app.js';
import { sha256Hex } from '../../src/service/access.js';
import type { Config } from '../../src/service/config.js';
import { buildTestApp } from '../helpers.js';
import { serveModel, type FakeModel } from '../probe/fake-model.js';
import { submit, waitFor } from './jobs-client.js';

let app: App | undefined;
let model: FakeModel | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await app?.close();
  await model?.close();
  app = model = undefined;
});

/** One million float64 as base64: the job's answer is ~19 MB of JSON numbers, far more than the kernel's socket buffers hold. */
function millionElements(): { dtype: string; shape: number[]; data: string } {
  const values = new Float64Array(1_000_000);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i) * 1e-3 + i;
  return { dtype: 'float64', shape: [values.length], data: Buffer.from(values.buffer).toString('base64') };
}

/** A raw HTTP/1.1 request whose answer is never read: the socket is paused at once, so the kernel's window closes. */
function neverReading(port: number, path: string, headers: Record<string, string> = {}): Promise<{ socket: Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.pause();
      const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${lines}\r\n`);
      resolve({ socket, closed: new Promise((done) => socket.once('close', () => done())) });
    });
    socket.once('error', reject);
    sockets.push(socket);
  });
}

async function bigFinishedJob(overrides: Partial<Config> = {}) {
  // The answer is computed on the event loop here (WORKERS=0): the loop-delay guard would refuse the reads meanwhile.
  app = buildTestApp({ WRITE_TIMEOUT_MS: 1000, MAX_EVENT_LOOP_DELAY_MS: 0, ...overrides });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { job } = await submit(app, { kind: 'compute', endpoint: 'eval', request: { expr: 'x * 1', at: { x: millionElements() } } });
  const done = await waitFor(app, job.id, { timeoutMs: 60_000 });
  expect(done.job.state).toBe('succeeded');
  expect(done.text.length).toBeGreaterThan(15_000_000);
  const port = (app.server.address() as { port: number }).port;
  return { id: job.id, port, bytes: done.text.length };
}

describe('answers and event streams that are never read', () => {
  it('40 clients that never read a 19 MB job answer (20 event streams, 20 GETs) share one Buffer and are cut off by the write timeout', async () => {
    const { id, port, bytes } = await bigFinishedJob({ JOBS_MAX_EVENT_STREAMS_PER_CLIENT: 100 });
    // waitFor's own reads built the job's JSON once already.
    expect(app!.finishedJobs.builds).toBe(1);
    const timeoutsBefore = writeTimeouts.count;
    const externalBefore = process.memoryUsage().arrayBuffers;
    const clients = await Promise.all(Array.from({ length: 40 }, (_, i) => neverReading(port, i % 2 === 0 ? `/jobs/${id}/events` : `/jobs/${id}`)));
    // While they are stalled, the process holds the one Buffer, not a copy per connection (40 copies would be 760 MB).
    await new Promise((resolve) => setTimeout(resolve, 300));
    const externalGrowth = process.memoryUsage().arrayBuffers - externalBefore;
    console.info(`40 never-reading clients of a ${(bytes / 1e6).toFixed(1)} MB answer: external memory grew ${(externalGrowth / 1e6).toFixed(1)} MB`);
    expect(externalGrowth).toBeLessThan(10 * bytes);
    // Generous for a busy machine: the write timeout is 1 s.
    for (let deadline = Date.now() + 30_000; writeTimeouts.count - timeoutsBefore < 40 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(writeTimeouts.count - timeoutsBefore).toBe(40);
    // Each client, reading now, gets what the kernel held for it, then the end: far less than the answer.
    const received = await Promise.all(
      clients.map(async ({ socket, closed }) => {
        let bytesIn = 0;
        socket.on('data', (chunk: Buffer) => (bytesIn += chunk.length));
        socket.on('error', () => undefined);
        socket.resume();
        await closed;
        return bytesIn;
      }),
    );
    expect(Math.max(...received)).toBeLessThan(bytes);
    expect(app!.finishedJobs.builds).toBe(1);
    // The slots of the event streams were given back.
    expect(app!.jobWatches.open).toBe(0);
    // And the server still answers, the job too.
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const again = await fetch(`http://127.0.0.1:${port}/jobs/${id}`);
    expect((await again.arrayBuffer()).byteLength).toBe(bytes);
    expect(app!.finishedJobs.builds).toBe(1);
    // Operators see it in /metrics.
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(Number(/^adjoint_write_timeouts_total (\d+)/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(40);
    expect(Number(/^adjoint_job_answer_cache_bytes (\d+)/m.exec(metrics)?.[1])).toBe(bytes);
    expect(Number(/^adjoint_job_event_streams (\d+)/m.exec(metrics)?.[1])).toBe(0);
  }, 120_000);

  it('on shutdown an event stream whose client reads nothing is cut off within a second or so, not after the write timeout', async () => {
    const { id, port } = await bigFinishedJob({ WRITE_TIMEOUT_MS: 120_000 });
    const stalled = await neverReading(port, `/jobs/${id}/events`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const started = Date.now();
    await app!.close();
    app = undefined;
    // Generous for a busy machine; the write timeout alone would hold the close for two minutes.
    expect(Date.now() - started).toBeLessThan(30_000);
    stalled.socket.resume();
    await stalled.closed;
  }, 120_000);

  it('a client that reads slowly is not cut off: the timeout counts time without progress, not the whole answer', async () => {
    // The kernel wakes a writer once about a third of the socket's send buffer (up to 4 MB) is free:
    // progress is seen in steps of a megabyte or so, which this reader (about 1 MB/s) takes well within 5 s.
    const { id, port, bytes } = await bigFinishedJob({ WRITE_TIMEOUT_MS: 5000 });
    const timeoutsBefore = writeTimeouts.count;
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`GET /jobs/${id} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
    // Reads in short bursts with pauses (50 ms): the whole answer takes several times the write timeout.
    let received = 0;
    const ended = new Promise<void>((resolve) => socket.once('end', () => resolve()));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      socket.pause();
      setTimeout(() => socket.resume(), 50);
    });
    const started = Date.now();
    await ended;
    console.info(`a slow reader took ${Date.now() - started} ms for ${(received / 1e6).toFixed(1)} MB`);
    expect(received).toBeGreaterThan(bytes);
    expect(writeTimeouts.count).toBe(timeoutsBefore);
  }, 180_000);
});

describe('event streams: bounds, CORS, heartbeats, shutdown', () => {
  async function runningJob(overrides: Partial<Config> = {}) {
    model = await serveModel(() => ({ json: { logit: 0 }, delayMs: 30_000 }));
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], ...overrides });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    return { base, probe: { kind: 'probe', request: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logit' }, at: [1, 2], method: 'central', timeoutMs: 60_000 } } };
  }

  it('at most JOBS_MAX_EVENT_STREAMS_PER_CLIENT streams per client (429) and JOBS_MAX_EVENT_STREAMS in all (503), both with Retry-After', async () => {
    const keys = [{ id: 'alice', sha256: sha256Hex('alice-key') }, { id: 'bob', sha256: sha256Hex('bob-key') }, { id: 'carol', sha256: sha256Hex('carol-key') }];
    const { base, probe } = await runningJob({ API_KEYS: keys, JOBS_MAX_EVENT_STREAMS_PER_CLIENT: 2, JOBS_MAX_EVENT_STREAMS: 3 });
    const as = (who: string) => ({ authorization: `Bearer ${who}-key` });
    const ids: Record<string, string> = {};
    for (const who of ['alice', 'bob', 'carol']) ids[who] = (await submit(app!, probe, as(who))).job.id;
    const streams: AbortController[] = [];
    const open = async (who: string) => {
      const controller = new AbortController();
      streams.push(controller);
      return fetch(`${base}/jobs/${ids[who]}/events`, { headers: as(who), signal: controller.signal });
    };
    try {
      expect((await open('alice')).status).toBe(200);
      expect((await open('alice')).status).toBe(200);
      const third = await open('alice');
      expect(third.status).toBe(429);
      expect(third.headers.get('retry-after')).not.toBeNull();
      expect(((await third.json()) as { code: string }).code).toBe('rate_limited');
      // Another client is not shut out by alice's streams...
      expect((await open('bob')).status).toBe(200);
      // ...until all of them are open.
      const full = await open('carol');
      expect(full.status).toBe(503);
      expect(full.headers.get('retry-after')).not.toBeNull();
      // A closed stream gives its slot back.
      streams[0]!.abort();
      for (let deadline = Date.now() + 10_000; app!.jobWatches.open > 2 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await open('carol')).status).toBe(200);
    } finally {
      for (const controller of streams) controller.abort();
    }
  }, 60_000);

  it('an event stream carries the CORS headers other answers carry', async () => {
    const page = 'https://course.example';
    const { base, probe } = await runningJob({ CORS_ORIGINS: [page] });
    const { job } = await submit(app!, probe);
    const controller = new AbortController();
    try {
      const response = await fetch(`${base}/jobs/${job.id}/events`, { headers: { origin: page }, signal: controller.signal });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(response.headers.get('access-control-allow-origin')).toBe(page);
      expect(response.headers.get('access-control-expose-headers')).toContain('x-request-id');
      expect(response.headers.get('x-request-id')).not.toBeNull();
    } finally {
      controller.abort();
    }
  }, 60_000);

  it('on shutdown an open event stream gets a last `error` event (shutting_down) and ends', async () => {
    const { base, probe } = await runningJob();
    const { job } = await submit(app!, probe);
    const response = await fetch(`${base}/jobs/${job.id}/events`);
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    // The first event (queued or running), then the server closes.
    while (!text.includes('\n\n')) text += decoder.decode((await reader.read()).value, { stream: true });
    const closing = app!.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await closing;
    app = undefined;
    const blocks = text.split('\n\n').filter((block) => block !== '');
    const last = blocks.at(-1)!;
    expect(last.split('\n')[0]).toBe('event: error');
    expect(JSON.parse(last.split('\n')[1]!.slice('data: '.length))).toMatchObject({ code: 'shutting_down', status: 503 });
  }, 60_000);
});
