// Pod-to-pod TCP throughput across nodes (VXLAN overlay), measured with iperf3 in one run on one
// netns cluster, against two anchors and against flannel itself:
//
//   host → host       the underlay alone (node A's eth0 address to node B's);
//   VXLAN alone       node A → node B's bridge gateway across the VXLAN device: the kernel's
//                     encapsulation and decapsulation with no pod veth and no bridge hop, the floor
//                     any VXLAN overlay pays (pod wiring only adds to it);
//   twill             pods made by twill's CNI plugin (veth + cni0 bridge), twilld programming;
//   routed veth       pods wired by hand on the same twill nodes without the bridge (the pod veth's
//                     host end unbridged in the node netns, a /32 route to the pod, the gateway on
//                     the veth): what twill's pods would cost with the bridge hop removed;
//   bridge, no br_nf  twill's CNI pods with the nodes' bridge-nf-call-iptables off for that run
//                     only: how much of the bridge hop is the bridge netfilter pass;
//   flannel           flanneld v0.28 (etcd mode, the cluster's etcd, prefix /coreos.com/network,
//                     --ip-masq as kube-flannel.yml runs it) on two more nodes on the same switch,
//                     pods from flannel's CNI chain (flannel → bridge + host-local).
//
// RUNS rounds; in each, every path runs once, back to back (interleaved). Throughputs are printed
// as median (min–max); ratios as the median (min–max) of the per-round ratios, so load that comes
// and goes on a shared machine hits both sides of a ratio alike. Every overlay run checks the sending node's VXLAN device counters: the device must
// have carried at least the bytes iperf3 sent, or the run is an error (a path that bypassed the
// overlay would flatter it). twilld runs with --ip-masq as deploy/ installs it, like flanneld.
//
// Twice: with the machine's default congestion control (bbr here) and with cubic. bbr's pacing
// holds host-to-host over veth well below what the path carries, which flatters ratios to it.
//
// That veth underlay is CPU-bound (no wire: every path's ceiling is the sending core). A second
// model of the underlay follows: a token bucket (tbf, 10 Gbit/s on each node uplink) as a NIC's
// line rate, with host → host, twill and flannel again.
//
// Goals (issue 17, row 6): (a) at the line rate, twill pod → pod ≥ 0.93 × host → host;
// (b) on the CPU-bound underlay, twill pod → pod ≥ 0.90 × VXLAN alone; (c) twill ≥ 1.0 × flannel.
//
// Usage: node dist/bench/throughput.js [--seconds 3] [--runs 5] [--wire-gbit 10 (0: skip the model)]
//        [--no-flannel] [--no-wirings]
import { existsSync, readFileSync } from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { startCluster, DEFAULT_NET_CONF, type Cluster } from '../test/harness/cluster.js';
import { nthAddress } from '../test/harness/ipv4.js';
import { ipJson, nsRun } from '../test/harness/exec.js';
import { readSubnetEnv } from '../test/harness/subnet-env.js';
import { onProcessExit } from '../test/harness/procs.js';
import { CNI_BIN } from '../test/harness/paths.js';
import { deleteNetns } from '../test/harness/underlay.js';
import { table, quantile } from './lib/report.js';
import { FlannelNodes, FLANNEL_DEVICE } from './lib/flannel-node.js';
import { addRoutedPod, txBytes } from './lib/throughput-wiring.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const SECONDS = Number(flag('seconds', '3'));
const RUNS = Number(flag('runs', '5'));
const WIRE_GBIT = Number(flag('wire-gbit', '10'));
const FLANNEL = !args.includes('--no-flannel');
const WIRINGS = !args.includes('--no-wirings');

/** The overlay device a run must cross, checked through its tx counter on the sending node. */
interface Via { netns: string; dev: string }

/** Smallest (device bytes ÷ iperf3 bytes) seen per device, for the report. */
const carried = new Map<string, number>();

