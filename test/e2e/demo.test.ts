// `npm run demo -- --check`, as the README tells people to run it: scripts/demo.sh runs the
// set-up (packages, npm ci, build — not something a test may do) and then execs the demo's node
// entry with the arguments. This test runs that exact exec line from demo.sh, from the repository
// root, and checks what a person would see: exit 0, every pod pair connecting, nothing left behind.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { expect, it } from 'vitest';
import { describeRoot } from '../util/root.js';
import { run } from '../harness/exec.js';
import { REPO_ROOT } from '../harness/paths.js';

const DEMO_TIMEOUT_MS = 200_000;

/** The node entry demo.sh execs after the set-up (`exec node <entry> "$@"`). */
function demoEntry(): string {
  const script = readFileSync(join(REPO_ROOT, 'scripts', 'demo.sh'), 'utf8');
  const m = /^exec node (\S+) "\$@"$/m.exec(script);
  if (!m) throw new Error(`scripts/demo.sh no longer ends in \`exec node <entry> "$@"\`: update this test\n${script}`);
  return m[1]!;
}

function runDemo(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', [demoEntry(), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    // SIGTERM: the demo's exit hook still removes what it created.
    const timer = setTimeout(() => child.kill('SIGTERM'), DEMO_TIMEOUT_MS);
    child.once('error', (err) => { clearTimeout(timer); reject(err); });
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

describeRoot('e2e: npm run demo -- --check', () => {
  it('exits 0, shows every pod pair connecting without NAT, and leaves no network namespace behind', async () => {
    const { code, out } = await runDemo(['--check']);
    expect(code, `demo --check exit code; output:\n${out}`).toBe(0);
    // 3 nodes with one pod each: 6 ordered pairs across nodes, each a ✔ cell in the matrix.
    expect(out).toContain('all 6 pod pairs connect, no NAT');
    expect(out.match(/✔/g)?.length ?? 0, `matrix cells that connect:\n${out}`).toBe(6);
    expect(out, 'no failing pair').not.toContain('✘');
    expect(out).toContain('check passed');
    // Every netns the demo creates starts with its cluster's unique tag, also the name of its log dir.
    const logDir = /logs in (\S+)\n/.exec(out)?.[1];
    expect(logDir, `demo output names its log dir:\n${out}`).toBeDefined();
    const tag = basename(logDir!);
    expect(tag).toMatch(/^tw[0-9a-z]+$/);
    const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${tag}-`));
    expect(left, 'network namespaces the demo left behind').toEqual([]);
  });
});
