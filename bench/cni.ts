// CNI plugin benchmark: dist/cni/twill against Debian's reference `bridge` + `host-local`
// (/usr/lib/cni), in the same run, on the same subnet, each plugin in its own fresh "host" netns
// entered with `nsenter --net` (so neither touches the machine's root netns). Both are invoked
// exactly as a runtime does (fork+exec, CNI_* env, config on stdin); the fork/exec + nsenter
// cost is measured separately and printed, it is in both columns alike.
//   - start-up: VERSION
//   - sequential ADD then DEL of N pods, twill and reference interleaved pod by pod so machine
//     noise hits both alike: p50 / p95 (DEL carries the ADD result as prevResult and the pod's
//     netns, as kubelet/containerd do through libcni's cache)
//   - burst: 20 concurrent ADDs, then 20 concurrent DELs: wall time (median of R rounds; the side
//     that goes first alternates between rounds)
//   - CPU per call (user + system, the plugin and every process it runs, from the children's
//     times in /proc/self/stat, minus the same for a bare nsenter): a burst on 2 cores is bound
//     by it, so it tells what the burst rows will do
// Goals (issue 3): ADD p50 <= 2x the reference, burst <= 1.0x, DEL p50 <= 1.0x.
//
// Usage (root): npm run build && node dist/bench/cni.js [--pods 100] [--burst 20] [--rounds 3]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cniExec, DEFAULT_PLUGIN, type CniCmd, type CniExecResult } from '../test/util/pods.js';
import { fmtMs, quantile, table } from './lib/report.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const PODS = Number(flag('pods', '100'));
const BURST = Number(flag('burst', '20'));
const ROUNDS = Number(flag('rounds', '3'));
const CPU_PODS = 40;
const REF_DIR = '/usr/lib/cni';
const PREFIX = `twcb${process.pid.toString(36)}`;
const live = new Set<string>();

type Kind = 'twill' | 'ref';

interface Side {
  kind: Kind;
  host: string;          // netns name
  plugin: string;
  conf: Record<string, unknown>;
  path: string;          // CNI_PATH
}

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

function netnsAdd(name: string): void {
  ip('netns', 'add', name);
  live.add(name);
}

function cleanup(): void {
  for (const ns of [...live]) {
    try { ip('netns', 'del', ns); } catch { /* gone */ }
    live.delete(ns);
  }
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { cleanup(); process.exit(130); });

/** ADD results by pod: DEL gets them as prevResult, as libcni's result cache does for a runtime. */
const results = new Map<string, unknown>();

async function timed(side: Side, cmd: CniCmd, pod: string, i: number): Promise<number> {
  const conf = cmd === 'DEL' && results.has(pod) ? { ...side.conf, prevResult: results.get(pod) } : side.conf;
  const t0 = performance.now();
  const r: CniExecResult = await cniExec(cmd, conf, {
    containerId: `${side.kind}-${pod}`, netns: `/var/run/netns/${pod}`, ifname: 'eth0', path: side.path,
  }, { plugin: side.plugin, hostNetns: side.host, via: 'nsenter' });
  const ms = performance.now() - t0;
  if (r.code !== 0) throw new Error(`${side.kind} ${cmd} #${i} failed (exit ${r.code}): ${r.raw} ${r.stderr}`);
  if (cmd === 'ADD') results.set(pod, r.stdout);
  if (cmd === 'DEL') results.delete(pod);
  return ms;
}

async function spawnBaseline(host: string, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await cniExec('VERSION', {}, {}, { plugin: '/bin/true', hostNetns: host, via: 'nsenter' });
    out.push(performance.now() - t0);
  }
  return out;
}

