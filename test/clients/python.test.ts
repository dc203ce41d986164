// The Python client (clients/python, the distribution adjoint-client) as users get it: installed
// with pip into a fresh virtual environment — from the directory and from the git repository —
// and used from outside the repository (cwd a temporary folder, no PYTHONPATH): its own unittest
// suite (clients/python/tests, docstring examples included) with numpy and without, the example
// in examples/python/, and every Python example of docs/clients.md, against a running server.
//
// Needs Debian's python3 with venv, pip, setuptools and wheel (.ci/run installs python3-venv,
// python3-pip, python3-setuptools, python3-wheel and python3-numpy): pip builds the package with
// --no-build-isolation and --no-index, so no package index is needed. Where they are missing the
// test says so loudly and is skipped.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runningServer } from '../helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const clientDir = join(root, 'clients/python');

function findPython(): string | undefined {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      // venv, and what pip needs to build the package offline (setuptools' build_meta, wheel).
      execFileSync(candidate, ['-c', 'import sys, venv, ensurepip, setuptools, wheel; assert sys.version_info >= (3, 8)'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

const python = findPython();
const hasNumpy = python !== undefined && spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
const inGit = spawnSync('git', ['-C', root, 'rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' }).stdout?.trim() === 'true';
if (python === undefined) console.warn('WARNING: no python3 with venv, pip, setuptools and wheel here: the Python client tests are skipped (apt-get install python3-venv python3-pip python3-setuptools python3-wheel python3-numpy)');
else if (!hasNumpy) console.warn('WARNING: numpy is not installed: the Python client is tested without it only');

/** The Python blocks of docs/clients.md, as written. */
function docsExamples(): string[] {
  const text = readFileSync(join(root, 'docs/clients.md'), 'utf8');
  return [...text.matchAll(/^```python\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
}

// Asynchronous: the server answering the child may run on this thread.
const run = (command: string, args: string[], options: { cwd: string; env?: Record<string, string> }) =>
  new Promise<{ status: number | null; output: string }>((resolve) => {
    const env: Record<string, string | undefined> = { ...process.env, ...options.env };
    delete env.PYTHONPATH; // the installed package, nothing else
    delete env.PYTHONHOME;
    const child = spawn(command, args, { cwd: options.cwd, env });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (status) => resolve({ status, output }));
  });

describe.skipIf(python === undefined)('the Python client, installed with pip into a fresh venv', () => {
  // The compiled service that .ci/run starts (ADJOINT_TEST_URL), else one built here.
  let server: { url: string; close: () => Promise<void> };
  let scratch: string;
  let venvPython: string;
  let env: Record<string, string>;

  const venv = async (dir: string): Promise<string> => {
    // --system-site-packages: Debian's setuptools, wheel and numpy, with no package index.
    const made = await run(python!, ['-m', 'venv', '--system-site-packages', dir], { cwd: scratch });
    expect(made.status, made.output).toBe(0);
    return join(dir, 'bin/python');
  };
  const pipInstall = (interpreter: string, what: string) => run(interpreter, ['-m', 'pip', 'install', '--no-build-isolation', '--no-index', '--disable-pip-version-check', '--no-cache-dir', what], { cwd: scratch });

  beforeAll(async () => {
    // No 503 overloaded when other work on the machine delays its event loop.
    server = await runningServer({ MAX_EVENT_LOOP_DELAY_MS: 0 });
    scratch = mkdtempSync(join(tmpdir(), 'adjoint-python-'));
    env = { ADJOINT_URL: server.url };
    // `pip install ./clients/python` as a user types it in a clone, on a copy (setuptools writes
    // build/ and *.egg-info/ beside the sources; a stale build/ would leak into the wheel).
    cpSync(clientDir, join(scratch, 'clients/python'), { recursive: true, filter: (path) => !/(^|\/)(build|dist|__pycache__|[^/]*\.egg-info)$/.test(path) });
    venvPython = await venv(join(scratch, 'venv'));
    const installed = await pipInstall(venvPython, './clients/python');
    expect(installed.status, installed.output).toBe(0);
    // The tests, away from the sources: only the installed package can be imported.
    cpSync(join(clientDir, 'tests'), join(scratch, 'tests'), { recursive: true });
  }, 180_000);
  afterAll(async () => {
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("imports from / as `adjoint`, the installed package (typed: py.typed), the version pyproject's", async () => {
    const { status, output } = await run(venvPython, ['-c', 'import adjoint, importlib.metadata as m, os; print(adjoint.__file__); print(adjoint.__version__, m.version("adjoint-client")); print(os.path.exists(os.path.join(os.path.dirname(adjoint.__file__), "py.typed")))'], { cwd: '/' });
    expect(status, output).toBe(0);
    const [file, versions, typed] = output.trim().split('\n');
    expect(file!.startsWith(join(scratch, 'venv/lib/'))).toBe(true);
    expect(file).toMatch(/\/site-packages\/adjoint\/__init__\.py$/);
    const [version, distribution] = versions!.split(' ');
    expect(version).toBe(distribution);
    expect(typed).toBe('True');
  });

  it.skipIf(!hasNumpy)('passes its tests with numpy (float64 arrays in and out), from outside the repository', { timeout: 180_000 }, async () => {
    const { status, output } = await run(venvPython, ['tests/test_adjoint.py', '-v'], { cwd: scratch, env });
    expect(status, output).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
    expect(output).not.toMatch(/skipped 'numpy'/);
  });

  it('passes its tests without numpy (the standard library only)', { timeout: 180_000 }, async () => {
    const script = "import sys; sys.modules['numpy'] = None; sys.path.insert(0, 'tests')\nimport unittest, test_adjoint\nunittest.main(module=test_adjoint, argv=['test_adjoint', '-v'])";
    const { status, output } = await run(venvPython, ['-c', script], { cwd: scratch, env });
    expect(status, output).toBe(0);
    expect(output).toMatch(/Ran \d+ tests/);
  });

  it('runs examples/python/lecture.py with no PYTHONPATH', async () => {
    const { status, output } = await run(venvPython, [join(root, 'examples/python/lecture.py')], { cwd: scratch, env });
    expect(status, output).toBe(0);
    expect(output).toContain('finite differences agree: True');
    expect(output).toMatch(/refused: parse_error at line 1, column 4/);
  });

  it('runs every Python example of docs/clients.md as written', { timeout: 120_000 }, async () => {
    const examples = docsExamples();
    expect(examples.length).toBeGreaterThanOrEqual(3);
    for (const [i, code] of examples.entries()) {
      const file = join(scratch, `docs-example-${i}.py`);
      writeFileSync(file, code);
      const { status, output } = await run(venvPython, [file], { cwd: scratch, env });
      expect(status, `docs/clients.md, Python example ${i + 1}:\n${code}\n${output}`).toBe(0);
    }
  });

  it('imports nothing beyond the standard library (and numpy and msgpack where present, both optional)', async () => {
    const script = `import ast, sys, pathlib
mods = set()
for f in pathlib.Path(sys.argv[1]).glob('*.py'):
    for n in ast.walk(ast.parse(f.read_text())):
        if isinstance(n, ast.Import): mods |= {a.name.split('.')[0] for a in n.names}
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0: mods.add(n.module.split('.')[0])
print(' '.join(sorted(m for m in mods if m not in sys.stdlib_module_names)))`;
    const { status, output } = await run(venvPython, ['-c', script, join(clientDir, 'adjoint')], { cwd: scratch });
    expect(status, output).toBe(0);
    expect(output.trim().split(/\s+/).filter(Boolean)).toEqual(['msgpack', 'numpy']);
  });

  // pip clones the repository (its committed HEAD) and builds the subdirectory.
  it.skipIf(!inGit)('installs with pip install "git+<repository>#subdirectory=clients/python"', { timeout: 180_000 }, async () => {
    const other = await venv(join(scratch, 'venv-git'));
    const installed = await pipInstall(other, `git+file://${root.replace(/\/$/, '')}#subdirectory=clients/python`);
    expect(installed.status, installed.output).toBe(0);
    const { status, output } = await run(other, ['-c', 'import adjoint; print(adjoint.__file__); print(adjoint.Adjoint().grad("x^3", x=2).gradient["x"])'], { cwd: '/', env });
    expect(status, output).toBe(0);
    expect(output).toContain(join(scratch, 'venv-git/lib'));
    expect(output.trim().split('\n').at(-1)).toBe('12.0');
  });

  it('keeps one connection alive: a program of many calls opens one', async () => {
    const script = 'from adjoint import Adjoint\nad = Adjoint()\nfor i in range(200): ad.grad("x^2", x=i)\nprint(ad.connections_opened)';
    const { status, output } = await run(venvPython, ['-c', script], { cwd: scratch, env });
    expect(status, output).toBe(0);
    expect(output.trim()).toBe('1');
  });
});

