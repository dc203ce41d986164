#!/usr/bin/env node
// The `adjoint` command (docs/cli.md): differentiate, check, trace, analyze, draw, grade and probe
// from a shell, against a running server (--url, $ADJOINT_URL) or the service in this process.
// Exit codes (src/cli/options.ts): 0 answered, 1 a check or grade that did not pass, 2 a usage or
// input error, 3 the service unreachable or failing, 4 a problem answered, 5 an answer not shown.
// Only this CLI's own modules load at start: the engine and the app are imported (dynamically)
// when no server is given, so a command answered by a server starts in a few tens of ms.

import { writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { components } from '../../clients/typescript/src/schema.js';
import { packageInfo } from '../service/package-info.js';
import { COMMANDS, COMMON_OPTIONS, commandHelp, exitCodeOf, problemOf, sourceOf, warningsOf } from './commands.js';
import { DEFAULT_MAX_FILE_BYTES, InputError, setMaxFileBytes } from './inputs.js';
import { type Command, EXIT, type Parsed, str, writeAnswerFile } from './options.js';
import { formatProblem } from './print.js';
import { inProcessService, NetworkError, progressBar, type Reply, remoteService, runAsJob, type Service } from './service.js';
import { visible } from './terminal.js';
import { encodeRequest } from './wire.js';

type JobEndpoint = NonNullable<components['schemas']['Job']['endpoint']>;
/** The differentiation endpoints jobs run: exactly the generated types' list (a missing or extra one is a compile error). */
const COMPUTE_JOBS = ['eval', 'grad', 'jvp', 'vjp', 'jacobian', 'hessian', 'hvp', 'check'] as const satisfies readonly JobEndpoint[];
const everyComputeJob: Exclude<JobEndpoint, (typeof COMPUTE_JOBS)[number]> extends never ? true : never = true;
/** The routes that run as jobs (`?async=true`; docs/cli.md "Jobs and progress"): the differentiation endpoints, grade and probe. */
const JOB_PATHS = new Set([...COMPUTE_JOBS, 'grade', 'probe'].map((name) => `/${name}`));
void everyComputeJob;

const GENERAL_HELP = `usage: adjoint <command> [arguments] [options]

Automatic differentiation from the command line: exact float64 derivatives, computed by a running
Adjoint server (--url URL, or $ADJOINT_URL) or, with neither, in this process.

commands:
${[...COMMANDS].map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`).join('\n')}

examples:
  adjoint grad 'sqrt(x^2 + exp(x^2))' --at x=0.7
  adjoint jacobian 'tanh(W @ x)' --at 'W=[[1,2],[3,4]]' --at 'x=[0.1,0.2]' --mode forward
  adjoint trace 'x1 = x^2; x2 = exp(x1); x3 = x1 + x2; sqrt(x3) + cos(x3)' --at x=0.7
  adjoint grade 'a = x; b = x; a * b' answers.csv
  adjoint probe 'sum(sin(x))' --at '[0.1, 0.2, 0.3]' --method spsa --budget 200

An expression that starts with '-' goes after '--': adjoint grad --at x=1 -- '-x^2'.
'adjoint <command> --help' describes a command's options. Exit codes: 0 answered, 1 a check or
grade that did not pass, 2 a usage or input error, 3 the service unreachable or failing, 4 the
service refused the request (a problem answer), 5 the answer could not be shown.`;

/** What to print: human text (always shown with control characters escaped) and exact text (escaped only on a terminal). */
interface Output {
  stdout: { text: string; exact?: boolean }[];
  stderr: string[];
}

/** Runs one command line; what to print is collected in `out`, the exit code returned. */
async function run(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    if (name === undefined) out.stderr.push(GENERAL_HELP);
    else out.stdout.push({ text: GENERAL_HELP });
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  if (name === '--version') {
    out.stdout.push({ text: packageInfo.version });
    return EXIT.ok;
  }
  const command = COMMANDS.get(name);
  if (command === undefined) {
    out.stderr.push(`adjoint: unknown command '${name}' (one of ${[...COMMANDS.keys()].join(', ')}; adjoint --help)`);
    return EXIT.usage;
  }
  try {
    return await runCommand(name, command, rest, env, out);
  } catch (error) {
    if (error instanceof InputError) {
      out.stderr.push(`adjoint ${name}: ${error.message}`, `(adjoint ${name} --help for usage)`);
      return EXIT.usage;
    }
    if (error instanceof NetworkError) {
      out.stderr.push(`adjoint ${name}: ${error.message}`);
      return EXIT.unreachable;
    }
    // Anything else is a failure of the service in this process (or a bug): shown whole.
    out.stderr.push(`adjoint ${name}: the service failed: ${(error as Error).stack ?? String(error)}`);
    return EXIT.unreachable;
  }
}

/** The byte limit of files read: --max-file-bytes, else $ADJOINT_MAX_FILE_BYTES, else BODY_LIMIT's default. */
function maxFileBytesOf(parsed: Parsed, env: NodeJS.ProcessEnv): number {
  const text = str(parsed, 'max-file-bytes') ?? env.ADJOINT_MAX_FILE_BYTES;
  if (text === undefined || text === '') return DEFAULT_MAX_FILE_BYTES;
  const bytes = Number(text);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new InputError(`--max-file-bytes ${text}: must be a whole number of bytes, at least 1 (from --max-file-bytes or $ADJOINT_MAX_FILE_BYTES)`);
  return bytes;
}

async function runCommand(name: string, command: Command, args: string[], env: NodeJS.ProcessEnv, out: Output): Promise<number> {
  const parsed = parse(command, args);
  if (parsed.options.help === true) {
    out.stdout.push({ text: commandHelp(name, command) });
    return EXIT.ok;
  }
  setMaxFileBytes(maxFileBytesOf(parsed, env));
  // The request is made (files read, values parsed) before any service is started.
  const request = command.request(parsed);
  const url = (parsed.options.url as string | undefined) ?? env.ADJOINT_URL;
  if (url && !/^https?:\/\/[^/]/i.test(url)) throw new InputError(`${url}: the server's URL is http://host:port or https://host (from --url or $ADJOINT_URL)`);
  const asJob = request.job === true || parsed.options.job === true;
  if (parsed.options.job === true && !JOB_PATHS.has(request.path)) {
    throw new InputError(`--job: ${name} does not run as a job (${[...JOB_PATHS].map((p) => p.slice(1)).join(', ')} do)`);
  }
  if (parsed.options.job === true && !url) throw new InputError('--job runs the request as a job on a server: give --url (or $ADJOINT_URL)');
  // Large tensors travel as base64, as the clients send them (POST /probe's `at` is one tensor).
  const body = request.body === undefined ? undefined : encodeRequest(request.body, { perInput: request.path !== '/probe' });
  const apiKey = (parsed.options['api-key'] as string | undefined) ?? env.ADJOINT_API_KEY;
  const wire = { msgpack: parsed.options.msgpack === true };
  const service: Service = url ? remoteService(url, apiKey, wire) : await inProcessService(wire);
  const interrupt = new AbortController();
  const onInterrupt = () => interrupt.abort();
  let reply: Reply;
  try {
    if (asJob) {
      process.once('SIGINT', onInterrupt);
      reply = await runAsJob(service, request.path, body, progressBar(process.stderr), interrupt.signal);
    } else reply = await service.send(request.method ?? 'POST', request.path, body);
  } catch (error) {
    if (interrupt.signal.aborted) {
      out.stderr.push(`adjoint ${name}: interrupted; the job was cancelled`);
      return 130;
    }
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
    await service.close();
  }
  return answered(name, command, parsed, request, service.where, reply, out);
}

