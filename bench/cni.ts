// CNI benchmark (issue 17, row 5): twill's deployed chain against flannel's, plus the bare
// bridge + host-local floor, in the same run, each side in its own fresh "host" netns entered
// with `nsenter --net` (so nothing touches the machine's root netns), on the same node subnet.
//   - twill's chain: deploy/configmap.yaml's cni-conf.json — twill (dist/cni/twill), then portmap,
//     at CNI 1.1.0 (libcni >= 1.2 picks it from the list's cniVersions)
//   - flannel's chain: kube-flannel.yml's cni-conf.json — the flannel plugin (subnet.env →
//     delegates to bridge + host-local), then portmap. The plugin is containernetworking/plugins
//     v0.9.1's (flannel-io/cni-plugin is not served by the module proxy: bench/peers/versions.env),
//     which speaks CNI up to 0.4.0, so the list runs at 0.4.0 (kube-flannel.yml says 1.0.0, which
//     flannel-io's v1.x plugin accepts). Its subnet file and scratch dir, and host-local's store,
//     are private to the run (the plugin's `subnetFile`/`dataDir`, a top-level `ipam.dataDir`,
//     which the plugin hands on to host-local; nothing else of the delegate changes).
//   - the floor: bare bridge + host-local with the configuration flannel delegates, one exec.
// bridge, host-local and portmap are v1.10.0 built from source (bench/lib/peers.ts), the same
// portmap binary on both chains. Chains run as libcni runs them (bench/lib/cni-chain.ts): ADD
// plugin by plugin with the previous result as prevResult, DEL in reverse with the cached
// result, the same CNI_* environment for every plugin.
// Both subnet files say FLANNEL_IPMASQ=true, as flanneld --ip-masq (kube-flannel.yml) writes it:
// so flannel's delegate gets ipMasq=false, as on a real node.
// Port mappings: `--port-mappings 0,1` (default) runs the whole benchmark once per entry, with
// that many hostPort mappings per pod in runtimeConfig, passed to both chains alike (libcni hands
// them to portmap, which declares the capability). portmap v1.10.0 uses its iptables backend
// here (its default when an `iptables` binary works: iptables-nft 1.8.9) and probes it on every
// call (2 `iptables` runs), mappings or not; 0 mappings (most pods) is otherwise a pass-through,
// 1 mapping (a hostPort pod) adds ≈20 `iptables` runs per call on both sides.
// Rows:
//   - start-up: VERSION of each chain's first plugin
//   - sequential ADD then DEL of N pods, the three sides interleaved pod by pod (the order
//     rotating) so machine noise hits all alike: p50 / p95
//   - burst: 20 concurrent ADDs, then 20 concurrent DELs: wall time (median of R rounds; the
//     side that goes first rotates between rounds)
//   - CPU per call (user + system, every process of the chain, from the children's times in
//     /proc/self/stat, minus a bare nsenter's per top-level exec)
//   - the same sequential calls split plugin by plugin (wall p50, CPU mean), and the budget the
//     goal leaves twill's own plugin given what portmap costs
// Goals (issue 17): twill's chain <= 0.8x flannel's on every row; the floor has no goal.
//
// Usage (root): npm run build && node dist/bench/cni.js [--pods 100] [--burst 20] [--rounds 3]
//   [--port-mappings 0,1]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cniExec, DEFAULT_PLUGIN } from '../test/util/pods.js';
import { chainAdd, chainDel, makeChain, type Attachment, type Chain } from './lib/cni-chain.js';
import { peersBin } from './lib/peers.js';
import { fmtMs, quantile, table } from './lib/report.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const PODS = Number(flag('pods', '100'));
const BURST = Number(flag('burst', '20'));
const ROUNDS = Number(flag('rounds', '3'));
/** The variants to run, each a whole run of its own: hostPort mappings per pod. */
const VARIANTS = flag('port-mappings', '0,1').split(',').map(Number);
let mappings = 0;   // the variant running
const CPU_PODS = 40;
const PREFIX = `twcb${process.pid.toString(36)}`;
const live = new Set<string>();

