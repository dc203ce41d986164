// Where the command line sends its requests: a running server (`--url` or $ADJOINT_URL), or the
// service built in this process. Either way a request is the HTTP route's request and the answer
// its exact JSON text, so `--json` prints the same bytes from both.

/** An answer as the service gave it: the status and the body's text. */
export interface Reply {
  status: number;
  body: string;
}

export interface Service {
  /** Where answers come from, for messages: the URL, or "in-process". */
  readonly where: string;
  post(path: string, body: unknown): Promise<Reply>;
  close(): Promise<void>;
}

/** The server could not be reached or did not answer: exit code 3. */
export class NetworkError extends Error {
  override readonly name = 'NetworkError';
}

/** How often a job's state is asked for while it runs (`--job`). */
const POLL_MS = 500;

/** What a job says of itself (GET /jobs/{id}; README "Jobs"). */
interface JobState {
  state: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress?: { done: number; total: number; queries?: number };
  result?: unknown;
  problem?: { status?: number };
}

/**
 * A running server at `url`, with `Authorization: Bearer <apiKey>` when a key is given. With
 * `onProgress`, a request runs as a job (`?async=true`, answered 202 with its Location): its state
 * is asked for every POLL_MS, told to `onProgress`, and its answer (or problem) returned once it
 * ends, so no proxy's time-out cuts long work short.
 */
export function remoteService(url: string, apiKey: string | undefined, onProgress?: (job: JobState) => void): Service {
  const base = url.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, application/problem+json' };
  if (apiKey !== undefined && apiKey !== '') headers.authorization = `Bearer ${apiKey}`;
  const call = async (target: string, init: RequestInit): Promise<Response> => {
    try {
      // Node's fetch asks for and undoes gzip/brotli compression by itself.
      return await fetch(target, { ...init, headers });
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause;
      throw new NetworkError(`cannot reach ${target}: ${cause?.message ?? (error as Error).message}`);
    }
  };
  return {
    where: base,
    async post(path, body) {
      const response = await call(`${base}${path}${onProgress ? '?async=true' : ''}`, { method: 'POST', body: JSON.stringify(body) });
      const text = await response.text();
      const location = response.headers.get('location');
      if (!onProgress || response.status !== 202 || location === null) return { status: response.status, body: text };
      return followJob(new URL(location, `${base}/`).href, call, onProgress);
    },
    close: async () => {},
  };
}

/** The answer of the job at `url`, once it has ended, its state told to `onProgress` meanwhile. */
async function followJob(url: string, call: (target: string, init: RequestInit) => Promise<Response>, onProgress: (job: JobState) => void): Promise<Reply> {
  for (;;) {
    const response = await call(url, { method: 'GET' });
    const text = await response.text();
    if (response.status !== 200) return { status: response.status, body: text };
    const job = JSON.parse(text) as JobState;
    onProgress(job);
    if (job.state === 'succeeded') return { status: 200, body: JSON.stringify(job.result) };
    if (job.state === 'failed') return { status: job.problem?.status ?? 500, body: JSON.stringify(job.problem) };
    if (job.state === 'cancelled') throw new NetworkError(`the job at ${url} was cancelled`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A progress bar on a terminal (stderr), redrawn in place; nothing when stderr is not one. */
export function progressBar(stream: NodeJS.WriteStream): (job: JobState) => void {
  if (!stream.isTTY) return () => undefined;
  return (job) => {
    const { done = 0, total = 1, queries } = job.progress ?? {};
    const width = 30;
    const filled = Math.round((width * done) / Math.max(1, total));
    const spent = queries === undefined ? '' : `, ${queries} queries`;
    stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${job.state}${spent}${job.state === 'succeeded' || job.state === 'failed' ? '\n' : ''}`);
  };
}

/**
 * The service in this process, answering through Fastify's `inject`: the app the server builds
 * (schemas, request layer, engine and error handler all included), so an answer here is the same
 * bytes a default-configured server gives, errors too — where calling the engine's functions
 * directly would have to repeat the routes' validation and the problem mapping. No worker threads
 * (a command makes one request), no log, and no overload check: loading the modules just blocked
 * the event loop for longer than MAX_EVENT_LOOP_DELAY_MS allows, on a slow machine, and there is
 * no other client to protect. Loaded only when needed: it is most of the start-up time.
 */
export async function inProcessService(): Promise<Service> {
  const [{ buildApp }, { defaultConfig }] = await Promise.all([import('../app.js'), import('../service/config.js')]);
  const app = buildApp(defaultConfig({ WORKERS: 0, MAX_EVENT_LOOP_DELAY_MS: 0 }), { logger: false });
  await app.ready();
  return {
    where: 'in-process',
    async post(path, body) {
      const reply = await app.inject({ method: 'POST', url: path, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) });
      return { status: reply.statusCode, body: reply.body };
    },
    close: () => app.close(),
  };
}
