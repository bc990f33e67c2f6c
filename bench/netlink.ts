// Netlink layer benchmark: twill's batched apply vs iproute2 (`ip -batch` + `bridge -batch`)
// writing the same per-peer entries (ARP, FDB, nexthop, route via nhid) into a fresh netns with
// a vxlan device, measured in the same run; plus dump time, watch idle CPU, and the cost of
// opening a handle bound to another netns.
//
// Usage (root): npm run build && node dist/bench/netlink.js [--peers 1000,5000,20000] [--repeat 3]
//   [--idle-seconds 10] [--idle-only]
//
// The idle-CPU table runs in a fresh process (--idle-only) with V8's memory reducer off, as the
// agent runs (bin/twilld.js). process.cpuUsage counts the whole process, and the reducer's GCs —
// 8 s after start, and 8–16 s after the batch runs' full GCs here — landed in the watch's window
// and decided the row: 0.27–0.57 % with them, 0.05 % without (0.02 % one day when they missed).
import { execFileSync } from 'node:child_process';
import { openHandle } from '../lib/netlink/handle.js';
import { NTF_SELF, NUD_PERMANENT, RTPROT_TWILL, type NetlinkHandle, type NlChange } from '../lib/netlink/types.js';
import { nexthopIdOf, programWithIproute2, type BaselinePeer } from './lib/iproute2-baseline.js';
import { fmtMs, quantile, table } from './lib/report.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const PEERS = flag('peers', '1000,5000,20000').split(',').map(Number);
const REPEAT = Number(flag('repeat', '5'));
const IDLE_S = Number(flag('idle-seconds', '10'));
const NS_PREFIX = `twnlb${process.pid.toString(36)}-`;
let nsSeq = 0;
const live = new Set<string>();

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

function freshNetns(withDevice: boolean): string {
  const ns = `${NS_PREFIX}${nsSeq++}`;
  ip('netns', 'add', ns);
  live.add(ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  if (withDevice) {
    ip('-n', ns, 'link', 'add', 'twill.1', 'type', 'vxlan', 'id', '1', 'dstport', '8472', 'nolearning');
    ip('-n', ns, 'link', 'set', 'twill.1', 'up');
  }
  return ns;
}

function dropNetns(ns: string): void {
  try { ip('netns', 'del', ns); } catch { /* already gone */ }
  live.delete(ns);
}

function cleanupAll(): void { for (const ns of [...live]) dropNetns(ns); }
process.on('exit', cleanupAll);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => { cleanupAll(); process.exit(130); });

function peerOf(i: number): BaselinePeer {
  const k = i + 1;
  const h = (n: number) => (n & 255).toString(16).padStart(2, '0');
  return { subnet: `10.${k >> 8}.${k & 255}.0/24`, publicIP: `172.${16 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`, vtepMAC: `02:42:${h(k >> 16)}:${h(k >> 8)}:${h(k)}:01` };
}

/** The agent's plan for fresh peers: all ARP, then FDB, then nexthops, then routes. */
function peerChanges(peers: readonly BaselinePeer[], dev: number): NlChange[] {
  const arp: NlChange[] = [], fdb: NlChange[] = [], nh: NlChange[] = [], rt: NlChange[] = [];
  for (const p of peers) {
    const gw = p.subnet.split('/')[0]!;
    const id = nexthopIdOf(p.subnet);
    arp.push({ verb: 'replace', object: { kind: 'neigh', family: 4, ifindex: dev, ip: gw, mac: p.vtepMAC, state: NUD_PERMANENT, flags: 0 } });
    fdb.push({ verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: dev, ip: p.publicIP, mac: p.vtepMAC, state: NUD_PERMANENT, flags: NTF_SELF } });
    nh.push({ verb: 'replace', object: { kind: 'nexthop', id, family: 4, gateway: gw, ifindex: dev, onlink: true, protocol: RTPROT_TWILL } });
    rt.push({ verb: 'replace', object: { kind: 'route', family: 4, dst: p.subnet, nhid: id, protocol: RTPROT_TWILL } });
  }
  return [...arp, ...fdb, ...nh, ...rt];
}

