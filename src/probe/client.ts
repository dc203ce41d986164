// The guarded HTTP client: one undici Agent per probe whose every connection goes to the address
// the guard checked (its `lookup` answers that address whatever the host name), that follows no
// redirect, gives each request `timeoutMs`, reads at most `maxResponseBytes`, and reads only JSON.
// Every query ends by `timeoutMs` whatever undici does: its answer is raced against the timer, so a
// request undici never settles (as after it refuses a header, when its connection slot stays
// taken) still frees the probe's place for the next query. A request undici refuses to send is a
// failure of the probe, not a reason to send it again.

import type { LookupFunction } from 'node:net';
import { Agent, errors, request, type Dispatcher } from 'undici';
import { ProbeFailure } from './failure.js';
import type { PinnedTarget } from './guard.js';

export interface ClientOptions {
  method: 'POST' | 'PUT' | 'PATCH';
  /** The client's own headers (names lower-cased); they may not replace the framing headers. */
  headers: Record<string, string>;
  timeoutMs: number;
  maxResponseBytes: number;
  /** Connections kept open at once (the probe's concurrency). */
  connections: number;
  /** Sends the requests instead of an Agent of the client's own (tests give a fake one); not closed by `close`. */
  dispatcher?: Dispatcher | undefined;
}

/** What the prober sends its queries with: the guarded client, or a test's fake. */
export interface TargetClient {
  /** Sends one request with `body`; throws ProbeFailure when the answer is unusable, and settles by the client's time limit. */
  send(body: string, signal: AbortSignal): Promise<Attempt>;
  close(): Promise<void>;
}

/** What one request came back with, when it is not a failure. */
export type Attempt =
  | { kind: 'answer'; json: unknown }
  /** 429 or 503: worth sending again, after `retryAfterMs` when the target said so. */
  | { kind: 'busy'; status: number; retryAfterMs: number | undefined }
  /** The connection failed (refused, reset): worth one more try. */
  | { kind: 'unreachable'; reason: string };

/** A `lookup` that answers the pinned address: DNS is never asked again after the guard's check. */
function pinnedLookup(address: string, family: 4 | 6): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  }) as LookupFunction;
}

/** Retry-After as delta-seconds or an HTTP date, in milliseconds from now. */
export function parseRetryAfter(header: string | string[] | undefined, now = Date.now()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** Bytes of a target's error answer read for its message, and characters of it quoted. */
const MESSAGE_BYTES = 4096;
const MESSAGE_CHARACTERS = 300;

/**
 * What a target's error answer says, for the probe's own error: a problem's `detail` (or a JSON
 * body's `message`, `error` or `title`), else its text; from its first MESSAGE_BYTES bytes only,
 * control characters dropped, white space collapsed, at most MESSAGE_CHARACTERS, quoted as JSON.
 * '' when it says nothing readable.
 */
async function targetMessage(body: AsyncIterable<unknown> & { destroy(): unknown }, type: string | string[] | undefined): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const bytes = chunk as Buffer;
      chunks.push(bytes);
      size += bytes.length;
      if (size >= MESSAGE_BYTES) break;
    }
  } catch {
    // An answer cut short still says what it said so far.
  } finally {
    body.destroy();
  }
  let text = Buffer.concat(chunks).subarray(0, MESSAGE_BYTES).toString('utf8');
  if (typeof type === 'string' && JSON_TYPE.test(type)) {
    try {
      const json: unknown = JSON.parse(text);
      if (typeof json === 'string') text = json;
      else if (typeof json === 'object' && json !== null) {
        const fields = json as Record<string, unknown>;
        const said = [fields.detail, fields.message, fields.error, fields.title].find((v) => typeof v === 'string' && v.trim() !== '');
        if (typeof said === 'string') text = said;
      }
    } catch {
      // Not JSON after all (or cut at MESSAGE_BYTES): quoted as text.
    }
  }
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s+/g, ' ').trim();
  if (clean === '') return '';
  const cut = [...clean];
  return JSON.stringify(cut.length > MESSAGE_CHARACTERS ? `${cut.slice(0, MESSAGE_CHARACTERS - 1).join('')}…` : clean);
}

/** How long closing waits for the agent's connections to close before it lets them go. */
const CLOSE_WAIT_MS = 1000;

/** `work`, or the signal's reason as soon as it aborts (`work` is then left to settle on its own). */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}

/** An error raised by the HTTP client before anything was sent: the request itself is refused (not a network failure). */
function isRefusal(error: unknown): error is Error {
  return error instanceof errors.InvalidArgumentError || error instanceof errors.NotSupportedError || error instanceof TypeError;
}

export class GuardedClient implements TargetClient {
  private readonly agent: Dispatcher;
  /** The agent this client made (and destroys on close); undefined when it was given one. */
  private readonly ownAgent: Agent | undefined;
  private readonly headers: Record<string, string>;