/** What to do with an answer: a problem shown with its code and caret, or the answer printed, kept, or both. */
async function answered(name: string, command: Command, parsed: Parsed, request: { path: string; body?: Record<string, unknown>; source?: string }, where: string, reply: Reply, out: Output): Promise<number> {
  if (reply.status < 200 || reply.status >= 300) {
    const problem = problemOf(reply);
    if (parsed.options.json === true) out.stdout.push({ text: reply.body, exact: true });
    out.stderr.push(formatProblem(problem, sourceOf(problem, { ...request, body: request.body ?? {} })));
    return exitCodeOf(reply.status);
  }
  const outFile = str(parsed, 'out');
  if (outFile !== undefined) await writeAnswerFile(outFile, reply.body);
  if (parsed.options.json === true) {
    out.stdout.push({ text: reply.body, exact: true });
    return EXIT.ok;
  }
  const json = !command.exactText;
  const answer = json ? parseAnswer(reply.body, `${where}${request.path}`) : reply.body;
  let shown;
  try {
    shown = await command.show(answer, parsed);
  } catch (error) {
    if (error instanceof InputError) throw error;
    // The service answered: a failure here is this program's, never "the service failed".
    out.stderr.push(`adjoint ${name}: the answer came but could not be shown (a bug in adjoint; --json or --out FILE give it whole): ${(error as Error).stack ?? String(error)}`);
    return EXIT.internal;
  }
  out.stdout.push({ text: shown.text, exact: !json });
  const warnings = json ? warningsOf(answer as { warnings?: never[] }, request.source) : undefined;
  if (warnings !== undefined) out.stderr.push(warnings);
  return shown.passed ? EXIT.ok : EXIT.failed;
}

/** A success answer's JSON; anything else means the URL is not an Adjoint server (exit code 3). */
function parseAnswer(body: string, from: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    throw new NetworkError(`${from} answered with something that is not JSON (is it an Adjoint server?): ${visible(body.slice(0, 80))}`);
  }
}

function parse(command: Command, args: string[]): Parsed {
  const options = Object.fromEntries(
    Object.entries({ ...command.options, ...COMMON_OPTIONS }).map(([option, spec]) => [option, { type: spec.type, ...(spec.multiple ? { multiple: true } : {}), ...(spec.short ? { short: spec.short } : {}) }]),
  );
  try {
    // An expression may start with '-' ('-x^2'): after `--` everything is positional.
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { options: values, positionals };
  } catch (error) {
    throw new InputError((error as Error).message);
  }
}

/**
 * Writes `text` to a file descriptor whole. Human text has its control characters escaped always
 * (it may be read later on a terminal); exact text (--json, DOT) only when it goes to a terminal.
 */
function emit(fd: 1 | 2, parts: { text: string; exact?: boolean }[], tty: boolean): void {
  if (parts.length === 0) return;
  const text = `${parts.map((p) => (p.exact && !tty ? p.text : visible(p.text))).join('\n')}\n`;
  // writeSync: what was written reaches a pipe whole before the process ends, whatever its size.
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; ) {
    try {
      at += writeSync(fd, bytes, at);
    } catch (error) {
      // A non-blocking pipe that is full: wait for its reader a little.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}

const out: Output = { stdout: [], stderr: [] };
const code = await run(process.argv.slice(2), process.env, out);
try {
  emit(1, out.stdout, process.stdout.isTTY === true);
  emit(2, out.stderr.map((text) => ({ text })), process.stderr.isTTY === true);
} catch (error) {
  // A reader that went away (EPIPE: `adjoint ... | head`): nothing more to say to it.
  if ((error as NodeJS.ErrnoException).code !== 'EPIPE') throw error;
}
process.exitCode = code;