const KINDS = ['twill', 'flannel', 'floor'] as const;
type Kind = typeof KINDS[number];
const byKind = <T>(f: () => T): Record<Kind, T> => ({ twill: f(), flannel: f(), floor: f() });

interface Side {
  kind: Kind;
  chain: Chain;
  execs: number;         // top-level execs per call (each one nsenter)
  ports: boolean;        // gets the port mappings (its list has portmap)
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

/** The attachment and the cached ADD result of each live pod (libcni's result cache). */
const attached = new Map<string, { att: Attachment; result: unknown }>();
let nextPort = 0;

function attachment(side: Side, pod: string): Attachment {
  const ports = side.ports ? Array.from({ length: mappings }, () => ({
    hostPort: 10000 + (nextPort++ % 50000), containerPort: 8080, protocol: 'tcp',
  })) : [];
  return {
    containerId: `${side.kind}-${pod}`, netns: `/var/run/netns/${pod}`, ifname: 'eth0',
    ...(ports.length > 0 ? { capabilityArgs: { portMappings: ports } } : {}),
  };
}

/**
 * Each plugin's wall time (ms) per call of the sequential phase, and its CPU per call of the CPU
 * phase, by side, command and plugin.
 */
const perPluginNew = () => ({ ADD: byKind(() => [] as number[][]), DEL: byKind(() => [] as number[][]) });
let perPlugin = perPluginNew();
let perPluginCpu = perPluginNew();

async function timed(side: Side, cmd: 'ADD' | 'DEL', pod: string, record: 'wall' | 'cpu' | false = false): Promise<number> {
  const t0 = performance.now();
  const meter = record === 'cpu' ? childrenCpuMs : undefined;
  let r: { ms: number[]; metered: number[] };
  if (cmd === 'ADD') {
    const att = attachment(side, pod);
    const a = await chainAdd(side.chain, att, meter);
    attached.set(pod, { att, result: a.result });
    r = a;
  } else {
    const a = attached.get(pod);
    if (!a) throw new Error(`DEL of ${pod}, never added`);
    r = await chainDel(side.chain, a.att, a.result, meter);
    attached.delete(pod);
  }
  const total = performance.now() - t0;
  if (record === 'wall') perPlugin[cmd][side.kind].push(r.ms);
  if (record === 'cpu') perPluginCpu[cmd][side.kind].push(r.metered);
  return total;
}

async function version(side: Side): Promise<number> {
  const t0 = performance.now();
  const r = await cniExec('VERSION', { cniVersion: side.chain.conf.cniVersion }, {},
    { plugin: side.chain.bins[0]!, hostNetns: side.chain.host, via: 'nsenter' });
  if (r.code !== 0) throw new Error(`${side.kind} VERSION failed: ${r.raw} ${r.stderr}`);
  return performance.now() - t0;
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
 * A plugin's own children (bridge → host-local, portmap → iptables) are in it once reaped.
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) * 10;   // fields 16, 17 counted from field 3
}

const LETTER: Record<Kind, string> = { twill: 't', flannel: 'f', floor: 'r' };
const podsOf = (k: Kind, n: number, tag: string) => Array.from({ length: n }, (_, i) => `${PREFIX}${mappings}${LETTER[k]}${tag}${i}`);

/** CPU per call of `n` sequential ADDs, then DELs, of fresh pods (netns made before the clock starts). */
async function cpuPerCall(side: Side, n: number, tag: string): Promise<{ add: number; del: number }> {
  const pods = podsOf(side.kind, n, tag);
  for (const p of pods) netnsAdd(p);
  let t0 = childrenCpuMs();
  for (const p of pods) await timed(side, 'ADD', p, 'cpu');
  const add = (childrenCpuMs() - t0) / n;
  t0 = childrenCpuMs();
  for (const p of pods) await timed(side, 'DEL', p, 'cpu');
  return { add, del: (childrenCpuMs() - t0) / n };
}

async function spawnCpu(host: string, n: number): Promise<number> {
  const t0 = childrenCpuMs();
  await spawnBaseline(host, n);
  return (childrenCpuMs() - t0) / n;
}

// The conflist says cniVersion 1.0.0 and cniVersions up to 1.1.0; libcni 1.2 and later (what
// containerd 2 and CRI-O run) pick the highest of cniVersions they know, 1.1.0.
const TWILL_CNI_VERSION = '1.1.0';
const SUBNET_ENV = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

