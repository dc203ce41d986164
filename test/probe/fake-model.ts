// A model served on loopback by the test itself: it reads `input` from the JSON body, answers what
// `respond` says, and counts every request it receives.

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '../../src/service/app.js';
import type { Config } from '../../src/service/config.js';
import { buildTestApp } from '../helpers.js';

export interface FakeAnswer {
  status?: number;
  headers?: Record<string, string>;
  /** Sent as JSON unless `raw` is given. */
  json?: unknown;
  raw?: string;
  /** Milliseconds to wait before answering. */
  delayMs?: number;
}

export interface Received {
  /** The whole parsed JSON body (undefined when it is not JSON). */
  body: unknown;
  request: IncomingMessage;
  /** This request's number, from 1. */
  count: number;
}

/** Answers a request; `input` is the body's `input` field. */
export type Respond = (input: unknown, received: Received) => FakeAnswer | Promise<FakeAnswer>;

export interface FakeModel {
  origin: string;
  port: number;
  url: string;
  /** Requests received so far. */
  readonly requests: number;
  close(): Promise<void>;
}

export async function serveModel(respond: Respond): Promise<FakeModel> {
  let requests = 0;
  const server: Server = createServer((request, response) => {
    const count = ++requests;
    const chunks: Buffer[] = [];
    request.on('data', (c: Buffer) => chunks.push(c));
    request.on('end', async () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        body = undefined;
      }
      const input = typeof body === 'object' && body !== null ? (body as { input?: unknown }).input : undefined;
      const answer = await respond(input, { body, request, count });
      const send = () => {
        if (response.destroyed) return;
        const body = answer.raw ?? JSON.stringify(answer.json ?? null);
        response.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
        response.end(body);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    url: `http://127.0.0.1:${port}/predict`,
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Fake models for one test, and an app allowed to query them; `close` after each test. */
export class Bench {
  private readonly models: FakeModel[] = [];
  app: App | undefined;

  async serve(respond: Respond, overrides: Partial<Config> = {}): Promise<{ model: FakeModel; app: App }> {
    const model = await serveModel(respond);
    this.models.push(model);
    this.app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [model.origin], ...overrides });
    return { model, app: this.app };
  }

  async close(): Promise<void> {
    await this.app?.close();
    for (const m of this.models.splice(0)) await m.close();
  }
}

/** POST /probe of `model` (its body `{"input": ...}`, the first logit of `/logits`), with `request`'s fields. */
export async function probeModel<Answer>(app: App, model: FakeModel, request: Record<string, unknown>): Promise<{ status: number; answer: Answer }> {
  const response = await app.inject({
    method: 'POST',
    url: '/probe',
    payload: { target: { url: model.url, body: { input: '$input' }, outputPath: '/logits/0' }, ...request },
  });
  return { status: response.statusCode, answer: response.json() as Answer };
}
