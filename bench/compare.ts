// `npm run bench:compare`: the engine against PyTorch (float64, CPU, one thread) on the same three
// functions and the same inputs, in the same run, timed the same way (value and value+gradient
// alternately, medians). Needs Debian's python3-torch; without it, says so and exits 0.
// A baseline for the engine's performance work, not a test.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineCases, measureEngine } from './engine.js';

const PYTHON = process.env.TORCH_PYTHON ?? '/usr/bin/python3';
const budgetSeconds = Number(process.env.BENCH_BUDGET_SECONDS ?? 3);

function fmt(ms: number): string {
  return ms < 0.1 ? `${(ms * 1000).toFixed(2)} µs` : `${ms.toFixed(3)} ms`;
}

function main(): void {
  if (!existsSync(PYTHON)) {
    console.log(`${PYTHON} not found: install python3-torch (apt-get install -y python3-torch) to compare with PyTorch`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'adjoint-bench-'));
  const casesFile = join(dir, 'cases.json');
  writeFileSync(casesFile, JSON.stringify(engineCases()));
  let torch: { torch: string; results: Record<string, { valueMs: number; gradMs: number; value: number }> };
  try {
    const script = new URL('./torch_compare.py', import.meta.url).pathname;
    torch = JSON.parse(execFileSync(PYTHON, [script, casesFile, String(budgetSeconds)], { encoding: 'utf8' }));
  } catch (e) {
    console.log(`PyTorch is not usable here (${(e as Error).message.split('\n')[0]}): install python3-torch to compare`);
    return;
  }
  const ours = measureEngine(budgetSeconds * 500);
  console.log(`# Adjoint against PyTorch ${torch.torch} (float64, CPU, one thread), same inputs, same run\n`);
  console.log('| function | Adjoint value | PyTorch value | Adjoint value+grad | PyTorch value+grad | value+grad time, Adjoint / PyTorch |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const f of ours) {
    const t = torch.results[f.name]!;
    console.log(`| ${f.name} | ${fmt(f.valueMs)} | ${fmt(t.valueMs)} | ${fmt(f.gradMs)} | ${fmt(t.gradMs)} | ${(f.gradMs / t.gradMs).toFixed(2)} |`);
  }
}

main();
