#!/usr/bin/env node
// The `adjoint` command (README "Command line"): differentiate, check, trace and grade from a
// shell, against a running server (--url, $ADJOINT_URL) or the service in this process.
// Exit codes: 0 ok, 1 a check or grade that did not pass, 2 a usage or input error (the
// service's 4xx included), 3 the service could not be reached or could not answer (5xx, 429).

import { parseArgs } from 'node:util';
import { packageInfo } from '../service/package-info.js';
import { type Command, type Parsed, COMMANDS, COMMON_OPTIONS, commandHelp, EXIT, exitCodeOf, problemOf, sourceOf, warningsOf } from './commands.js';
import { InputError } from './inputs.js';
import { formatProblem } from './print.js';
import { inProcessService, NetworkError, progressBar, remoteService, type Service } from './service.js';

/** The routes that run as jobs (`?async=true`; README "Jobs"), of those the commands call. */
const JOB_PATHS = new Set(['/eval', '/grad', '/jvp', '/jacobian', '/hessian', '/check', '/grade']);

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

An expression that starts with '-' goes after '--': adjoint grad --at x=1 -- '-x^2'.
'adjoint <command> --help' describes a command's options. Exit codes: 0 ok, 1 a check or grade
that did not pass, 2 a usage or input error, 3 the server unreachable or failing.`;

interface Output {
  stdout: string[];
  stderr: string[];
}

/** Runs one command line; what to print is collected in `out`, the exit code returned. */
async function run(argv: readonly string[], env: NodeJS.ProcessEnv, out: Output): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? out.stderr : out.stdout).push(GENERAL_HELP);
    return name === undefined ? EXIT.input : EXIT.ok;
  }
  if (name === '--version') {
    out.stdout.push(packageInfo.version);
    return EXIT.ok;
  }
  const command = COMMANDS.get(name);
  if (command === undefined) {
    out.stderr.push(`adjoint: unknown command '${name}' (one of ${[...COMMANDS.keys()].join(', ')}; adjoint --help)`);
    return EXIT.input;
  }
  try {
    return await runCommand(name, command, rest, env, out);
  } catch (error) {
    if (error instanceof InputError) out.stderr.push(`adjoint ${name}: ${error.message}`, `(adjoint ${name} --help for usage)`);
    else if (error instanceof NetworkError) out.stderr.push(`adjoint ${name}: ${error.message}`);
    // Anything else is a failure of the service in this process (or a bug): shown whole.
    else out.stderr.push(`adjoint ${name}: the service failed: ${(error as Error).stack ?? String(error)}`);
    return error instanceof InputError ? EXIT.input : EXIT.server;
  }
}

async function runCommand(name: string, command: Command, args: string[], env: NodeJS.ProcessEnv, out: Output): Promise<number> {
  const parsed = parse(command, args);
  if (parsed.options.help === true) {
    out.stdout.push(commandHelp(name, command));
    return EXIT.ok;
  }
  // The request is made (files read, values parsed) before any service is started.
  const request = command.request(parsed);
  const url = (parsed.options.url as string | undefined) ?? env.ADJOINT_URL;
  if (url && !/^https?:\/\/[^/]/i.test(url)) throw new InputError(`${url}: the server's URL is http://host:port or https://host (from --url or $ADJOINT_URL)`);
  const asJob = parsed.options.job === true;
  if (asJob && !JOB_PATHS.has(request.path)) {
    throw new InputError(`--job: ${name} does not run as a job (${[...JOB_PATHS].map((p) => p.slice(1)).join(', ')} do)`);
  }
  if (asJob && !url) throw new InputError('--job runs the request as a job on a server: give --url (or $ADJOINT_URL)');
  const apiKey = (parsed.options['api-key'] as string | undefined) ?? env.ADJOINT_API_KEY;
  const service: Service = url ? remoteService(url, apiKey, asJob ? progressBar(process.stderr) : undefined) : await inProcessService();
  try {
    const reply = await service.post(request.path, request.body);
    const ok = reply.status >= 200 && reply.status < 300;
    if (parsed.options.json === true) out.stdout.push(reply.body);
    if (!ok) {
      const problem = problemOf(reply);
      out.stderr.push(formatProblem(problem, sourceOf(problem, request)));
      return exitCodeOf(reply.status);
    }
    const answer = parseAnswer(reply.body, `${service.where}${request.path}`);
    const shown = await command.show(answer, parsed);
    if (parsed.options.json !== true) {
      out.stdout.push(shown.text);
      const warnings = warningsOf(answer, request.source);
      if (warnings !== undefined) out.stderr.push(warnings);
    }
    return shown.passed ? EXIT.ok : EXIT.failed;
  } finally {
    await service.close();
  }
}

/** A success answer's JSON; anything else means the URL is not an Adjoint server (exit code 3). */
function parseAnswer(body: string, from: string): Record<string, unknown> {
  try {
    return JSON.parse(body) as Record<string, unknown>;
  } catch {
    throw new NetworkError(`${from} answered with something that is not JSON (is it an Adjoint server?): ${body.slice(0, 80)}`);
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

const out: Output = { stdout: [], stderr: [] };
const code = await run(process.argv.slice(2), process.env, out);
if (out.stdout.length > 0) process.stdout.write(`${out.stdout.join('\n')}\n`);
if (out.stderr.length > 0) process.stderr.write(`${out.stderr.join('\n')}\n`);
// exitCode, not exit(): what was written reaches a pipe whole before the process ends.
process.exitCode = code;