function sides(dir: string): Side[] {
  const peers = peersBin();
  const portmap = { type: 'portmap', capabilities: { portMappings: true } };
  const twillSubnet = join(dir, 'twill-subnet.env');
  const flannelSubnet = join(dir, 'flannel-subnet.env');
  writeFileSync(twillSubnet, SUBNET_ENV);
  writeFileSync(flannelSubnet, SUBNET_ENV);
  // deploy/configmap.yaml's cni-conf.json with the node paths made private.
  const twill = makeChain({
    name: 'cbr0', cniVersion: TWILL_CNI_VERSION, plugins: [
      { type: 'twill', bridge: 'cni0', subnetFile: twillSubnet, dataDir: join(dir, 'twill'), hairpinMode: true, isDefaultGateway: true },
      portmap,
    ],
  }, [dirname(DEFAULT_PLUGIN), peers], `${PREFIX}${mappings}t`);
  // kube-flannel.yml's cni-conf.json with the node paths made private.
  const flannel = makeChain({
    name: 'cbr0', cniVersion: '0.4.0', plugins: [
      {
        type: 'flannel', subnetFile: flannelSubnet, dataDir: join(dir, 'flannel'),
        ipam: { dataDir: join(dir, 'flannel-ipam') },
        delegate: { hairpinMode: true, isDefaultGateway: true },
      },
      portmap,
    ],
  }, [peers], `${PREFIX}${mappings}f`);
  // What the flannel plugin hands bridge for this subnet file (its scratch file shows it).
  const floor = makeChain({
    name: 'cbr0', cniVersion: '1.0.0', plugins: [{
      type: 'bridge', isGateway: true, isDefaultGateway: true, hairpinMode: true, ipMasq: false, mtu: 1450,
      ipam: {
        type: 'host-local', dataDir: join(dir, 'floor-ipam'),
        ranges: [[{ subnet: '10.244.1.0/24' }]], routes: [{ dst: '10.244.0.0/16' }],
      },
    }],
  }, [peers], `${PREFIX}${mappings}r`);
  return [
    { kind: 'twill', chain: twill, execs: 2, ports: true },
    { kind: 'flannel', chain: flannel, execs: 2, ports: true },
    { kind: 'floor', chain: floor, execs: 1, ports: false },
  ];
}

async function burst(side: Side, pods: string[]): Promise<{ add: number; del: number }> {
  let t0 = performance.now();
  await Promise.all(pods.map((p) => timed(side, 'ADD', p)));
  const add = performance.now() - t0;
  t0 = performance.now();
  await Promise.all(pods.map((p) => timed(side, 'DEL', p)));
  return { add, del: performance.now() - t0 };
}

/** The order of the sides for step i: rotates, so none is always first after the others. */
const rotate = <T>(xs: T[], i: number): T[] => xs.map((_, j) => xs[(i + j) % xs.length]!);


async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('bench/cni needs root (network namespaces)');
  if (!existsSync(DEFAULT_PLUGIN)) throw new Error(`${DEFAULT_PLUGIN} is missing (npm run build)`);
  for (const m of VARIANTS) {
    mappings = m;
    perPlugin = perPluginNew();
    perPluginCpu = perPluginNew();
    await variant();
  }
}

