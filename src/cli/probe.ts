// `adjoint probe`: a black-box model's gradient (or its inputs' occlusion or Shapley scores)
// estimated from queries alone (POST /probe, docs/probing.md). It always runs as a job, so a
// long probe survives any proxy's time-out and its progress bar counts the queries spent.

import { InputError, parseJson, parseValue, readArgument } from './inputs.js';
import { type AnswerOf, type Command, defined, digitsOf, list, numberOption, oneOf, type Parsed, str, writeAnswerFile } from './options.js';
import { type AnswerValue, formatNumber, labelled } from './print.js';

const METHODS = ['forward', 'central', 'spsa', 'nes', 'occlusion', 'shapley'] as const;

type ProbeAnswer = AnswerOf<'/probe'>;

/** The target: a URL (a model behind HTTP), or an expression of one input (a local black box). */
function targetOf(argument: string, parsed: Parsed): Record<string, unknown> {
  const http = /^https?:\/\//i.test(argument);
  const body = str(parsed, 'body');
  const outputPath = str(parsed, 'output-path');
  const headers = list(parsed, 'header');
  if (!http) {
    if (body !== undefined || outputPath !== undefined || headers !== undefined) throw new InputError('--body, --output-path and --header are for a target URL (http://...), not an expression');
    return { expr: readArgument(argument) };
  }
  if (body === undefined) throw new InputError('--body is required with a target URL: the JSON the model takes, "$input" where the input goes, e.g. --body \'{"image": "$input"}\'');
  const named: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const header of headers ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) throw new InputError(`--header ${header}: write 'Name: value'`);
    named[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  return defined({
    url: argument,
    method: oneOf(parsed, 'method-http', ['POST', 'PUT', 'PATCH'] as const),
    headers: headers === undefined ? undefined : named,
    body: parseJson(readArgument(body), '--body'),
    outputPath: outputPath ?? '',
  });
}

/** The input: --at (a value, tokens as a JSON array of strings, or @file.json), or --tokens (words split at spaces). */
function inputOf(parsed: Parsed): unknown {
  const at = str(parsed, 'at');
  const tokens = str(parsed, 'tokens');
  if (at !== undefined && tokens !== undefined) throw new InputError('give --at or --tokens, not both');
  if (tokens !== undefined) return readArgument(tokens).split(/\s+/).filter((t) => t !== '');
  if (at === undefined) return undefined;
  const text = readArgument(at);
  const value = parseJson(text, '--at');
  if (Array.isArray(value) && value.length > 0 && value.every((t) => typeof t === 'string' && !['NaN', 'Infinity', '-Infinity'].includes(t))) return value;
  return parseValue(text, '--at');
}