async function counts(h: NetlinkHandle): Promise<number[]> {
  const dev = (await h.listLinks()).find((l) => l.name === 'twill.1')!;
  const [r, n, a, f] = await Promise.all([
    h.listRoutes({ protocol: RTPROT_TWILL }), h.listNexthops(),
    h.listNeighs({ family: 4, ifindex: dev.index }), h.listNeighs({ family: 'bridge', ifindex: dev.index }),
  ]);
  return [r.length, n.length, a.length, f.filter((x) => x.ip).length];
}

async function twillRun(peers: readonly BaselinePeer[]): Promise<{ ms: number; dumpMs: number }> {
  const ns = freshNetns(true);
  const h = openHandle({ netnsPath: `/var/run/netns/${ns}` });
  try {
    const dev = (await h.listLinks()).find((l) => l.name === 'twill.1')!;
    const changes = peerChanges(peers, dev.index);
    const t0 = performance.now();
    const res = await h.apply(changes);
    const ms = performance.now() - t0;
    const bad = res.filter((r) => !r.ok);
    if (bad.length) throw new Error(`${bad.length} entries failed, first: ${JSON.stringify(bad[0])}`);
    const t1 = performance.now();
    const c = await counts(h);
    const dumpMs = performance.now() - t1;
    if (c.some((x) => x !== peers.length)) throw new Error(`kernel holds ${c.join('/')} (routes/nexthops/arp/fdb), want ${peers.length}`);
    return { ms, dumpMs };
  } finally {
    h.close();
    dropNetns(ns);
  }
}

async function iproute2Run(peers: readonly BaselinePeer[]): Promise<number> {
  const ns = freshNetns(false);
  try {
    const ms = await programWithIproute2(ns, peers);
    const h = openHandle({ netnsPath: `/var/run/netns/${ns}` });
    try {
      const c = await counts(h);
      if (c.some((x) => x !== peers.length)) throw new Error(`iproute2 left ${c.join('/')}, want ${peers.length}`);
    } finally { h.close(); }
    return ms;
  } finally {
    dropNetns(ns);
  }
}

const median = (xs: number[]) => quantile(xs, 0.5);

async function batchTable(): Promise<void> {
  const rows: string[][] = [];
  for (const n of PEERS) {
    const peers = Array.from({ length: n }, (_, i) => peerOf(i));
    const tw: number[] = [], dump: number[] = [], ir: number[] = [];
    for (let r = 0; r < REPEAT; r++) {
      const t = await twillRun(peers);
      tw.push(t.ms); dump.push(t.dumpMs);
      ir.push(await iproute2Run(peers));
    }
    const a = median(tw), b = median(ir);
    const amin = Math.min(...tw), bmin = Math.min(...ir);
    rows.push([String(n), String(n * 4), `${fmtMs(a)} (${fmtMs(amin)})`, `${fmtMs(b)} (${fmtMs(bmin)})`, `${(a / b).toFixed(2)} (${(amin / bmin).toFixed(2)})`, fmtMs(median(dump))]);
    console.error(`  ${n} peers: twill ${tw.map((x) => x.toFixed(0)).join('/')} ms, iproute2 ${ir.map((x) => x.toFixed(0)).join('/')} ms`);
  }
  console.log(`\nProgramming N peers (ARP + FDB + nexthop + route each): median (min) of ${REPEAT} runs, alternating`);
  console.log(table(['peers', 'messages', 'twill apply', 'iproute2 batch', 'ratio twill/iproute2', 'twill dump (4 lists)'], rows));
}

