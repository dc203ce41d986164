// Every shell example of README.md and docs/*.md, run as written against a running service and the
// demo models of `npm run demo:model`, its answers compared with the ones the text shows.
//
// The conventions a document follows (README.md, "Development", points here):
//
// - Every fenced block whose language is `sh`, `bash` or `shell` is an example. It runs on its own
//   (a fresh `bash` with `set -eo pipefail`, in a scratch folder that links to the repository's
//   files), so it defines what it uses (`H=...`, `ID=$(...)`, `DIGIT=$(...)`).
// - The service is at `localhost:3000` and the demo models at `127.0.0.1:8081` (MNIST) and
//   `127.0.0.1:8082` (text), as `npm start` and `npm run demo:model` serve them; the test rewrites
//   those addresses to the ones it started (the service with
//   `PROBE_ALLOWED_ORIGINS=http://127.0.0.1:8081,http://127.0.0.1:8082`, as the docs say to).
//   `adjoint` and `npx adjoint` are the command line (`npm link`, or `npx adjoint` in the clone
//   after `npm run build`), run here from the sources.
// - `<!-- not-run: reason -->` on the line before a block (blank lines between allowed): it is not run (installing, building,
//   starting servers, waiting on a terminal).
// - `<!-- shows-error: 404 -->` (statuses, and `exit N` for an exit status, comma-separated) on
//   the line before a block: the example shows that error. Any other answer of 400 or more, or a
//   non-zero exit status, fails the example.
// - A block whose info string is `json expected` or `text expected`, right after an example
//   (blank lines between), is its output. JSON is compared structurally: numbers to a relative
//   1e-9, the string "..." matches any value, an object with a "..." key may have other keys, and
//   an array whose last element is "..." may have more elements; the output may be several JSON
//   values (one per request), and the block then shows as many. Text is compared line by line,
//   trailing spaces ignored.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDemoModel, startTextModel, type DemoModel } from '../../src/demo/model-server.js';
import type { App } from '../../src/service/app.js';
import { buildTestApp } from '../helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHELLS = new Set(['sh', 'bash', 'shell']);

interface Example {
  file: string;
  line: number;
  code: string;
  notRun?: string;
  errors: { statuses: Set<number>; exit: number };
  expected?: { kind: 'json' | 'text'; text: string };
}