async function iperf(serverNs: string, clientNs: string, ip: string, cc: string | undefined, via?: Via): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-B', ip], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 50; i++) {
      const before = via ? await txBytes(via.netns, via.dev) : 0;
      const r = await nsRun(clientNs, 'iperf3', ['-c', ip, '-t', String(SECONDS), '-J', ...(cc ? ['-C', cc] : [])], { allowFail: true, timeoutMs: (SECONDS + 30) * 1000 });
      // iperf3 -J can exit 0 with {"error": …} (e.g. the server was not listening yet): retry.
      type J = { error?: string; end?: { sum_received?: { bits_per_second: number }; sum_sent?: { bytes: number } } };
      const j = r.code === 0 ? JSON.parse(r.stdout) as J : undefined;
      const bps = j?.end?.sum_received?.bits_per_second;
      if (bps !== undefined && !j?.error) {
        if (via) {
          const sent = j!.end!.sum_sent!.bytes;
          const ratio = (await txBytes(via.netns, via.dev) - before) / sent;
          if (!(ratio >= 0.98)) throw new Error(`${clientNs} → ${ip}: ${via.dev} carried ${ratio.toFixed(3)} of the ${sent} bytes iperf3 sent: the path does not go over the overlay`);
          const k = via.dev;
          carried.set(k, Math.min(carried.get(k) ?? Infinity, ratio));
        }
        return bps / 1e9;
      }
      await new Promise((res) => setTimeout(res, 100));   // server not listening yet
    }
    throw new Error(`iperf3 ${clientNs} → ${ip} never connected`);
  } finally {
    server.kill();
  }
}

interface Path { name: string; measure: (cc: string | undefined) => Promise<number> }
/** One path's RUNS results, in round order (round i of every path ran back to back). */
type Runs = Map<string, number[]>;

/** RUNS rounds; in each, every path runs once, in order (interleaved). */
async function measureAll(paths: Path[], cc: string | undefined): Promise<Runs> {
  const xs = paths.map((): number[] => []);
  for (let i = 0; i < RUNS; i++) for (const [k, p] of paths.entries()) xs[k]!.push(await p.measure(cc));
  return new Map(paths.map((p, k) => [p.name, xs[k]!]));
}

/** Median and range of a path's runs. */
const stat = (xs: number[]) => ({ med: quantile(xs, 0.5), min: Math.min(...xs), max: Math.max(...xs) });

/**
 * x ÷ y as the median (and range) of the per-round ratios: the two paths ran back to back in each
 * round, so load that comes and goes on a shared machine hits both sides of each ratio alike.
 */
const ratio = (x: number[], y: number[]) => stat(x.map((v, i) => v / y[i]!));

