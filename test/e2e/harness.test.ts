// The harness itself, without any agent: the underlay connects every node and the external host,
// etcd answers from every node netns, probes report the real source address, and nothing is left
// behind — by destroy(), and by the exit hooks when a process crashes or is interrupted.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../util/root.js';
import { startCluster, nsRun, run, waitFor, type Cluster } from '../harness/index.js';
import { REPO_ROOT } from '../harness/paths.js';

async function netnsWithPrefix(prefix: string): Promise<string[]> {
  const out = (await run('ip', ['netns', 'list'])).stdout;
  return out.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n.startsWith(prefix));
}

/** Running (a zombie waiting to be reaped counts as gone). */
const alive = (pid: number): boolean => {
  try { return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; }
};

describeRoot('harness: underlay, etcd, probes (no agent)', () => {
  let c: Cluster;
  beforeAll(async () => { c = await startCluster({ nodes: 3, startAgents: false }); });
  afterAll(async () => { await c?.destroy(); });

  it('connects every node to every other node and to the external host on the underlay', async () => {
    const targets = [...c.nodes.map((n) => n.underlayIP), c.external.ip];
    const results = await Promise.all(c.nodes.flatMap((n) => targets.filter((t) => t !== n.underlayIP)
      .map(async (t) => ({ from: n.name, t, r: await c.ping(n.netns, t, { count: 1, waitSec: 2 }) }))));
    for (const { from, t, r } of results) expect(r.ok, `${from} → ${t}: ${r.output}`).toBe(true);
  });

  it('reaches etcd from every node netns and holds the net-conf under <prefix>/config', async () => {
    for (const n of c.nodes) {
      const r = await nsRun(n.netns, 'etcdctl', [`--endpoints=${c.store.endpoint}`, 'get', '/twill.io/network/config', '--print-value-only'], {
        env: { ...process.env, ETCDCTL_API: '3' },
      });
      expect(JSON.parse(r.stdout), n.name).toMatchObject({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1 } });
    }
  });

  it('keeps test addresses out of the root netns', async () => {
    const out = (await run('ip', ['-4', 'addr', 'show'])).stdout;
    expect(out).not.toContain('10.213.0.');
  });

  it('tcpProbe reports the source address the receiver saw', async () => {
    const r = await c.tcpProbe(c.node(1).netns, c.external.ip);
    expect(r.ok, r.error).toBe(true);
    expect(r.seenSource).toBe(c.node(1).underlayIP);
  });

  it('stops and restarts etcd on the same endpoint with the same data', async () => {
    await c.stopEtcd();
    expect(c.store.running()).toBe(false);
    await c.startEtcd();
    const leases = await c.store.leases();
    expect(leases).toEqual([]);
    await c.store.putLease({ subnet: '10.244.177.0/24', publicIP: '10.213.0.77', vtepMAC: '02:00:00:00:00:77', ttlSec: null });
    await c.stopEtcd();
    await c.startEtcd();
    expect((await c.store.leases()).map((l) => [l.subnet, l.publicIP, l.vtepMAC, l.expiring])).toEqual([
      ['10.244.177.0/24', '10.213.0.77', '02:00:00:00:00:77', false],
    ]);
    await c.store.deleteLease('10.244.177.0/24');
  });

  it('destroy() removes every netns and process it created', async () => {
    const d = await startCluster({ nodes: 2, startAgents: false });
    expect(await netnsWithPrefix(d.prefix)).toHaveLength(4);   // switch, 2 nodes, external
    const probe = await d.tcpProbe(d.node(0).netns, d.external.ip);
    expect(probe.ok).toBe(true);
    await d.destroy();
    expect(await netnsWithPrefix(d.prefix)).toEqual([]);
    expect(existsSync(d.workDir)).toBe(false);
  });
});

describeRoot('harness: exit hooks clean up without destroy()', () => {
  let script: string;
  beforeAll(async () => {
    const dir = join(REPO_ROOT, '.tmp', 'harness-selftest');
    mkdirSync(dir, { recursive: true });
    script = join(dir, 'selftest.mjs');
    await build({
      entryPoints: [join(REPO_ROOT, 'test/harness/selftest-main.ts')], outfile: script,
      bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'error',
    });
  });

  for (const how of ['sigint', 'crash', 'exit'] as const) {
    it(`leaves no netns or process behind (${how})`, async () => {
      const child = spawn(process.execPath, [script, how === 'sigint' ? 'wait' : how], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      try {
        const line = await new Promise<string>((resolve, reject) => {
          const t = setInterval(() => {
            const m = /^up (\S+) (\S*)$/m.exec(out);
            if (m) { clearInterval(t); resolve(m[0]); }
          }, 50);
          void exited.then(() => {
            clearInterval(t);
            const m = /^up (\S+) (\S*)$/m.exec(out);    // crash/exit modes may exit before the next poll
            if (m) resolve(m[0]); else reject(new Error(`selftest exited early: ${out}`));
          });
        });
        const [, prefix, pidList] = line.split(' ') as [string, string, string];
        const pids = pidList.split(',').filter(Boolean).map(Number);
        expect(pids.length).toBeGreaterThanOrEqual(2);              // etcd + echo server
        expect(await netnsWithPrefix(prefix)).toHaveLength(4);
        if (how === 'sigint') child.kill('SIGINT');
        await exited;
        expect(await netnsWithPrefix(prefix)).toEqual([]);
        await waitFor('processes to die', async () => pids.filter(alive).length === 0, 3000, 50).catch(() => undefined);
        expect(pids.filter(alive)).toEqual([]);
      } finally {
        // Whatever failed above, never leave the self-test running (SIGINT lets it clean up).
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGINT');
          const t = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(t);
        }
      }
    });
  }
});
