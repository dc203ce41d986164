// The TypeScript client as users install it: `npm pack` of clients/typescript (its prepack builds
// dist/), the tarball installed into a scratch project outside the repository (openapi-fetch from
// the npm cache or the registry), then against a running server: a plain-`node` script calling
// /grad; `tsc --noEmit` of an importer under moduleResolution node16, nodenext and bundler (the
// repository's tsc) and node10 (the client's TypeScript 5, as node10 left TypeScript 7); and
// examples/typescript/lecture.ts with every TypeScript example of docs/clients.md, compiled by tsc
// and run by node.

import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runningServer } from '../helpers.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const clientDir = join(root, 'clients/typescript');
const tsc = join(root, 'node_modules/.bin/tsc'); // the repository's (TypeScript 7)
const tsc5 = join(clientDir, 'node_modules/.bin/tsc'); // the client's own devDependency (TypeScript 5)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

// Asynchronous: the server answering the child may run on this thread.
const run = (command: string, args: string[], cwd: string, env: Record<string, string> = {}) =>
  new Promise<{ status: number | null; output: string }>((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...env } });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (status) => resolve({ status, output }));
  });

/** The TypeScript blocks of docs/clients.md, as written. */
function docsExamples(): string[] {
  const text = readFileSync(join(root, 'docs/clients.md'), 'utf8');
  return [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
}

// An importer: the client's types as a user's code meets them (a typo must fail tsc).
const IMPORTER = `import { AdjointError, createAdjoint, type Job, JobCancelledError, type Tensor } from '@adjoint/client';

const adjoint = createAdjoint({ baseUrl: 'http://127.0.0.1:3000' });
export async function main(): Promise<number> {
  const { gradient } = await adjoint.grad({ expr: 'x^3', at: { x: 2 } });
  const g: Tensor | undefined = gradient.x;
  // @ts-expect-error a misspelt request field
  await adjoint.grad({ exp: 'x^3', at: { x: 2 } });
  const job: Job = await adjoint.submit('hessian', { expr: 'x @ x', at: { x: [1, 2] } });
  const { hessian } = await adjoint.wait(await adjoint.submit('hessian', { expr: 'x @ x', at: { x: [1, 2] } }));
  const probe = await adjoint.probe({ target: { expr: 'sum(sin(x))' }, at: [0.1, 0.2], method: 'central' });
  const cancelled = new JobCancelledError(job) instanceof AdjointError;
  return (g?.item() ?? 0) + (hessian.x?.x?.item() ?? 0) + probe.queries + (cancelled ? 1 : 0);
}
`;

const tsconfig = (module: string, moduleResolution: string) =>
  JSON.stringify({ compilerOptions: { target: 'es2022', module, moduleResolution, lib: ['es2022', 'dom'], types: [], strict: true, noEmit: true, skipLibCheck: false }, files: ['importer.ts'] });

describe('the TypeScript client as a package (npm pack, installed outside the repository)', () => {
  let server: { url: string; close: () => Promise<void> };
  let scratch: string;
  let project: string;

  beforeAll(async () => {
    // No 503 overloaded when other work on the machine delays its event loop.
    server = await runningServer({ MAX_EVENT_LOOP_DELAY_MS: 0 });
    scratch = mkdtempSync(join(tmpdir(), 'adjoint-typescript-'));
    // prepack builds dist/ with the client's own tsc.
    const packed = await run(npm, ['pack', '--pack-destination', scratch], clientDir);
    expect(packed.status, packed.output).toBe(0);
    const tarball = readdirSync(scratch).find((name) => name.endsWith('.tgz'));
    expect(tarball, packed.output).toBeDefined();

    project = join(scratch, 'project');
    mkdirSync(project);
    const manifest = { name: 'scratch', private: true, type: 'module', dependencies: { '@adjoint/client': `file:../${tarball}`, '@types/node': '^20.19.0' } };
    writeFileSync(join(project, 'package.json'), JSON.stringify(manifest, null, 2));
    const installed = await run(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund'], project);
    expect(installed.status, installed.output).toBe(0);
  }, 240_000);
  afterAll(async () => {
    await server?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('holds the built JavaScript and declarations, not the sources', () => {
    const installed = join(project, 'node_modules/@adjoint/client');
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { private?: boolean; exports: Record<string, Record<string, string>> };
    expect(manifest.private).toBeUndefined();
    expect(manifest.exports['.']).toMatchObject({ types: './dist/index.d.ts', import: './dist/index.js' });
    const files = readdirSync(join(installed, 'dist'));
    expect(files).toEqual(expect.arrayContaining(['index.js', 'index.d.ts', 'client.js', 'jobs.js', 'schema.d.ts']));
    expect(readdirSync(installed)).not.toContain('src');
  });

  it('runs under plain node: a .mjs script calls /grad', async () => {
    writeFileSync(
      join(project, 'call.mjs'),
      `import { createAdjoint } from '@adjoint/client';
const adjoint = createAdjoint({ baseUrl: process.env.ADJOINT_URL });
const { value, gradient } = await adjoint.grad({ expr: 'x^3', at: { x: 2 } });
console.log(JSON.stringify([value.item(), gradient.x.item()]));
`,
    );
    const { status, output } = await run(process.execPath, ['call.mjs'], project, { ADJOINT_URL: server.url });
    expect(status, output).toBe(0);
    expect(JSON.parse(output.trim())).toEqual([8, 12]);
  });

  it.each([
    ['node16', 'node16', tsc],
    ['nodenext', 'nodenext', tsc],
    ['esnext', 'bundler', tsc],
    ['commonjs', 'node10', tsc5],
  ])('type-checks an importer with module %s, moduleResolution %s', { timeout: 120_000 }, async (module, moduleResolution, compiler) => {
    writeFileSync(join(project, 'importer.ts'), IMPORTER);
    const config = `tsconfig.${moduleResolution}.json`;
    writeFileSync(join(project, config), tsconfig(module, moduleResolution));
    const { status, output } = await run(compiler, ['-p', config], project);
    expect(status, output).toBe(0);
  });

  it('a type check that can fail: the importer with a @ts-expect-error left unused does not compile', { timeout: 120_000 }, async () => {
    writeFileSync(join(project, 'importer-failing.ts'), IMPORTER.replace("{ exp: 'x^3'", "{ expr: 'x^3'"));
    writeFileSync(join(project, 'tsconfig.failing.json'), tsconfig('nodenext', 'nodenext').replace('importer.ts', 'importer-failing.ts'));
    const { status, output } = await run(tsc, ['-p', 'tsconfig.failing.json'], project);
    expect(status).not.toBe(0);
    expect(output).toMatch(/TS2578/); // Unused '@ts-expect-error' directive
  });

  it('compiles with tsc and runs under node examples/typescript/lecture.ts and every TypeScript example of docs/clients.md', { timeout: 180_000 }, async () => {
    const examples = docsExamples();
    expect(examples.length).toBeGreaterThanOrEqual(4);
    const dir = join(project, 'examples');
    mkdirSync(dir, { recursive: true });
    cpSync(join(root, 'examples/typescript/lecture.ts'), join(dir, 'lecture.ts'));
    examples.forEach((code, i) => writeFileSync(join(dir, `docs-${i + 1}.ts`), code));
    const config = { compilerOptions: { target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', lib: ['es2023', 'dom'], types: ['node'], strict: true, skipLibCheck: true, outDir: 'out', rootDir: 'examples' }, include: ['examples'] };
    writeFileSync(join(project, 'tsconfig.examples.json'), JSON.stringify(config));
    const compiled = await run(tsc, ['-p', 'tsconfig.examples.json'], project);
    expect(compiled.status, compiled.output).toBe(0);

    const lecture = await run(process.execPath, ['out/lecture.js'], project, { ADJOINT_URL: server.url });
    expect(lecture.status, lecture.output).toBe(0);
    expect(lecture.output).toContain('finite differences agree: true');
    expect(lecture.output).toContain('over 100000 elements is x: true');
    expect(lecture.output).toMatch(/refused: parse_error at line 1, column 4/);
    for (const [i, code] of examples.entries()) {
      const { status, output } = await run(process.execPath, [`out/docs-${i + 1}.js`], project, { ADJOINT_URL: server.url });
      expect(status, `docs/clients.md, TypeScript example ${i + 1}:\n${code}\n${output}`).toBe(0);
    }
  });
});