async function setBridgeNf(c: Cluster, on: boolean): Promise<void> {
  for (const n of c.nodes) await nsRun(n.netns, 'sysctl', ['-q', '-w', `net.bridge.bridge-nf-call-iptables=${on ? 1 : 0}`]);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('bench/throughput: needs root (network namespaces); skipped'); return; }
  const pods = existsSync(CNI_BIN) ? 'cni' : 'standin';
  const load0 = loadavg();
  const c = await startCluster({ nodes: 2, pods, podsPerNode: 1, logLevel: 'warn', ipMasq: true });
  const fl = FLANNEL ? new FlannelNodes(c, 2) : undefined;
  try {
    const [a, b] = [c.pods.find((p) => p.node === 0)!, c.pods.find((p) => p.node === 1)!];
    const twillVia: Via = { netns: c.node(0).netns, dev: c.device };
    const paths: Record<string, Path> = {};
    const add = (name: string, measure: Path['measure']) => { paths[name] = { name, measure }; };
    add('host', (cc) => iperf(c.node(1).netns, c.node(0).netns, c.node(1).underlayIP, cc));
    add('vxlan', (cc) => iperf(c.node(1).netns, c.node(0).netns, b.gateway, cc, twillVia));
    add('twill', (cc) => iperf(b.netns, a.netns, b.ip, cc, twillVia));
    if (WIRINGS) {
      const routed = await Promise.all([0, 1].map(async (i) => {
        const env = (await readSubnetEnv(c.node(i).subnetFile))!;
        const sub = env.FLANNEL_SUBNET!;
        routedNetns.push(`${c.prefix}n${i}r`);
        return addRoutedPod({
          nodeNetns: c.node(i).netns, netns: `${c.prefix}n${i}r`, hostIf: 'rt0',
          ip: nthAddress(sub, 200), gateway: sub.split('/')[0]!, mtu: Number(env.FLANNEL_MTU ?? 1450),
        });
      }));
      add('routed', (cc) => iperf(routed[1]!.netns, routed[0]!.netns, routed[1]!.ip, cc, twillVia));
      add('nobrnf', async (cc) => {
        await setBridgeNf(c, false);
        try { return await iperf(b.netns, a.netns, b.ip, cc, twillVia); } finally { await setBridgeNf(c, true); }
      });
    }
    if (fl) {
      await fl.start(DEFAULT_NET_CONF);
      const [fa, fb] = [await fl.addPod(0), await fl.addPod(1)];
      const flVia: Via = { netns: fl.nodes[0]!.netns, dev: FLANNEL_DEVICE };
      add('flannel', (cc) => iperf(fb.netns, fa.netns, fb.ip, cc, flVia));
    }

    const def = (await nsRun(a.netns, 'sysctl', ['-n', 'net.ipv4.tcp_congestion_control'])).stdout.trim();
    const ccs = def === 'cubic' ? [undefined] : [undefined, 'cubic'];
    const ccName = (cc: string | undefined) => cc ?? `${def} (default)`;
    const order = ['vxlan', 'twill', 'flannel', 'routed', 'nobrnf', 'host'].filter((k) => paths[k]);
    const cpu = new Map<string | undefined, Runs>();
    for (const cc of ccs) cpu.set(cc, await measureAll(order.map((k) => paths[k]!), cc));

    const wire = new Map<string | undefined, Runs>();
    if (WIRE_GBIT > 0) {
      // The line-rate model: each node's uplink sends at most WIRE_GBIT (burst large enough that
      // tbf never has to split a 64 KB GSO packet).
      const uplinks = [...c.nodes.map((n) => n.netns), ...(fl?.nodes.map((n) => n.netns) ?? [])];
      for (const ns of uplinks) {
        await nsRun(ns, 'tc', ['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${WIRE_GBIT}gbit`, 'burst', '1mb', 'latency', '5ms']);
      }
      const wOrder = ['host', 'twill', 'flannel'].filter((k) => paths[k]);
      for (const cc of ccs) wire.set(cc, await measureAll(wOrder.map((k) => paths[k]!), cc));
    }

    report(cpu, wire, ccs, ccName, pods);
    console.log(`machine load (1-min load average, 2 cores here): ${load0} at the start, ${loadavg()} at the end`);
    const devices = [[c.node(0).netns, c.device], ...(fl ? [[fl.nodes[0]!.netns, FLANNEL_DEVICE]] : [])] as [string, string][];
    console.log(`VXLAN devices: ${(await Promise.all(devices.map(async ([ns, dev]) => `${dev} ${await vxlanFlags(ns, dev)}`))).join('; ')}`);
  } finally {
    await fl?.destroy();
    await Promise.all(routedNetns.map((ns) => deleteNetns(ns)));
    unhook();
    await c.destroy();
  }
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]!;

/** What differs between VXLAN devices and matters to throughput: outer UDP checksum, port, learning. */
async function vxlanFlags(netns: string, dev: string): Promise<string> {
  type L = { mtu: number; linkinfo?: { info_data?: { port?: number; learning?: boolean; udp_csum?: boolean } } };
  const [l] = await ipJson<L>(netns, '-d', 'link', 'show', 'dev', dev);
  const d = l?.linkinfo?.info_data ?? {};
  return `(mtu ${l?.mtu}, port ${d.port}, ${d.udp_csum ? 'outer UDP checksum on' : 'no outer UDP checksum'}, learning ${d.learning ? 'on' : 'off'})`;
}

/** The hand-built pods' netns (ours, not the cluster's): removed in main's finally or on exit. */
const routedNetns: string[] = [];
const unhook = onProcessExit(() => { for (const ns of routedNetns) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); });

const LABEL: Record<string, string> = {
  twill: 'twill pod → pod (CNI: veth + cni0 bridge)',
  routed: '  routed veth, no bridge (hand-built, twill nodes)',
  nobrnf: '  twill pods, bridge-nf-call-iptables off',
  flannel: 'flannel pod → pod (flanneld + flannel → bridge + host-local)',
  vxlan: 'anchor: VXLAN alone, node → node',
  host: 'anchor: host → host',
};

/** A run's paths in the table's order (twill first, the anchors last), not the order they ran in. */
const shown = (s: Runs): [string, number[]][] => Object.keys(LABEL).filter((k) => s.has(k)).map((k) => [k, s.get(k)!]);