  constructor(
    private readonly target: PinnedTarget,
    private readonly options: ClientOptions,
  ) {
    this.ownAgent = options.dispatcher === undefined ? this.makeAgent() : undefined;
    this.agent = options.dispatcher ?? this.ownAgent!;
    this.headers = { 'content-type': 'application/json', accept: 'application/json', ...options.headers };
  }

  private makeAgent(): Agent {
    const { options, target } = this;
    return new Agent({
      connections: options.connections,
      pipelining: 1,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      maxResponseSize: options.maxResponseBytes,
      connect: { lookup: pinnedLookup(target.address, target.family), timeout: options.timeoutMs, autoSelectFamily: false },
    });
  }

  /** Sends one request with `body`; throws ProbeFailure when the answer is unusable. Settles by `timeoutMs` (or when `outer` aborts). */
  async send(body: string, outer: AbortSignal): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const signal = AbortSignal.any([timeout, outer]);
    const exchange = this.exchange(body, signal);
    // Lost to the timer, the exchange still settles (or never does) on its own: nobody waits for it.
    exchange.catch(() => undefined);
    try {
      return await untilAborted(exchange, signal);
    } catch (error) {
      if (error instanceof ProbeFailure) throw error;
      if (outer.aborted) throw outer.reason;
      if (
        timeout.aborted ||
        error instanceof errors.HeadersTimeoutError ||
        error instanceof errors.BodyTimeoutError ||
        error instanceof errors.ConnectTimeoutError
      ) {
        throw new ProbeFailure('timeout', `The target did not answer within timeoutMs = ${this.options.timeoutMs} ms`);
      }
      if (error instanceof errors.ResponseExceededMaxSizeError) throw this.tooLarge();
      if (isRefusal(error)) {
        throw new ProbeFailure('target_error', `The HTTP client refused to send the query (${error.message}); nothing was sent, and it is not sent again`);
      }
      const code = (error as { code?: unknown }).code;
      return { kind: 'unreachable', reason: typeof code === 'string' ? code : 'connection failed' };
    }
  }

  /** One request and its answer read, bounded by `signal` as far as undici honours it. */
  private async exchange(body: string, signal: AbortSignal): Promise<Attempt> {
    const response = await request(this.target.url, {
      dispatcher: this.agent,
      method: this.options.method,
      headers: this.headers,
      body,
      signal,
    });
    if (signal.aborted) {
      // The answer came after the query was given up: its connection is freed, not read.
      response.body.destroy();
      throw signal.reason;
    }
    const { statusCode, headers } = response;
    if (statusCode < 200 || statusCode >= 300) {
      // A client error is the prober's request not fitting the target: its own words say why.
      const said = statusCode >= 400 && statusCode < 500 ? await targetMessage(response.body, headers['content-type']) : (await response.body.dump(), '');
      if (statusCode === 429 || statusCode === 503) {
        return { kind: 'busy', status: statusCode, retryAfterMs: parseRetryAfter(headers['retry-after']) };
      }
      if (statusCode >= 300 && statusCode < 400) {
        throw new ProbeFailure('target_error', `The target answered ${statusCode}, a redirect; redirects are not followed`);
      }
      throw new ProbeFailure('target_error', `The target answered HTTP ${statusCode}${said === '' ? '' : `, saying: ${said}`}`);
    }
    const type = headers['content-type'];
    if (typeof type !== 'string' || !JSON_TYPE.test(type)) {
      await response.body.dump();
      throw new ProbeFailure('target_error', `The target answered ${typeof type === 'string' ? type.split(';')[0] : 'no content type'}, not JSON`);
    }
    const declared = Number(headers['content-length']);
    if (declared > this.options.maxResponseBytes) {
      response.body.destroy();
      throw this.tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length;
      if (size > this.options.maxResponseBytes) {
        response.body.destroy();
        throw this.tooLarge();
      }
      chunks.push(chunk as Buffer);
    }
    try {
      return { kind: 'answer', json: JSON.parse(Buffer.concat(chunks).toString('utf8')) };
    } catch {
      throw new ProbeFailure('target_error', 'The target answered a body that is not valid JSON');
    }
  }

  private tooLarge(): ProbeFailure {
    return new ProbeFailure('target_error', `The target's answer is larger than PROBE_MAX_RESPONSE_BYTES = ${this.options.maxResponseBytes} bytes`);
  }

  /** Closes the client's own agent, waiting at most CLOSE_WAIT_MS for it (a stuck request must not hold the probe's answer). */
  async close(): Promise<void> {
    if (this.ownAgent === undefined) return;
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)));
    try {
      await Promise.race([this.ownAgent.destroy().catch(() => undefined), waited]);
    } finally {
      clearTimeout(timer);
    }
  }
}
