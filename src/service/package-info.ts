// The service's name and version, read from package.json. The file is looked for upwards from
// this module, so it is found both from `src/service/` (tsx) and from `dist/src/service/` (built).

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PackageInfo {
  name: string;
  version: string;
}

function findPackageJson(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`package.json not found above ${start}`);
  }
}

function readPackageInfo(): PackageInfo {
  const path = findPackageJson(dirname(fileURLToPath(import.meta.url)));
  const { name, version } = JSON.parse(readFileSync(path, 'utf8')) as Partial<PackageInfo>;
  if (typeof name !== 'string' || typeof version !== 'string') {
    throw new Error(`${path} lacks a name or a version`);
  }
  return { name, version };
}

export const packageInfo: PackageInfo = readPackageInfo();