/** The shell examples of one Markdown text, with their markers and expected outputs. */
function examplesOf(file: string, markdown: string): Example[] {
  const lines = markdown.split('\n');
  const examples: Example[] = [];
  let i = 0;
  // The fenced blocks, in order: [info, first line, code].
  const blocks: { info: string; line: number; end: number; code: string }[] = [];
  while (i < lines.length) {
    const open = /^(\s*)(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]!);
    if (!open) {
      i++;
      continue;
    }
    const [, indent, fence, info] = open;
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !(lines[j]!.trim().startsWith(fence!) && lines[j]!.trim().replace(/[`~]/g, '') === '')) {
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
      j++;
    }
    blocks.push({ info: info!.trim(), line: i + 1, end: j + 1, code: body.join('\n') });
    i = j + 1;
  }
  blocks.forEach((block, b) => {
    const language = block.info.split(/\s+/)[0]!.toLowerCase();
    if (!SHELLS.has(language)) return;
    // The markers: HTML comments on the lines just before the block.
    let notRun: string | undefined;
    const statuses = new Set<number>();
    let exit = 0;
    for (let k = block.line - 2; k >= 0; k--) {
      if (lines[k]!.trim() === '') continue;
      const marker = /^\s*<!--\s*(not-run|shows-error)\s*:?\s*(.*?)\s*-->\s*$/.exec(lines[k]!);
      if (!marker) break;
      if (marker[1] === 'not-run') notRun = marker[2] || 'marked not-run';
      else {
        for (const part of marker[2]!.split(',').map((p) => p.trim())) {
          const exitStatus = /^exit\s+(\d+)$/.exec(part);
          if (exitStatus) exit = Number(exitStatus[1]);
          else if (/^\d{3}$/.test(part)) statuses.add(Number(part));
          else throw new Error(`${file}:${k + 1}: a shows-error marker lists statuses (404) and exit statuses (exit 1), not ${JSON.stringify(part)}`);
        }
      }
    }
    const next = blocks[b + 1];
    let expected: Example['expected'];
    if (next && /^(json|text)\s+expected$/.test(next.info) && lines.slice(block.end, next.line - 1).every((l) => l.trim() === '')) {
      expected = { kind: next.info.startsWith('json') ? 'json' : 'text', text: next.code };
    }
    examples.push({ file, line: block.line, code: block.code, notRun, errors: { statuses, exit }, expected });
  });
  return examples;
}

/** Splits text holding JSON values one after another (whitespace between) into the values. */
function jsonValues(text: string): unknown[] {
  const values: unknown[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const start = i;
    let depth = 0;
    let inString = false;
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (inString) {
        if (c === '\\') i++;
        else if (c === '"') {
          inString = false;
          if (depth === 0) {
            i++;
            break;
          }
        }
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) {
          i++;
          break;
        }
      } else if (depth === 0 && /\s/.test(c)) break;
    }
    values.push(JSON.parse(text.slice(start, i)));
  }
  return values;
}

/** Where `actual` differs from `expected` under the conventions above, or undefined. */
function difference(expected: unknown, actual: unknown, path = '$'): string | undefined {
  if (expected === '...') return undefined;
  if (typeof expected === 'number') {
    if (typeof actual !== 'number') return `${path}: expected ${expected}, got ${JSON.stringify(actual)}`;
    const ok = Math.abs(actual - expected) <= 1e-9 * Math.max(Math.abs(expected), Math.abs(actual)) + 1e-12;
    return ok ? undefined : `${path}: expected ${expected}, got ${actual}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected an array, got ${JSON.stringify(actual)?.slice(0, 80)}`;
    const open = expected.length > 0 && expected[expected.length - 1] === '...';
    const items = open ? expected.slice(0, -1) : expected;
    if (open ? actual.length < items.length : actual.length !== items.length) return `${path}: expected ${items.length}${open ? ' or more' : ''} elements, got ${actual.length}`;
    for (let k = 0; k < items.length; k++) {
      const d = difference(items[k], actual[k], `${path}[${k}]`);
      if (d !== undefined) return d;
    }
    return undefined;
  }
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return `${path}: expected an object, got ${JSON.stringify(actual)?.slice(0, 80)}`;
    const e = expected as Record<string, unknown>;
    const a = actual as Record<string, unknown>;
    const open = Object.hasOwn(e, '...');
    for (const key of Object.keys(e)) {
      if (key === '...') continue;
      if (!Object.hasOwn(a, key)) return `${path}.${key}: missing`;
      const d = difference(e[key], a[key], `${path}.${key}`);
      if (d !== undefined) return d;
    }
    if (!open) {
      const extra = Object.keys(a).filter((key) => !Object.hasOwn(e, key));
      if (extra.length > 0) return `${path}: unexpected ${extra.join(', ')} (add "...": "..." to allow others)`;
    }
    return undefined;
  }
  return expected === actual ? undefined : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)?.slice(0, 120)}`;
}

/** What is wrong with an example's run (its exit status, standard output and error), or undefined. */
function verdict(example: Example, run: { status: number | null; stdout: string; stderr: string }): string | undefined {
  const statuses = [...run.stderr.matchAll(/^@@status (\d{3})$/gm)].map((m) => Number(m[1]));
  const unshown = statuses.find((s) => s >= 400 && !example.errors.statuses.has(s));
  if (unshown !== undefined) return `an answer was HTTP ${unshown}, which the example does not say it shows (<!-- shows-error: ${unshown} -->)`;
  const missing = [...example.errors.statuses].find((s) => !statuses.includes(s));
  if (missing !== undefined) return `the example says it shows HTTP ${missing}, and no answer was`;
  if (run.status !== example.errors.exit) return `the exit status was ${run.status}, not ${example.errors.exit}`;
  if (example.expected?.kind === 'json') {
    const wanted = jsonValues(example.expected.text);
    let got: unknown[];
    try {
      got = jsonValues(run.stdout);
    } catch (error) {
      return `the output is not JSON (${String(error)})`;
    }
    if (got.length !== wanted.length) return `the output has ${got.length} JSON values, the text shows ${wanted.length}`;
    for (let k = 0; k < wanted.length; k++) {
      const d = difference(wanted[k], got[k]);
      if (d !== undefined) return `output ${k + 1}: ${d}`;
    }
  } else if (example.expected?.kind === 'text') {
    const clean = (t: string) => t.split('\n').map((l) => l.trimEnd()).join('\n').trim();
    if (clean(run.stdout) !== clean(example.expected.text)) return `the output is not the text shown:\n${clean(example.expected.text)}`;
  }
  return undefined;
}

/** README.md and every docs/*.md, whoever added them. */
function documents(): { file: string; text: string }[] {
  const docs = readdirSync(join(ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs].map((file) => ({ file, text: readFileSync(join(ROOT, file), 'utf8') }));
}

const ALL = documents().flatMap(({ file, text }) => examplesOf(file, text));

describe('the conventions of the docs test', () => {
  it('reads markers and expected outputs', () => {
    const md = [
      '<!-- not-run: installs -->',
      '```sh',
      'npm ci',
      '```',
      '<!-- shows-error: 404, exit 1 -->',
      '',
      '```bash',
      'curl -s localhost:3000/nothing',
      '```',
      '',
      '```json expected',
      '{"code": "not_found", "...": "..."}',
      '```',
      '```python',
      'print(1)',
      '```',
    ].join('\n');
    const [a, b, ...rest] = examplesOf('x.md', md);
    expect(rest).toEqual([]);
    expect(a).toMatchObject({ line: 2, code: 'npm ci', notRun: 'installs', expected: undefined });
    expect(b).toMatchObject({ line: 7, notRun: undefined, errors: { exit: 1 }, expected: { kind: 'json', text: '{"code": "not_found", "...": "..."}' } });
    expect([...b!.errors.statuses]).toEqual([404]);
  });

  it('fails an example on an error it does not say it shows, a wrong exit status or another answer', () => {
    const [plain, marked] = examplesOf('x.md', ['```sh', 'curl', '```', '', '```json expected', '{"a": 1}', '```', '<!-- shows-error: 404, exit 1 -->', '```sh', 'curl', '```'].join('\n'));
    const ok = { status: 0, stdout: '{"a": 1}', stderr: '\n@@status 200\n' };
    expect(verdict(plain!, ok)).toBeUndefined();
    expect(verdict(plain!, { ...ok, stderr: '\n@@status 200\n\n@@status 404\n' })).toMatch(/HTTP 404/);
    expect(verdict(plain!, { ...ok, stderr: '\n@@status 502\n' })).toMatch(/HTTP 502/);
    expect(verdict(plain!, { ...ok, status: 1 })).toMatch(/exit status was 1/);
    expect(verdict(plain!, { ...ok, stdout: '{"a": 2}' })).toMatch(/\$\.a: expected 1, got 2/);
    expect(verdict(plain!, { ...ok, stdout: '{"a": 1} {"a": 1}' })).toMatch(/2 JSON values/);
    expect(verdict(marked!, { status: 1, stdout: '', stderr: '\n@@status 404\n' })).toBeUndefined();
    expect(verdict(marked!, { status: 1, stdout: '', stderr: '\n@@status 200\n' })).toMatch(/says it shows HTTP 404/);
  });

  it('compares JSON with wildcards and a tolerance for floats', () => {
    expect(jsonValues('{"a": [1, "x}"]}\n2\n"s" [3]')).toEqual([{ a: [1, 'x}'] }, 2, 's', [3]]);
    expect(difference({ a: 0.1 + 0.2, b: '...', '...': '...' }, { a: 0.3, b: [1], c: 2 })).toBeUndefined();
    expect(difference({ a: 0.3 }, { a: 0.3001 })).toMatch(/\$\.a/);
    expect(difference({ a: 1 }, { a: 1, b: 2 })).toMatch(/unexpected b/);
    expect(difference([1, '...'], [1, 2, 3])).toBeUndefined();
    expect(difference([1, 2], [1, 2, 3])).toMatch(/expected 2 elements/);
  });
});

describe('shell examples', () => {
  let app: App;
  let mnist: DemoModel;
  let text: DemoModel;
  let scratch: string;
  let port: number;

  beforeAll(async () => {
    mnist = await startDemoModel();
    text = await startTextModel();
    app = buildTestApp({ PROBE_ALLOWED_ORIGINS: [mnist.origin, text.origin], DEMO_MODEL_PORT: mnist.port, DEMO_TEXT_PORT: text.port });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as { port: number }).port;
    // A scratch folder that sees the repository's files (examples write theirs here, not there),
    // with the `adjoint` command on the PATH as `npm link` puts it.
    scratch = mkdtempSync(join(tmpdir(), 'adjoint-docs-'));
    for (const name of readdirSync(ROOT)) if (!name.startsWith('.')) symlinkSync(join(ROOT, name), join(scratch, name));
    mkdirSync(join(scratch, '.bin'));
    // `adjoint` (as `npm link` puts it on the PATH) and `npx adjoint` (the clone's own command,
    // dist/src/cli/main.js once built) run the sources, so no build is needed; other npx calls pass.
    const tsx = `"${join(ROOT, 'node_modules/.bin/tsx')}" "${join(ROOT, 'src/cli/main.ts')}"`;
    const npx = execFileSync('bash', ['-c', 'command -v npx'], { encoding: 'utf8' }).trim();
    const shims = {
      adjoint: `#!/bin/sh\nexec ${tsx} "$@"\n`,
      npx: `#!/bin/sh\nif [ "$1" = adjoint ]; then shift; exec ${tsx} "$@"; fi\nexec "${npx}" "$@"\n`,
    };
    for (const [name, script] of Object.entries(shims)) {
      writeFileSync(join(scratch, '.bin', name), script);
      chmodSync(join(scratch, '.bin', name), 0o755);
    }
  });

  afterAll(async () => {
    await app?.close();
    await mnist?.close();
    await text?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('finds examples in every document', () => {
    expect(ALL.filter((e) => e.file === 'README.md' && e.notRun === undefined).length).toBeGreaterThan(5);
  });

  /** The example with the documented addresses replaced by the test's. */
  function rewrite(code: string): string {
    return code
      .replace(/\b(?:localhost|127\.0\.0\.1):3000\b/g, `127.0.0.1:${port}`)
      .replace(/\b(?:localhost|127\.0\.0\.1):8081\b/g, `127.0.0.1:${mnist.port}`)
      .replace(/\b(?:localhost|127\.0\.0\.1):8082\b/g, `127.0.0.1:${text.port}`);
  }

  function run(code: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
    // curl reports each answer's status on standard error, where the test reads it.
    const preamble = ['set -eo pipefail', `export PATH="${join(scratch, '.bin')}:$PATH"`, "curl() { command curl -w '%{stderr}\\n@@status %{http_code}\\n' \"$@\"; }", ''].join('\n');
    return new Promise((resolve, reject) => {
      const child = spawn('bash', ['-c', preamble + rewrite(code)], { cwd: scratch, env: { ...process.env, ADJOINT_URL: '', ADJOINT_API_KEY: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
      const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
      child.on('error', reject);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolve({ status, stdout, stderr });
      });
    });
  }

  const runnable = ALL.filter((e) => e.notRun === undefined);
  it.each(runnable.map((e) => [`${e.file}:${e.line}`, e] as const))('%s', async (_where, example) => {
    const result = await run(example.code);
    const failure = verdict(example, result);
    if (failure !== undefined) expect.fail(`${failure}\n--- stdout\n${result.stdout.slice(0, 3000)}\n--- stderr\n${result.stderr.slice(0, 3000)}`);
  }, 180_000);
});
