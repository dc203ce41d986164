// Where the command line sends its requests: a running server (`--url` or $ADJOINT_URL), or the
// service built in this process. Either way a request is the HTTP route's request and the answer
// its exact text, so `--json` prints the same bytes from both.

import type { IncomingMessage } from 'node:http';
import { decode, encode } from '@msgpack/msgpack';
import type { components } from '../../clients/typescript/src/schema.js';
import { visible } from './terminal.js';
import { msgpackAnswerAsJson, withBins } from './wire.js';

/** How requests travel: JSON (the default), or MessagePack (`--msgpack`). */
export interface WireOptions {
  msgpack?: boolean;
}

const MSGPACK = 'application/msgpack';

/** A request body's bytes and content type, as `options` say. */
function payloadOf(body: unknown, options: WireOptions): { payload: Buffer; type: string } | undefined {
  if (body === undefined) return undefined;
  if (options.msgpack) {
    const bytes = encode(withBins(body));
    return { payload: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), type: MSGPACK };
  }
  return { payload: Buffer.from(JSON.stringify(body)), type: 'application/json' };
}

/** An answer's bytes as a Reply: a MessagePack answer as the JSON text the rest of the command line reads. */
function replyOf(status: number, bytes: Buffer, contentType: string): Reply {
  if (contentType.startsWith(MSGPACK)) return { status, body: msgpackAnswerAsJson(decode(bytes)), contentType: 'application/json' };
  return { status, body: bytes.toString('utf8'), contentType };
}

/** An answer as the service gave it: the status, the body's text and its media type. */
export interface Reply {
  status: number;
  body: string;
  contentType: string;
}