async function variant(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'twill-bench-cni-'));
  try {
    const all = sides(dir);
    for (const s of all) { netnsAdd(s.chain.host); ip('-n', s.chain.host, 'link', 'set', 'lo', 'up'); }
    const seq = byKind(() => [] as string[]);
    for (const k of KINDS) seq[k] = podsOf(k, PODS, 's');
    for (const k of KINDS) for (const p of seq[k]) netnsAdd(p);

    const spawn = await spawnBaseline(all[0]!.chain.host, 30);
    const ver = byKind(() => [] as number[]);
    for (let i = 0; i < 30; i++) for (const s of rotate(all, i)) ver[s.kind].push(await version(s));
    // Warm-up: the first ADD of each side creates its bridge (and portmap its chains).
    const add = byKind(() => [] as number[]);
    const del = byKind(() => [] as number[]);
    for (let i = 0; i < PODS; i++) for (const s of rotate(all, i)) add[s.kind].push(await timed(s, 'ADD', seq[s.kind][i]!, 'wall'));
    // portmap did its work on both chains (outside the clock): one DNAT rule per mapping per pod.
    for (const s of all.filter((x) => x.ports)) {
      const nat = execFileSync('ip', ['netns', 'exec', s.chain.host, 'iptables-save', '-t', 'nat'], { encoding: 'utf8' });
      const dnat = nat.split('\n').filter((l) => / -j DNAT --to-destination 10\.244\.1\./.test(l)).length;
      if (dnat !== PODS * mappings) throw new Error(`${s.kind}: ${dnat} DNAT rules after ${PODS} ADDs with ${mappings} mapping(s) each`);
    }
    for (let i = 0; i < PODS; i++) for (const s of rotate(all, i)) del[s.kind].push(await timed(s, 'DEL', seq[s.kind][i]!, 'wall'));

    const bursts = byKind(() => [] as { add: number; del: number }[]);
    for (let r = 0; r < ROUNDS; r++) {
      // Rotate who goes first: a burst leaves kernel clean-up (RCU callbacks, netns teardown
      // work) running into whatever follows it.
      for (const s of rotate(all, r)) {
        const pods = podsOf(s.kind, BURST, `b${r}x`);
        for (const p of pods) netnsAdd(p);
        bursts[s.kind].push(await burst(s, pods));
      }
    }
    // CPU: blocks of 40 pods per side, rotating, plus the bare nsenter's share.
    const cpu = byKind(() => [] as { add: number; del: number }[]);
    const spawnCpuMs: number[] = [];
    for (let b = 0; b < 3; b++) {
      spawnCpuMs.push(await spawnCpu(all[0]!.chain.host, CPU_PODS));
      for (const s of rotate(all, b)) cpu[s.kind].push(await cpuPerCall(s, CPU_PODS, `c${b}x`));
    }
    const nsenterCpu = spawnCpuMs.reduce((a, x) => a + x, 0) / spawnCpuMs.length;
    report(all, spawn, ver, add, del, bursts, cpu, nsenterCpu);
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(all: Side[], spawn: number[], ver: Record<Kind, number[]>, add: Record<Kind, number[]>, del: Record<Kind, number[]>,
  bursts: Record<Kind, { add: number; del: number }[]>, cpu: Record<Kind, { add: number; del: number }[]>, nsenterCpu: number): void {
  const med = (xs: number[]) => quantile(xs, 0.5);
  const row = (name: string, v: Record<Kind, number>, goal = true): string[] => {
    const r = v.twill / v.flannel;
    const ms = (x: number) => (Number.isNaN(x) ? '—' : fmtMs(x));
    const f = v.twill / v.floor;
    // Two decimals, or three where two would round onto the goal's line.
    const rs = r.toFixed(2) === '0.80' ? r.toFixed(3) : r.toFixed(2);
    return [name, ms(v.twill), ms(v.flannel), ms(v.floor), `${rs}x${goal ? (r <= 0.8 ? ' ✅' : ' ❌') : ''}`,
      Number.isNaN(f) ? '—' : `${f.toFixed(2)}x`];
  };
  const each = (f: (k: Kind) => number): Record<Kind, number> => ({ twill: f('twill'), flannel: f('flannel'), floor: f('floor') });
  const execs = Object.fromEntries(all.map((s) => [s.kind, s.execs])) as Record<Kind, number>;
  const rows = [
    row('start-up (first plugin VERSION) p50', each((k) => med(ver[k])), false),
    row(`ADD p50 (${PODS} pods, sequential)`, each((k) => med(add[k]))),
    row('ADD p95', each((k) => quantile(add[k], 0.95))),
    row(`DEL p50 (${PODS} pods, sequential)`, each((k) => med(del[k]))),
    row('DEL p95', each((k) => quantile(del[k], 0.95))),
    ...(['ADD', 'DEL'] as const).flatMap((c) => [0, 1].map((i) => {
      const p50 = (k: Kind) => { const xs = perPlugin[c][k].map((m) => m[i] ?? NaN).filter((x) => !Number.isNaN(x)); return xs.length ? med(xs) : NaN; };
      return row(`  ${c} p50 of the ${i === 0 ? 'first plugin (twill; flannel → bridge → host-local; bridge → host-local)' : 'second plugin (portmap)'}`,
        each(p50), false);
    })),
    row(`burst: ${BURST} concurrent ADDs, wall (median of ${ROUNDS})`, each((k) => med(bursts[k].map((b) => b.add)))),
    row(`burst: ${BURST} concurrent DELs, wall (median of ${ROUNDS})`, each((k) => med(bursts[k].map((b) => b.del)))),
    ...(['add', 'del'] as const).map((c) => row(`CPU per ${c.toUpperCase()}, user+sys (${cpu.twill.length * CPU_PODS} sequential)`,
      each((k) => cpu[k].reduce((a, x) => a + x[c], 0) / cpu[k].length - execs[k] * nsenterCpu))),
    // The same calls metered plugin by plugin (a mean of 10 ms ticks over every call).
    ...(['ADD', 'DEL'] as const).flatMap((c) => [0, 1].map((i) => {
      const mean = (k: Kind) => {
        const xs = perPluginCpu[c][k].map((m) => m[i] ?? NaN).filter((x) => !Number.isNaN(x));
        return xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length - nsenterCpu : NaN;
      };
      return row(`  CPU per ${c} of the ${i === 0 ? 'first plugin' : 'second plugin (portmap)'}`, each(mean), false);
    })),
  ];
  console.log(`\nCNI chains, same node subnet 10.244.1.0/24, ${mappings} hostPort mapping(s) per pod (runtimeConfig.portMappings) to portmap on both chains:`
    + ` twill chain = twill + portmap (CNI ${TWILL_CNI_VERSION}),`
    + ' flannel chain = flannel (containernetworking/plugins v0.9.1) → bridge + host-local,'
    + ' then portmap (CNI 0.4.0), floor = bridge + host-local alone (CNI 1.0.0); bridge, host-local, portmap v1.10.0');
  console.log(table(['metric', 'twill chain', 'flannel chain', 'floor', 'twill/flannel (goal <= 0.8x)', 'twill/floor'], rows));
  console.log(`(every plugin the runtime execs runs through nsenter: /bin/true costs p50 ${fmtMs(med(spawn))} here, paid twice`
    + ` per chain call and once per floor call; the CPU rows have the bare nsenter's ${fmtMs(nsenterCpu)} per exec taken out,`
    + ` and resolve 10 ms over ${CPU_PODS} calls)`);
  // What the goal leaves twill's own plugin, given what portmap costs on each chain:
  // twill + portmap_t <= 0.8 (flannel part + portmap_f).
  const budget = (label: string, parts: Record<Kind, number[]>) => {
    const [t0, t1] = parts.twill as [number, number];
    const [f0, f1] = parts.flannel as [number, number];
    return `${label}: twill ${fmtMs(t0)}, allowed ${fmtMs(0.8 * (f0 + f1) - t1)} (flannel's part ${fmtMs(f0)}, portmap ${fmtMs(t1)} / ${fmtMs(f1)})`;
  };
  const p50s = (c: 'ADD' | 'DEL') => each2((k) => [0, 1].map((i) => med(perPlugin[c][k].map((m) => m[i]!))));
  const cpus = (c: 'ADD' | 'DEL') => each2((k) => [0, 1].map((i) => {
    const xs = perPluginCpu[c][k].map((m) => m[i]!);
    return xs.reduce((a, x) => a + x, 0) / xs.length - nsenterCpu;
  }));
  console.log(`What the 0.8x goal leaves twill's own plugin: ${budget('ADD p50', p50s('ADD'))}; ${budget('DEL p50', p50s('DEL'))};`
    + ` ${budget('CPU per ADD', cpus('ADD'))}; ${budget('CPU per DEL', cpus('DEL'))}`);
}

function each2(f: (k: 'twill' | 'flannel') => number[]): Record<Kind, number[]> {
  return { twill: f('twill'), flannel: f('flannel'), floor: [] };
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  cleanup();
  process.exit(1);
});