async function idleCpu(): Promise<void> {
  const ns = freshNetns(true);
  const path = `/var/run/netns/${ns}`;
  const measure = async () => {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const c = process.cpuUsage(c0);
    return ((c.user + c.system) / 1000 / (performance.now() - t0)) * 100;
  };
  const watching = async (mode: 'thread' | 'timer') => {
    const h = openHandle({ netnsPath: path, watchWait: mode });
    const ctl = new AbortController();
    let events = 0;
    const loop = (async () => { for await (const _e of h.watch(['link', 'addr', 'route', 'nexthop', 'neigh'], ctl.signal)) events++; })();
    // prove the watch is live: one change must arrive
    ip('-n', ns, 'route', 'add', '10.99.0.0/16', 'dev', 'twill.1');
    const cpu = await measure();
    ip('-n', ns, 'route', 'del', '10.99.0.0/16', 'dev', 'twill.1');
    for (let i = 0; i < 100 && events < 2; i++) await new Promise((r) => setTimeout(r, 10));
    const t0 = performance.now();
    ctl.abort();
    await loop;
    const stopMs = performance.now() - t0;
    h.close();
    if (events < 2) throw new Error(`watch (${mode}) saw ${events} events, want ≥ 2`);
    return { cpu, stopMs };
  };
  try {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const thread = await watching('thread');
    const timer = await watching('timer');
    const base = await measure();
    clearInterval(keepAlive);
    console.log(`\nIdle CPU over ${IDLE_S} s with a watch on all 5 groups (process.cpuUsage)`);
    console.log(table(['state', 'CPU %', 'abort → ended'], [
      ['no watch (anchor)', base.toFixed(3), ''],
      ['watch, shared worker-thread poll (default)', thread.cpu.toFixed(3), fmtMs(thread.stopMs)],
      ['watch, 25 ms timer drain (fallback)', timer.cpu.toFixed(3), fmtMs(timer.stopMs)],
    ]));
  } finally {
    dropNetns(ns);
  }
}

async function openCost(): Promise<void> {
  const ns = freshNetns(false);
  try {
    ip('-n', ns, 'link', 'add', 'bench0', 'type', 'veth', 'peer', 'name', 'bench1');
    ip('-n', ns, 'addr', 'add', '192.168.77.1/24', 'dev', 'bench0');
    ip('-n', ns, 'link', 'set', 'bench0', 'up');
    const N = 1000;
    const time = (fn: () => void) => { const t = performance.now(); for (let i = 0; i < N; i++) fn(); return ((performance.now() - t) * 1000) / N; };
    openHandle().close(); // load koffi first
    const host = time(() => openHandle().close());
    const other = time(() => openHandle({ netnsPath: `/var/run/netns/${ns}` }).close());
    const h = openHandle({ netnsPath: `/var/run/netns/${ns}` });
    const dev = (await h.listLinks()).find((l) => l.name === 'bench0')!.index;
    const one: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const [r] = await h.apply([{ verb: 'replace', object: { kind: 'route', family: 4, dst: `10.${i}.0.0/16`, gateway: '192.168.77.2', ifindex: dev, protocol: RTPROT_TWILL } }]);
      one.push((performance.now() - t) * 1000);
      if (!r?.ok) throw new Error(`route replace failed: ${JSON.stringify(r)}`);
    }
    h.close();
    const ipOne: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      ip('-n', ns, 'route', 'replace', `10.${i}.0.0/16`, 'via', '192.168.77.3', 'dev', 'bench0', 'proto', '116');
      ipOne.push((performance.now() - t) * 1000);
    }
    console.log('\nHandle cost (µs)');
    console.log(table(['operation', 'twill', 'anchor', 'anchor is'], [
      ['open+close handle, own netns', host.toFixed(1), '', ''],
      ['open+close handle, other netns (setns dance)', other.toFixed(1), '', ''],
      ['one route replace (apply of 1), p50', quantile(one, 0.5).toFixed(1), quantile(ipOne, 0.5).toFixed(1), '`ip -n X route replace` (exec)'],
    ]));
  } finally {
    dropNetns(ns);
  }
}

if (process.getuid?.() !== 0) {
  console.log('bench/netlink: needs root (network namespaces); skipped');
} else {
  try {
    if (args.includes('--idle-only')) {
      await idleCpu();
    } else {
      if (!args.includes('--no-batch')) await batchTable();
      await openCost();
      execFileSync(process.execPath, ['--no-memory-reducer', process.argv[1]!, ...args, '--idle-only'], { stdio: 'inherit' });
    }
  } finally {
    cleanupAll();
  }
}
