// Where the repository is, whether the harness runs from source (vitest) or compiled (dist/).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'twill') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the twill repository root above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

export const REPO_ROOT = findRoot();
export const TWILLD_BIN = join(REPO_ROOT, 'bin', 'twilld.js');
export const AGENT_MAIN = join(REPO_ROOT, 'dist', 'agent', 'main.js');
export const CNI_BIN = join(REPO_ROOT, 'dist', 'cni', 'twill');
