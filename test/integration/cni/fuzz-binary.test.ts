// A few hundred mutated invocations through the BUILT executable, exactly as a runtime calls it
// (CNI_* env, stdin, stdout), inside a test netns standing in for the host: the process never
// crashes (no signal, no stack trace), always answers with a result or a spec error object with
// a known code, and the IPAM store only ever holds well-formed records.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { DEFAULT_PLUGIN, ensurePluginBuilt } from '../../util/pods.js';
import { seeded } from '../../util/rng.js';

const ROUNDS = 300;
const KNOWN_CODES = new Set([1, 2, 3, 4, 5, 6, 7, 11, 50, 51, 100, 101, 102, 999]);
const WEIRD: unknown[] = [null, true, 0, -1, 1.5, '', 'x'.repeat(3000), '../../etc', '\u0000', [], {}, '9.9.9', '1.1.0', 65536];

function run(hostNs: string, env: Record<string, string>, stdin: string): Promise<{ code: number | null; signal: string | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn('ip', ['netns', 'exec', hostNs, DEFAULT_PLUGIN], { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
    let out = '', err = '';
    p.stdout.on('data', (d: Buffer) => { out += d; });
    p.stderr.on('data', (d: Buffer) => { err += d; });
    p.stdin.on('error', () => undefined);
    p.stdin.end(stdin);
    p.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

describeRoot('CNI fuzz through the executable', () => {
  const prefix = uniquePrefix('tf');
  const hostNs = `${prefix}h`;
  const pods = [`${prefix}p0`, `${prefix}p1`];
  let dir = '';
  beforeAll(async () => {
    await ensurePluginBuilt();
    dir = mkdtempSync(join(tmpdir(), 'twill-fuzzbin-'));
    for (const n of [hostNs, ...pods]) execFileSync('ip', ['netns', 'add', n]);
    execFileSync('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up']);
    writeFileSync(join(dir, 'subnet.env'), 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  }, 120_000);
  afterAll(() => {
    for (const n of [hostNs, ...pods]) execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  it(`answers ${ROUNDS} mutated invocations with results or spec errors, never a crash`, async () => {
    const rand = seeded(0x7e11);
    const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
    const dataDir = join(dir, 'store');
    for (let i = 0; i < ROUNDS; i++) {
      const env: Record<string, string> = {
        CNI_COMMAND: rand() < 0.05 ? pick(['BOGUS', '', 'add']) : pick(['ADD', 'ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION']),
        CNI_CONTAINERID: `c${Math.floor(rand() * 10)}`, CNI_IFNAME: pick(['eth0', 'eth1']),
        CNI_NETNS: `/var/run/netns/${pick([...pods, `${prefix}gone`])}`, CNI_PATH: '/opt/cni/bin',
      };
      if (rand() < 0.1) delete env[pick(Object.keys(env))];
      const conf: Record<string, unknown> = { cniVersion: pick(['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']), name: 'cbr0', type: 'twill', bridge: `${prefix}br`, subnetFile: join(dir, 'subnet.env'), dataDir };
      for (let m = Math.floor(rand() * 3); m > 0; m--) {
        const key = pick(['cniVersion', 'name', 'bridge', 'mtu', 'hairpinMode', 'isDefaultGateway', 'dns', 'prevResult', 'ipam', 'runtimeConfig', 'cni.dev/valid-attachments']);
        conf[key] = pick(WEIRD);
        if (key === 'name' && typeof conf[key] === 'string') conf[key] = 'cbr0';
        if (key === 'bridge' && typeof conf[key] === 'string') conf[key] = `${prefix}br`;   // never a real host bridge
      }
      let stdin = JSON.stringify(conf);
      if (rand() < 0.2) {   // mangle the bytes, but never so that dataDir/subnetFile could escape the tmp dir
        const at = Math.floor(rand() * stdin.length);
        const mangled = rand() < 0.5 ? stdin.slice(0, at) : stdin.slice(0, at) + String.fromCharCode(Math.floor(rand() * 128)) + stdin.slice(at + 1);
        try { const v = JSON.parse(mangled) as Record<string, unknown>; if (v.dataDir === dataDir) stdin = mangled; } catch { stdin = mangled; }
      }
      const r = await run(hostNs, env, stdin);
      const ctx = `round ${i}: env=${JSON.stringify(env)} stdin=${stdin.slice(0, 200)} → code=${r.code} signal=${r.signal} out=${r.out.slice(0, 200)} err=${r.err.slice(0, 200)}`;
      expect(r.signal, ctx).toBeNull();
      expect(r.err, ctx).not.toMatch(/at .+:\d+:\d+|panic|Segmentation/);
      if (r.code === 0) {
        if (r.out.trim()) expect(() => JSON.parse(r.out), ctx).not.toThrow();
      } else {
        expect(r.code, ctx).toBe(1);
        const e = JSON.parse(r.out) as { code: number; msg: string };
        expect(KNOWN_CODES.has(e.code) && typeof e.msg === 'string' && e.msg.length > 0, ctx).toBe(true);
      }
      const store = join(dataDir, 'cbr0');
      for (const f of existsSync(store) ? readdirSync(store) : []) {
        if (f === 'lock' || f === 'last_reserved_ip.0') continue;
        expect(f, ctx).toMatch(/^10\.244\.1\.\d{1,3}$/);
        expect(readFileSync(join(store, f), 'utf8'), ctx).toMatch(/^c\d\r\neth[01]$/);
      }
      if (r.code === 0 && env.CNI_COMMAND === 'ADD') {   // the runtime tears the sandbox down before reusing it
        const ns = env.CNI_NETNS!.split('/').pop()!;
        execFileSync('ip', ['-n', ns, 'link', 'del', env.CNI_IFNAME!], { stdio: 'ignore' });
      }
    }
  }, 240_000);
});
