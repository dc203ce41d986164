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

/** A running server at `url`, with `Authorization: Bearer <apiKey>` when a key is given. */
export function remoteService(url: string, apiKey: string | undefined): Service {
  const base = url.replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, application/problem+json' };
  if (apiKey !== undefined && apiKey !== '') headers.authorization = `Bearer ${apiKey}`;
  return {
    where: base,
    async post(path, body) {
      let response: Response;
      try {
        // Node's fetch asks for and undoes gzip/brotli compression by itself.
        response = await fetch(`${base}${path}`, { method: 'POST', headers, body: JSON.stringify(body) });
        return { status: response.status, body: await response.text() };
      } catch (error) {
        const cause = (error as Error & { cause?: Error }).cause;
        throw new NetworkError(`cannot reach ${base}${path}: ${cause?.message ?? (error as Error).message}`);
      }
    },
    close: async () => {},
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