export const probe: Command = {
  summary: "a black-box model's gradient, or its inputs' occlusion or Shapley scores, from queries alone (runs as a job)",
  usage: 'adjoint probe <target URL | expr | @request.json> --at VALUE [--method METHOD] [options]',
  notes: [
    'The target is a model behind an http(s) URL (the server must allow its origin: PROBE_ALLOWED_ORIGINS),',
    "with --body the JSON it takes (\"$input\" where the input goes) and --output-path where its logits are;",
    'or an expression of one input, probed as a black box (the answer then says how close the estimate is).',
    '@request.json holds a whole POST /probe body; options given here take precedence over it.',
    'It runs as a job: a progress bar on a terminal counts the queries; Ctrl-C cancels the job.',
  ].join('\n'),
  options: {
    at: { type: 'string', value: 'VALUE', help: "the input: a number or JSON array, tokens '[\"not\",\"good\"]', or @file.json" },
    tokens: { type: 'string', value: 'TEXT', help: 'the input as words (split at spaces), for occlusion and shapley' },
    method: { type: 'string', value: 'METHOD', help: `${METHODS.join(', ')} (default central)` },
    output: { type: 'string', value: 'N', help: 'the index of the logit to explain, when the model answers several' },
    body: { type: 'string', value: 'JSON', help: 'a target URL: the request it takes, "$input" where the input goes (or @file.json)' },
    'output-path': { type: 'string', value: 'POINTER', help: 'a target URL: the JSON pointer to its logits in its answer, e.g. /logits (default: the whole answer)' },
    header: { type: 'string', multiple: true, value: "'NAME: VALUE'", help: 'a target URL: a header to send it (repeatable)' },
    'method-http': { type: 'string', value: 'VERB', help: 'a target URL: POST (default), PUT or PATCH' },
    budget: { type: 'string', value: 'N', help: 'the most queries to send, retries included' },
    epsilon: { type: 'string', value: 'E', help: 'the relative step of finite differences' },
    directions: { type: 'string', value: 'K', help: 'spsa/nes: random directions' },
    samples: { type: 'string', value: 'N', help: 'shapley: permutations to sample' },
    mask: { type: 'string', value: 'TOKEN', help: 'occlusion/shapley: replace a token by this one instead of removing it' },
    concurrency: { type: 'string', value: 'N', help: 'queries in flight at once' },
    'timeout-ms': { type: 'string', value: 'MS', help: 'the time limit of each query' },
    seed: { type: 'string', value: 'S', help: 'seed of the random directions (default 0)' },
    image: { type: 'string', value: 'JSON', help: 'the input is an image: \'{"shape": [28, 28], "patch": [4, 4]}\' (or @file.json)' },
    png: { type: 'string', value: 'FILE', help: 'with --image: write the map as a PNG heat map over the image to FILE' },
  },
  request(parsed) {
    if (parsed.positionals.length !== 1) throw new InputError(`expected one target (a URL, an expression or @request.json), got ${parsed.positionals.length} arguments`);
    const argument = parsed.positionals[0]!;
    let base: Record<string, unknown> = {};
    let target: Record<string, unknown> | undefined;
    if (argument.startsWith('@')) {
      const text = readArgument(argument);
      if (text.trimStart().startsWith('{')) {
        const json = parseJson(text, argument.slice(1));
        if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new InputError(`${argument.slice(1)}: a POST /probe body is a JSON object`);
        base = json as Record<string, unknown>;
      } else target = { expr: text };
    } else target = targetOf(argument, parsed);
    const image = str(parsed, 'image');
    const png = str(parsed, 'png');
    const mask = str(parsed, 'mask');
    const body = {
      ...base,
      ...defined({
        target,
        at: inputOf(parsed),
        method: oneOf(parsed, 'method', METHODS) ?? (base.method === undefined ? 'central' : undefined),
        output: numberOption(parsed, 'output'),
        budget: numberOption(parsed, 'budget'),
        epsilon: numberOption(parsed, 'epsilon'),
        directions: numberOption(parsed, 'directions'),
        samples: numberOption(parsed, 'samples'),
        mask: mask === undefined ? undefined : Number.isFinite(Number(mask)) && mask.trim() !== '' ? Number(mask) : mask,
        concurrency: numberOption(parsed, 'concurrency'),
        timeoutMs: numberOption(parsed, 'timeout-ms'),
        seed: numberOption(parsed, 'seed'),
        image: image === undefined ? undefined : parseJson(readArgument(image), '--image'),
        format: png === undefined ? undefined : 'png',
      }),
    };
    if (body.at === undefined) throw new InputError("--at is required: the input, e.g. --at '[0.1, 0.2]' (or --tokens 'not good')");
    const expr = (body.target as { expr?: unknown } | undefined)?.expr;
    return { path: '/probe', body, job: true, ...(typeof expr === 'string' ? { source: expr } : {}) };
  },
  async show(answer, parsed) {
    const a = answer as ProbeAnswer & { png?: string };
    const digits = digitsOf(parsed);
    const rows: [string, AnswerValue][] = [['value', a.value]];
    if ('gradient' in a) rows.push(['gradient', a.gradient as AnswerValue]);
    if ('scores' in a) rows.push(['scores', a.scores as AnswerValue]);
    if ('stderr' in a && a.stderr !== undefined) rows.push(['stderr', a.stderr as AnswerValue]);
    if ('exact' in a && a.exact !== undefined) rows.push(['exact', a.exact as AnswerValue]);
    const lines = labelled(rows, digits);
    const notes = [`${a.method}`, `${a.queries} queries`];
    if ('epsilon' in a) notes.push(`epsilon ${formatNumber(a.epsilon, 4)}`);
    if ('cosine' in a && a.cosine !== undefined) notes.push(`cosine to the exact gradient ${formatNumber(a.cosine, 6)}`);
    if ('samples' in a) notes.push(`${a.samples} permutations, baseline ${formatNumber(a.baselineValue, digits)}`);
    lines.push(`(${notes.join(', ')})`);
    const png = str(parsed, 'png');
    if (png !== undefined && typeof a.png === 'string') {
      const bytes = Buffer.from(a.png, 'base64');
      await writeAnswerFile(png, bytes);
      lines.push(`wrote ${png} (${bytes.length} bytes of PNG)`);
    }
    return { text: lines.join('\n'), passed: true };
  },
};
