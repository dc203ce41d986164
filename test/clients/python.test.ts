// The Python client (clients/python/adjoint.py) against a running server: its own unittest suite
// (clients/python/test_adjoint.py, docstring examples included), once with numpy and once with
// numpy made unimportable. Needs a python3 (CI installs Debian's python3 and python3-numpy); where
// there is none, the test says so loudly and is skipped.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runningServer } from '../helpers.js';

const clientDir = fileURLToPath(new URL('../../clients/python/', import.meta.url));

function findPython(): string | undefined {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(candidate, ['-c', 'import sys; assert sys.version_info >= (3, 8)'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

const python = findPython();
const hasNumpy = python !== undefined && spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;
if (python === undefined) console.warn('WARNING: no python3 here: the Python client tests are skipped (apt-get install python3 python3-numpy)');
else if (!hasNumpy) console.warn('WARNING: numpy is not installed: the Python client is tested without it only');

describe.skipIf(python === undefined)('the Python client against a running server', () => {
  // The compiled service that .ci/run starts (ADJOINT_TEST_URL), else one built here.
  let server: { url: string; close: () => Promise<void> };
  let url: string;
  beforeAll(async () => {
    server = await runningServer();
    url = server.url;
  });
  afterAll(() => server.close());

  // Asynchronous: the server answering the client runs on this thread.
  const run = (args: string[]) =>
    new Promise<{ status: number | null; output: string }>((resolve) => {
      const child = spawn(python!, args, { cwd: clientDir, env: { ...process.env, ADJOINT_URL: url, PYTHONPATH: clientDir } });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.on('close', (status) => resolve({ status, output }));
    });

  it.skipIf(!hasNumpy)('passes its tests with numpy (float64 arrays in and out)', async () => {
    const { status, output } = await run(['-m', 'unittest', '-v', 'test_adjoint']);
    expect(status, output).toBe(0);
    expect(output).toMatch(/Ran 8 tests/);
  });

  it('passes its tests without numpy (the standard library only)', async () => {
    const { status, output } = await run(['-c', "import sys; sys.modules['numpy'] = None\nimport unittest, test_adjoint\nunittest.main(module=test_adjoint, argv=['test_adjoint', '-v'])"]);
    expect(status, output).toBe(0);
    expect(output).toMatch(/Ran 8 tests/);
  });

  it('runs the example in examples/python/', async () => {
    const example = fileURLToPath(new URL('../../examples/python/lecture.py', import.meta.url));
    const { status, output } = await run([example]);
    expect(status, output).toBe(0);
    expect(output).toContain('finite differences agree: True');
    expect(output).toMatch(/refused: parse_error at line 1, column 4/);
  });

  it('is one module of the standard library (and numpy where present)', () => {
    expect(existsSync(`${clientDir}adjoint.py`)).toBe(true);
    const imports = spawnSync(python!, ['-c', "import ast,sys; t=ast.parse(open('adjoint.py').read()); print(sorted({a.name.split('.')[0] for n in ast.walk(t) if isinstance(n,(ast.Import,)) for a in n.names} | {n.module.split('.')[0] for n in ast.walk(t) if isinstance(n, ast.ImportFrom) and n.module}))"], { cwd: clientDir, encoding: 'utf8' }).stdout;
    const modules = JSON.parse(imports.trim().replace(/'/g, '"')) as string[];
    const stdlib = new Set(['__future__', 'base64', 'json', 'math', 'os', 'struct', 'typing', 'urllib']);
    expect(modules.filter((m) => !stdlib.has(m) && m !== 'numpy')).toEqual([]);
  });
});