export interface Service {
  /** Where answers come from, for messages: the URL, or "in-process". */
  readonly where: string;
  send(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<Reply>;
  close(): Promise<void>;
}

/** The server could not be reached or did not answer: exit code 3. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

type Job = components['schemas']['Job'];

/** The most an answer may hold: about the longest string a JavaScript engine makes (V8: 2^29 − 24 characters). */
const MAX_ANSWER_BYTES = 512 * 1024 * 1024 - 64;

/**
 * A running server at `url`, with `Authorization: Bearer <apiKey>` when a key is given. Plain
 * node:http with no keep-alive agent: one request, then the connection closes and the process
 * can end at once (fetch's pooled connection kept it alive ~1.5 s after the answer).
 */
export function remoteService(url: string, apiKey: string | undefined, options: WireOptions = {}): Service {
  const base = new URL(url.replace(/\/+$/, '') + '/');
  const where = base.href.replace(/\/$/, '');
  const headers: Record<string, string> = {
    accept: `${options.msgpack ? `${MSGPACK}, ` : ''}application/json, application/problem+json, text/vnd.graphviz, image/svg+xml;q=0.9`,
    'accept-encoding': 'gzip, br',
  };
  if (apiKey !== undefined && apiKey !== '') headers.authorization = `Bearer ${apiKey}`;
  return {
    where,
    async send(method, path, body) {
      const target = new URL(path.replace(/^\//, ''), base);
      const { request } = base.protocol === 'https:' ? await import('node:https') : await import('node:http');
      const sent = payloadOf(body, options);
      const payload = sent?.payload;
      return new Promise<Reply>((resolve, reject) => {
        const fail = (error: Error) => reject(error instanceof NetworkError ? error : new NetworkError(`cannot reach ${target.href}: ${error.message}`));
        const req = request(
          target,
          {
            method,
            agent: false,
            headers: { ...headers, ...(sent === undefined ? {} : { 'content-type': sent.type, 'content-length': String(sent.payload.length) }) },
          },
          (response) => readAnswer(response, target.href).then(resolve, fail),
        );
        req.on('error', fail);
        req.end(payload);
      });
    },
    close: async () => {},
  };
}

/** A response's body as text, undone from gzip or brotli, refused past MAX_ANSWER_BYTES. */
async function readAnswer(response: IncomingMessage, from: string): Promise<Reply> {
  const encoding = String(response.headers['content-encoding'] ?? 'identity').toLowerCase();
  let stream: NodeJS.ReadableStream = response;
  if (encoding === 'gzip' || encoding === 'br') {
    const zlib = await import('node:zlib');
    stream = response.pipe(encoding === 'gzip' ? zlib.createGunzip() : zlib.createBrotliDecompress());
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    total += (chunk as Buffer).length;
    if (total > MAX_ANSWER_BYTES) {
      response.destroy();
      throw new NetworkError(`${from} answered more than ${MAX_ANSWER_BYTES} bytes: too much to hold`);
    }
    chunks.push(chunk as Buffer);
  }
  return replyOf(response.statusCode ?? 0, Buffer.concat(chunks, total), String(response.headers['content-type'] ?? ''));
}

/**
 * The service in this process, answering through Fastify's `inject`: the app the server builds
 * (schemas, request layer, engine and error handler all included), so an answer here is the same
 * bytes a default-configured server gives, errors too — where calling the engine's functions
 * directly would have to repeat the routes' validation and the problem mapping. No worker threads
 * (a command makes one request), no log, and no overload check: loading the modules just blocked
 * the event loop for longer than MAX_EVENT_LOOP_DELAY_MS allows, on a slow machine, and there is
 * no other client to protect. Imported only here, dynamically: the engine and the app are most of
 * the start-up time, and a command with --url never loads them.
 */
export async function inProcessService(options: WireOptions = {}): Promise<Service> {
  const [{ buildApp }, { defaultConfig }] = await Promise.all([import('../app.js'), import('../service/config.js')]);
  const app = buildApp(defaultConfig({ WORKERS: 0, MAX_EVENT_LOOP_DELAY_MS: 0 }), { logger: false });
  await app.ready();
  return {
    where: 'in-process',
    async send(method, path, body) {
      const sent = payloadOf(body, options);
      const reply = await app.inject({
        method,
        url: path,
        headers: { ...(options.msgpack && { accept: `${MSGPACK}, application/json` }), ...(sent !== undefined && { 'content-type': sent.type }) },
        ...(sent !== undefined && { payload: sent.payload }),
      });
      return replyOf(reply.statusCode, reply.rawPayload, String(reply.headers['content-type'] ?? ''));
    },
    close: () => app.close(),
  };
}

/**
 * What a job says of itself (GET /jobs/{id}), as the generated client types describe it; read
 * defensively (any field but `state` may be missing from what a server sends).
 */
export type JobState = Partial<Omit<Job, 'problem'>> & Pick<Job, 'state'> & { problem?: { status?: number } };

/** How often a running job's state is asked for: soon at first (most jobs are short), then every half second. */
const POLL_MS = [50, 100, 200, 350, 500] as const;

/**
 * `POST path?async=true`: the request as a job (202 with its Location), its state asked for until
 * it ends and told to `onProgress` (probes count their queries), and its answer (or problem)
 * returned as the synchronous endpoint would give it. `signal` (Ctrl-C) cancels the job on the
 * server (DELETE /jobs/{id}), so its queries stop.
 */
export async function runAsJob(service: Service, path: string, body: unknown, onProgress: (job: JobState) => void, signal?: AbortSignal): Promise<Reply> {
  const submitted = await service.send('POST', `${path}?async=true`, body);
  if (submitted.status !== 202) return submitted;
  const job = parseJob(submitted.body, service.where);
  if (job.id === undefined || !/^[A-Za-z0-9_-]{1,128}$/.test(job.id)) throw new NetworkError(`${service.where}${path} answered 202 without a job id`);
  const at = `/jobs/${job.id}`;
  // An interrupt wakes the wait at once; the cancellation is sent (and awaited) by the loop.
  let wake: () => void = () => undefined;
  const onAbort = () => wake();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    onProgress(job);
    for (let poll = 0; ; poll++) {
      if (!signal?.aborted) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, POLL_MS[Math.min(poll, POLL_MS.length - 1)]);
        });
      }
      if (signal?.aborted) {
        await service.send('DELETE', at).catch(() => undefined);
        throw new NetworkError(`the job ${at} was cancelled (interrupted)`);
      }
      const reply = await service.send('GET', at);
      if (reply.status !== 200) return reply;
      const view = parseJob(reply.body, service.where);
      onProgress(view);
      if (view.state === 'succeeded') return { status: 200, body: JSON.stringify(view.result), contentType: 'application/json' };
      if (view.state === 'failed') return { status: view.problem?.status ?? 500, body: JSON.stringify(view.problem), contentType: 'application/problem+json' };
      if (view.state === 'cancelled') throw new NetworkError(`the job ${at} was cancelled`);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function parseJob(text: string, where: string): JobState {
  try {
    const job = JSON.parse(text) as JobState;
    if (job !== null && typeof job === 'object' && typeof job.state === 'string') return job;
  } catch {
    // described below
  }
  throw new NetworkError(`${where} answered something that is not a job: ${visible(text.slice(0, 80))}`);
}

/** A progress bar on a terminal (stderr), redrawn in place; nothing when stderr is not one. */
export function progressBar(stream: NodeJS.WriteStream): (job: JobState) => void {
  if (!stream.isTTY) return () => undefined;
  return (job) => {
    const done = Number(job.progress?.done ?? 0);
    const total = Math.max(1, Number(job.progress?.total ?? 1));
    const queries = job.progress?.queries;
    const width = 30;
    const filled = Math.max(0, Math.min(width, Math.round((width * done) / total)));
    const spent = queries === undefined ? '' : `, ${Number(queries)} queries`;
    const ended = job.state !== 'queued' && job.state !== 'running';
    stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${visible(String(job.state))}${spent}${ended ? '\n' : ''}`);
  };
}