/**
 * CPU (ms) used so far by this process's reaped children, user + system: fields 16-17 of
 * /proc/self/stat, in clock ticks (100 per second on Linux x86_64/arm64: 10 ms resolution, so
 * phases are long enough to average it out). The command name (field 2) may hold spaces.
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;   // fields 16, 17 counted from field 3
}

/** CPU per call of `n` sequential ADDs, then DELs, of fresh pods (netns made before the clock starts). */
async function cpuPerCall(side: Side, n: number, tag: string): Promise<{ add: number; del: number }> {
  const pods = Array.from({ length: n }, (_, i) => `${PREFIX}${side.kind[0]}${tag}${i}`);
  for (const p of pods) netnsAdd(p);
  let t0 = childrenCpuMs();
  for (const [i, p] of pods.entries()) await timed(side, 'ADD', p, i);
  const add = (childrenCpuMs() - t0) / n;
  t0 = childrenCpuMs();
  for (const [i, p] of pods.entries()) await timed(side, 'DEL', p, i);
  return { add, del: (childrenCpuMs() - t0) / n };
}

async function spawnCpu(host: string, n: number): Promise<number> {
  const t0 = childrenCpuMs();
  await spawnBaseline(host, n);
  return (childrenCpuMs() - t0) / n;
}

function sides(dir: string): Side[] {
  const subnetFile = join(dir, 'subnet.env');
  writeFileSync(subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
  return [
    {
      kind: 'twill', host: `${PREFIX}t`, plugin: DEFAULT_PLUGIN, path: '/nonexistent',
      conf: { cniVersion: '1.0.0', name: 'bench', type: 'twill', subnetFile, dataDir: join(dir, 'twill'), bridge: 'cni0' },
    },
    {
      kind: 'ref', host: `${PREFIX}r`, plugin: join(REF_DIR, 'bridge'), path: REF_DIR,
      conf: {
        cniVersion: '1.0.0', name: 'bench', type: 'bridge', bridge: 'cni0', isGateway: true, isDefaultGateway: true,
        hairpinMode: true, mtu: 1450,
        ipam: { type: 'host-local', dataDir: join(dir, 'ref'), ranges: [[{ subnet: '10.244.1.0/24', gateway: '10.244.1.1' }]] },
      },
    },
  ];
}

async function burst(side: Side, pods: string[], round: number): Promise<{ add: number; del: number }> {
  let t0 = performance.now();
  await Promise.all(pods.map((p, i) => timed(side, 'ADD', p, round * 1000 + i)));
  const add = performance.now() - t0;
  t0 = performance.now();
  await Promise.all(pods.map((p, i) => timed(side, 'DEL', p, round * 1000 + i)));
  return { add, del: performance.now() - t0 };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/cni needs root (network namespaces)');
  for (const f of [DEFAULT_PLUGIN, join(REF_DIR, 'bridge'), join(REF_DIR, 'host-local')]) {
    if (!existsSync(f)) throw new Error(`${f} is missing (npm run build; apt-get install containernetworking-plugins)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'twill-bench-cni-'));
  try {
    const [tw, ref] = sides(dir) as [Side, Side];
    for (const s of [tw, ref]) { netnsAdd(s.host); ip('-n', s.host, 'link', 'set', 'lo', 'up'); }
    const podsOf = (k: Kind, n: number, tag: string) => Array.from({ length: n }, (_, i) => `${PREFIX}${k[0]}${tag}${i}`);
    const seq = { twill: podsOf('twill', PODS, 's'), ref: podsOf('ref', PODS, 's') };
    for (const p of [...seq.twill, ...seq.ref]) netnsAdd(p);

    const spawn = await spawnBaseline(tw.host, 30);
    const ver: Record<Kind, number[]> = { twill: [], ref: [] };
    for (let i = 0; i < 30; i++) for (const s of [tw, ref]) ver[s.kind].push(await timed(s, 'VERSION', 'x', i));
    // Warm-up: first ADD creates the bridge on each side (not counted).
    const add: Record<Kind, number[]> = { twill: [], ref: [] };
    const del: Record<Kind, number[]> = { twill: [], ref: [] };
    for (let i = 0; i < PODS; i++) for (const s of [tw, ref]) add[s.kind].push(await timed(s, 'ADD', seq[s.kind][i]!, i));
    for (let i = 0; i < PODS; i++) for (const s of [tw, ref]) del[s.kind].push(await timed(s, 'DEL', seq[s.kind][i]!, i));

    const bursts: Record<Kind, { add: number; del: number }[]> = { twill: [], ref: [] };
    for (let r = 0; r < ROUNDS; r++) {
      // Alternate who goes first: a burst leaves kernel clean-up (RCU callbacks, netns teardown
      // work) running into whatever follows it.
      for (const s of r % 2 === 0 ? [tw, ref] : [ref, tw]) {
        const pods = podsOf(s.kind, BURST, `b${r}x`);
        for (const p of pods) netnsAdd(p);
        bursts[s.kind].push(await burst(s, pods, r));
      }
    }
    // CPU: two blocks of 40 pods per side, alternating sides, plus the bare nsenter's share.
    const cpu: Record<Kind, { add: number; del: number }[]> = { twill: [], ref: [] };
    const spawnCpuMs: number[] = [];
    for (let b = 0; b < 2; b++) {
      spawnCpuMs.push(await spawnCpu(tw.host, CPU_PODS));
      for (const s of b % 2 === 0 ? [tw, ref] : [ref, tw]) cpu[s.kind].push(await cpuPerCall(s, CPU_PODS, `c${b}x`));
    }
    report(spawn, ver, add, del, bursts, { cpu, spawn: spawnCpuMs.reduce((a, x) => a + x, 0) / spawnCpuMs.length });
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(spawn: number[], ver: Record<Kind, number[]>, add: Record<Kind, number[]>, del: Record<Kind, number[]>,
  bursts: Record<Kind, { add: number; del: number }[]>,
  cpu: { cpu: Record<Kind, { add: number; del: number }[]>; spawn: number }): void {
  const med = (xs: number[]) => quantile(xs, 0.5);
  const row = (name: string, t: number, r: number, goal = ''): string[] => [name, fmtMs(t), fmtMs(r), `${(t / r).toFixed(2)}x`, goal];
  const rows = [
    row('start-up (VERSION) p50', med(ver.twill), med(ver.ref)),
    row(`ADD p50 (${PODS} pods, sequential)`, med(add.twill), med(add.ref), '<= 2.0x'),
    row(`ADD p95`, quantile(add.twill, 0.95), quantile(add.ref, 0.95)),
    row(`DEL p50 (${PODS} pods, sequential)`, med(del.twill), med(del.ref), '<= 1.0x'),
    row(`DEL p95`, quantile(del.twill, 0.95), quantile(del.ref, 0.95)),
    row(`burst: ${BURST} concurrent ADDs, wall (median of ${ROUNDS})`, med(bursts.twill.map((b) => b.add)), med(bursts.ref.map((b) => b.add)), '<= 1.0x'),
    row(`burst: ${BURST} concurrent DELs, wall (median of ${ROUNDS})`, med(bursts.twill.map((b) => b.del)), med(bursts.ref.map((b) => b.del)), '<= 1.0x'),
    ...(['add', 'del'] as const).map((k) => {
      const per = (kind: Kind) => cpu.cpu[kind].reduce((a, x) => a + x[k], 0) / cpu.cpu[kind].length - cpu.spawn;
      return row(`CPU per ${k.toUpperCase()}, user+sys (${2 * CPU_PODS} sequential)`, per('twill'), per('ref'));
    }),
  ];
  console.log(`\nCNI plugin: twill (dist/cni/twill) vs reference bridge + host-local (${REF_DIR}), same subnet 10.244.1.0/24`);
  console.log(table(['metric', 'twill', 'bridge+host-local', 'ratio', 'goal'], rows));
  console.log(`(every time includes fork+exec via nsenter: /bin/true costs p50 ${fmtMs(med(spawn))} here; the CPU rows`
    + ` have the bare nsenter's ${fmtMs(cpu.spawn)} of CPU taken out, and resolve 10 ms over ${CPU_PODS} calls)`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  cleanup();
  process.exit(1);
});
