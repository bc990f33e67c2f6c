// What the real-cluster suite needs before a cluster can start: upstream's binaries (build.sh,
// cached by pins) and the OCI archives of every image (images.sh, cached by inputs). Both steps
// are plain scripts so `npm test` can run them before vitest (a cold Kubernetes build must not
// sit inside a test hook) and hand the results over in TWILL_UPSTREAM_BIN / TWILL_IMAGES.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../harness/paths.js';
import { parseImageList, type ImageArchive } from './cluster.js';

export interface Prepared { bin: string; images: ImageArchive[] }

/** Why the suite cannot run here (not root, no Go), or undefined. In CI a missing Go is an error. */
export function clusterSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'the real-cluster suite needs root (network, mount and cgroup namespaces)';
  if (process.env.TWILL_UPSTREAM_BIN) return undefined;
  const go = spawnSync('go', ['version'], { stdio: 'ignore' });
  if (go.status !== 0) {
    const msg = 'no Go toolchain: install Go >= 1.24 (e.g. `apt-get install golang-1.24` or go.dev) so the suite can build Kubernetes from source';
    if (process.env.CI === 'true') throw new Error(`real-cluster suite: ${msg}`);
    return msg;
  }
  return undefined;
}

/** The upstream bin dir: $TWILL_UPSTREAM_BIN, else build.sh's (cached by pins; a cold build is long). */
export function upstreamBinDir(): string {
  return process.env.TWILL_UPSTREAM_BIN ?? lastLine(script('build.sh', []));
}

/** Runs (or reuses) build.sh and images.sh; their progress goes to stderr. */
export function prepare(): Prepared {
  const bin = upstreamBinDir();
  if (!existsSync(join(bin, 'kubelet'))) throw new Error(`upstream binaries missing in ${bin}`);
  const listFile = process.env.TWILL_IMAGES;
  const list = listFile ? readFileSync(listFile, 'utf8') : script('images.sh', [bin]);
  return { bin, images: parseImageList(list) };
}

function script(name: string, args: readonly string[]): string {
  return execFileSync('bash', [join(REPO_ROOT, 'test', 'cluster', name), ...args], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20,
  });
}

function lastLine(text: string): string {
  const l = text.trim().split('\n').pop();
  if (!l) throw new Error('build.sh printed no bin directory');
  return l.trim();
}
