// Connections: how long a client may take to send its request, how long an idle keep-alive
// connection stays open, and what a client whose connection fails at the HTTP level is told.
//
// Node's http server checks request and header deadlines only every
// `connectionsCheckingInterval` (30 s by default), and Fastify sets the server's `requestTimeout`
// to its own option (0: none) after creating it; `headersTimeout` must not exceed
// `requestTimeout`. So all three are set here, together: a client dripping its body one byte at a
// time is cut off within REQUEST_TIMEOUT_MS plus at most a second.
//
// `connectionTimeout` (an idle socket's timeout) stays off: it would also cut the connection of a
// request whose answer takes long to compute. A request whose body has arrived is no longer
// subject to these deadlines; its computation has limits of its own (WORK_TIMEOUT_MS, ...).

import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { HttpProblem, PROBLEM_CONTENT_TYPE, type ProblemCode } from './problem.js';

/** The longest wait between two checks of the request deadlines (a quarter of a short deadline). */
const MAX_CHECK_INTERVAL_MS = 1000;
const MIN_CHECK_INTERVAL_MS = 25;

/** Fastify's (and its http server's) timeout options, from the configuration. */
export function timeoutOptions(config: Config): Pick<FastifyServerOptions, 'requestTimeout' | 'keepAliveTimeout' | 'connectionTimeout'> & {
  http: { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number; keepAliveTimeout: number };
} {
  const requestTimeout = config.REQUEST_TIMEOUT_MS;
  const headersTimeout = Math.min(config.HEADERS_TIMEOUT_MS, requestTimeout);
  return {
    requestTimeout,
    keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: 0,
    http: {
      requestTimeout,
      headersTimeout,
      keepAliveTimeout: config.KEEP_ALIVE_TIMEOUT_MS,
      connectionsCheckingInterval: Math.max(MIN_CHECK_INTERVAL_MS, Math.min(MAX_CHECK_INTERVAL_MS, Math.floor(headersTimeout / 4))),
    },
  };
}

interface ClientError extends Error {
  code?: string;
}

/** The answer to an error the http server met before a request reached Fastify. */
function clientProblem(error: ClientError): HttpProblem {
  let status: number;
  let code: ProblemCode;
  let detail: string;
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      [status, code, detail] = [408, 'timeout', 'The request did not arrive in time (its headers, or the whole request with its body)'];
      break;
    case 'HPE_HEADER_OVERFLOW':
      [status, code, detail] = [431, 'limit_exceeded', 'The request headers are too large'];
      break;
    default:
      [status, code, detail] = [400, 'bad_request', 'The request is not valid HTTP/1.1'];
  }
  return new HttpProblem(status, code, detail);
}

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * Fastify's `clientErrorHandler`: a problem+json answer (when the socket can still take one), then
 * the connection closes. Logged at info, without a stack: these are the client's doing.
 */
export function clientErrorHandler(this: FastifyInstance, error: ClientError, socket: Socket): void {
  // A reset connection has nobody left to answer (and resets are common: debug only).
  if (error.code === 'ECONNRESET' || socket.destroyed) {
    this.log.debug({ reason: error.code ?? error.message }, 'client connection reset');
    return;
  }
  const problem = clientProblem(error);
  this.log.info({ code: problem.code, status: problem.status, reason: error.code ?? error.message }, 'client error');
  // As Node's own handler: no answer in the middle of another one already on the wire.
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (socket.writable && !answering?.headersSent) {
    const body = JSON.stringify(problem);
    socket.write(
      `HTTP/1.1 ${problem.status} ${STATUS_TEXT[problem.status]}\r\n` +
        `Content-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}
