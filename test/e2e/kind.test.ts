// Runs the kind end-to-end script (test/e2e/kind/run.sh) where a Docker daemon, kind and kubectl
// exist; elsewhere the real run is skipped with the reason, and what is checked is that the
// script parses and skips cleanly (exit 0, "SKIP: …") instead of failing.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./kind/run.sh', import.meta.url));
const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore', timeout: 20_000 }).status === 0;
const missing = !has('docker', ['info']) ? 'a Docker daemon (docker info failed)'
  : !has('kind', ['version']) ? 'kind on PATH'
    : !has('kubectl', ['version', '--client']) ? 'kubectl on PATH' : undefined;

describe('kind e2e script', () => {
  it('is valid bash', () => {
    const r = spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.runIf(missing !== undefined)('skips cleanly with a clear message where its tools are missing', () => {
    const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^SKIP: kind e2e needs /m);
  });
});

const title = 'kind cluster: install, cross-node pod ping, DaemonSet restart keeps subnets';
if (missing) {
  describe.skip(`${title} [skipped: kind e2e needs ${missing}]`, () => { it('runs test/e2e/kind/run.sh', () => undefined); });
} else {
  describe(title, () => {
    it('test/e2e/kind/run.sh passes', () => {
      const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30 * 60_000, maxBuffer: 64 << 20 });
      if (r.status !== 0) console.error(r.stdout.slice(-20_000), r.stderr.slice(-20_000));
      expect(r.stdout).toContain('PASS: kind e2e');
      expect(r.status).toBe(0);
    }, 30 * 60_000);
  });
}