function report(cpu: Map<string | undefined, Runs>, wire: Map<string | undefined, Runs>,
  ccs: (string | undefined)[], ccName: (cc: string | undefined) => string, pods: string): void {
  const f = (x: number) => x.toFixed(2);
  const fr = (r: { med: number; min: number; max: number }) => `${f(r.med)} (${f(r.min)}–${f(r.max)})`;
  const ok = (x: number, goal: number) => (x >= goal ? '✅' : '❌');
  const goals: string[][] = [];
  const info: string[][] = [];
  const goal = (name: string, target: number, r: { med: number; min: number; max: number }, why = '') =>
    goals.push([name, `≥ ${target.toFixed(2)}`, `${r.med.toFixed(3)} (${f(r.min)}–${f(r.max)})`, `${ok(r.med, target)}${why}`]);
  console.log(`\nTCP throughput, iperf3 ${SECONDS} s × ${RUNS} interleaved rounds; Gbit/s median (min–max); ratios are the median (min–max) of per-round ratios; twill pods via ${pods}, underlay veth MTU 1500 with GRO, overlay MTU ${1500 - 50}`);
  const PODS = ['twill', 'routed', 'nobrnf'];
  for (const cc of ccs) {
    const s = cpu.get(cc)!;
    const host = s.get('host')!;
    const vx = s.get('vxlan')!;
    const fl = s.get('flannel');
    const rows = shown(s).map(([k, x]) => [
      LABEL[k]!, fr(stat(x)), k === 'host' ? '' : fr(ratio(x, host)), k === 'host' || k === 'vxlan' ? '' : fr(ratio(x, vx)),
      fl && PODS.includes(k) ? fr(ratio(x, fl)) : '',
    ]);
    console.log(`\nCPU-bound veth underlay, ${ccName(cc)}`);
    console.log(table(['path', 'Gbit/s', '÷ host → host', '÷ VXLAN alone', '÷ flannel'], rows));
    const tw = s.get('twill')!;
    goal(`(b) twill pod → pod ÷ VXLAN alone, CPU-bound, ${ccName(cc)}`, 0.9, ratio(tw, vx));
    const rt = s.get('routed');
    if (rt) goal(`    candidate: routed veth ÷ VXLAN alone, ${ccName(cc)}`, 0.9, ratio(rt, vx));
    if (rt) info.push([`routed veth ÷ twill's bridged pods, ${ccName(cc)}`, fr(ratio(rt, tw))]);
    const nb = s.get('nobrnf');
    if (nb) info.push([`bridged pods without br_netfilter ÷ with, ${ccName(cc)}`, fr(ratio(nb, tw))]);
    if (fl) goal(`(c) twill ÷ flannel pod → pod, CPU-bound, ${ccName(cc)}`, 1.0, ratio(tw, fl));
  }
  for (const cc of ccs) {
    const s = wire.get(cc);
    if (!s) continue;
    const host = s.get('host')!;
    const fl = s.get('flannel');
    const rows = shown(s).map(([k, x]) => [
      LABEL[k]!, fr(stat(x)), k === 'host' ? '' : fr(ratio(x, host)), fl && k === 'twill' ? fr(ratio(x, fl)) : '',
    ]);
    console.log(`\nunderlay at a ${WIRE_GBIT} Gbit/s line rate (tbf per node uplink), ${ccName(cc)}`);
    console.log(table(['path', 'Gbit/s', '÷ host → host', '÷ flannel'], rows));
    const tw = s.get('twill')!;
    // The model only holds when the wire, not the CPU, bounds host → host.
    const hostMed = stat(host).med;
    const model = hostMed >= 0.9 * WIRE_GBIT ? '' : ` model not in effect: host → host reached ${f(hostMed)} of ${WIRE_GBIT} Gbit/s (CPU-bound)`;
    goal(`(a) twill pod → pod ÷ host → host, ${WIRE_GBIT} Gbit/s line rate, ${ccName(cc)}`, 0.93, ratio(tw, host), model);
    if (fl) goal(`(c) twill ÷ flannel pod → pod, ${WIRE_GBIT} Gbit/s line rate, ${ccName(cc)}`, 1.0, ratio(tw, fl));
  }
  if (info.length) {
    console.log('\nwhat the bridge hop costs (median (min–max) of per-round ratios)');
    console.log(table(['wiring', 'ratio'], info));
  }
  console.log('\ngoals (issue 17 row 6), median (min–max) of per-round ratios in this run');
  console.log(table(['goal', 'target', 'measured', ''], goals));
  const dev = [...carried.entries()].map(([d, r]) => `${d} ≥ ${r.toFixed(3)}×`).join(', ');
  console.log(`\noverlay check: each overlay run's VXLAN device carried at least the bytes iperf3 sent (${dev})`);
}

await main();
