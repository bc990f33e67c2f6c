// Pod-to-pod TCP throughput across nodes (VXLAN overlay) against host-to-host TCP on the
// underlay, measured with iperf3 in the same run on the same netns cluster. The ratio is the
// overlay's cost: encapsulation plus the smaller MTU. Runs alternate and the median is reported.
//
// A third path splits the overlay's cost: node → node across VXLAN (node A to node B's bridge
// gateway — the kernel's encapsulation and decapsulation, with no pod veth and no bridge hop).
// Pod wiring only adds to that path, so it is the ceiling of any VXLAN overlay on this underlay:
// 0.52–0.69 of host-to-host with cubic over 2026-11-26's runs, a hand-built topology without
// twill included.
//
// Twice: with the machine's default congestion control and with cubic (Linux's default). On
// these machines the default is bbr, whose pacing holds host-to-host over veth well below what
// the path can carry (≈17 vs ≈27 Gbit/s with cubic, 2026-11-26) while pod-to-pod barely moves,
// so the bbr ratio flatters the overlay; the cubic row shows the datapath's own cost.
//
// That veth underlay is CPU-bound: host-to-host moves 15–29 Gbit/s on one core with no wire in
// the way, so the overlay's extra per-packet work shows up one-for-one as lost throughput. On a
// real cluster the NIC's line rate bounds both paths. The last rows model that: a token bucket
// (tbf, 10 Gbit/s, one per node uplink) as the line rate, then the same two paths. They are a
// second model of the underlay, reported beside the first, not instead of it.
//
// Usage: node dist/bench/throughput.js [--seconds 5] [--runs 3] [--wire-gbit 10 (0: skip the model)]
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startCluster, type Cluster } from '../test/harness/cluster.js';
import { table, quantile } from './lib/report.js';

const ROOT = resolve(import.meta.dirname, '../..');
const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const SECONDS = Number(flag('seconds', '5'));
const RUNS = Number(flag('runs', '3'));
const WIRE_GBIT = Number(flag('wire-gbit', '10'));

async function iperf(c: Cluster, serverNs: string, clientNs: string, ip: string, cc: string | undefined): Promise<number> {
  const server = spawn('ip', ['netns', 'exec', serverNs, 'iperf3', '-s', '-1', '-B', ip], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 50; i++) {
      const r = await c.exec(clientNs, 'iperf3', ['-c', ip, '-t', String(SECONDS), '-J', ...(cc ? ['-C', cc] : [])], { allowFail: true });
      // iperf3 -J can exit 0 with {"error": …} (e.g. the server was not listening yet): retry.
      const j = r.code === 0 ? JSON.parse(r.stdout) as { error?: string; end?: { sum_received?: { bits_per_second: number } } } : undefined;
      const bps = j?.end?.sum_received?.bits_per_second;
      if (bps !== undefined && !j?.error) return bps / 1e9;
      await new Promise((res) => setTimeout(res, 100));   // server not listening yet
    }
    throw new Error(`iperf3 ${clientNs} → ${ip} never connected`);
  } finally {
    server.kill();
  }
}

/** The median of RUNS measurements of each path, the paths taking turns run by run. */
async function medians(paths: (() => Promise<number>)[]): Promise<number[]> {
  const xs = paths.map((): number[] => []);
  for (let i = 0; i < RUNS; i++) for (const [k, measure] of paths.entries()) xs[k]!.push(await measure());
  return xs.map((x) => quantile(x, 0.5));
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) { console.log('bench/throughput: needs root (network namespaces); skipped'); return; }
  const pods = existsSync(join(ROOT, 'dist/cni/twill')) ? 'cni' : 'standin';
  const c = await startCluster({ nodes: 2, pods, podsPerNode: 1, logLevel: 'warn' });
  try {
    const [a, b] = [c.pods.find((p) => p.node === 0)!, c.pods.find((p) => p.node === 1)!];
    const def = (await c.exec(a.netns, 'sysctl', ['-n', 'net.ipv4.tcp_congestion_control'])).stdout.trim();
    const rows: string[][] = [];
    const ccs = def === 'cubic' ? [undefined] : [undefined, 'cubic'];
    const podToPod = (cc: string | undefined) => () => iperf(c, b.netns, a.netns, b.ip, cc);
    const vxlanAlone = (cc: string | undefined) => () => iperf(c, c.node(1).netns, c.node(0).netns, b.gateway, cc);
    const hostToHost = (cc: string | undefined) => () => iperf(c, c.node(1).netns, c.node(0).netns, c.node(1).underlayIP, cc);
    const row = (path: string, x: number, u: number, goal: string) => [path, x.toFixed(2), u.toFixed(2), (x / u).toFixed(2), goal];
    const ccName = (cc: string | undefined) => cc ?? `${def} (default)`;
    for (const cc of ccs) {
      const [o, v, u] = await medians([podToPod(cc), vxlanAlone(cc), hostToHost(cc)]);
      rows.push(row(`pod → pod across nodes (VXLAN), ${ccName(cc)}`, o!, u!, '≥ 0.85'));
      rows.push(row(`  of which VXLAN alone: node → node, ${ccName(cc)}`, v!, u!, ''));
    }
    if (WIRE_GBIT > 0) {
      // The line-rate model: each node's uplink sends at most WIRE_GBIT (burst large enough that
      // tbf never has to split a 64 KB GSO packet).
      for (const n of [0, 1]) {
        await c.exec(c.node(n).netns, 'tc', ['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${WIRE_GBIT}gbit`, 'burst', '1mb', 'latency', '5ms']);
      }
      for (const cc of ccs) {
        const [o, u] = await medians([podToPod(cc), hostToHost(cc)]);
        rows.push(row(`pod → pod, underlay at a ${WIRE_GBIT} Gbit/s line rate, ${ccName(cc)}`, o!, u!, 'model'));
      }
    }
    console.log(`\nTCP throughput, iperf3 ${SECONDS} s × ${RUNS} runs (median), pods via ${pods}, underlay veth MTU 1500, overlay MTU ${1500 - 50}`);
    console.log(table(['path, congestion control', 'Gbit/s', 'anchor: host-to-host Gbit/s', 'ratio', 'goal'], rows));
  } finally {
    await c.destroy();
  }
}

await main();
