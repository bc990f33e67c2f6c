// The peers twill is measured against (flanneld, flannel's CNI plugin, the reference plugins),
// built from pinned Go modules by bench/peers/build.sh into the cache outside the clone.
// scripts/bench.sh builds them once and exports TWILL_PEERS_BIN; a benchmark run on its own
// builds (or finds) them here.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

let cached: string | undefined;

/** The directory holding flanneld, flannel, bridge, host-local and portmap. */
export function peersBin(): string {
  if (cached) return cached;
  const env = process.env.TWILL_PEERS_BIN;
  if (env && existsSync(join(env, 'flanneld'))) return (cached = env);
  const script = join(process.cwd(), 'bench', 'peers', 'build.sh');
  const out = execFileSync('bash', [script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n');
  return (cached = out[out.length - 1]!);
}
