// Agent benchmarks (issue 2): convergence at 1k/5k/20k peers against the iproute2 baseline,
// lease→kernel event latency with 20k peers present, and agent RSS / idle CPU at 20k peers.
//
// It runs in a private netns with synthetic peers (bench/lib/agent-rig.ts says how and why).
//
// Each size starts the agent `--starts` times (fresh etcd and kernel each time) and reports the
// median with the range: one start varies by ±30 % on these machines.
//
// Usage: node dist/bench/agent.js [--peers 1000,5000,20000] [--starts 3] [--events 200] [--idle-seconds 30]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { openHandle } from '../lib/netlink/handle.js';
import type { NetlinkHandle } from '../lib/netlink/types.js';
import { startEtcd } from '../test/util/etcd.js';
import { programWithIproute2 } from './lib/iproute2-baseline.js';
import { table, quantile, fmtMs } from './lib/report.js';
import { cpuTicks, grant, kernelEntries, keyOf, peerOf, rssMiB, runInSandbox, seedPeers, spawnAgent, valueOf, waitReady } from './lib/agent-rig.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const PEERS = flag('peers', '1000,5000,20000').split(',').map(Number);
const STARTS = Math.max(1, Number(flag('starts', '3')));
const EVENTS = Number(flag('events', '200'));
const IDLE_S = Number(flag('idle-seconds', '30'));
/** Quiet time before the idle sample: the agent compacts its heap 5–10 s after the last event (agent/heap.ts); that one-off clean-up belongs to the burst, not to idling. */
const SETTLE_S = Number(flag('settle-seconds', '20'));

interface Run { peers: number; agentMs: number; reconcileMs: number; kernelMs: number; baselineMs: number }

async function inside(): Promise<void> {
  const h = openHandle();
  const runs: Run[] = [];
  let extra: { latency?: LatencyResult; resources?: Resources } = {};
  for (const n of PEERS) {
    for (let k = 1; k <= STARTS; k++) {
      const last = n === Math.max(...PEERS) && k === STARTS;
      const r = await convergence(h, n, last ? async (ctx) => {
        const l = await latency(h, ctx, EVENTS);
        extra = { latency: l, resources: await resources(ctx.agent.pid!, ctx.spawnedAt) };
        return l;
      } : undefined);
      runs.push(r);
    }
  }
  h.close();
  /** Median of the runs, with their range when there are several. */
  const med = (xs: number[], fmt: (x: number) => string) => xs.length > 1
    ? `${fmt(quantile(xs, 0.5))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : fmt(xs[0]!);
  const ratio = (x: number) => x.toFixed(2);
  console.log(`\nConvergence: agent start → every peer programmed (ARP + FDB + nexthop + route each); median of ${STARTS} start${STARTS > 1 ? 's (range)' : ''}`);
  console.log('(kernel write = the start-up reconcile\'s apply phase: encode, send, acks, bookkeeping — what the iproute2 anchor does;');
  console.log(' whole reconcile adds the kernel dump and the diff that decide what to write; ratios are per start, then the median)');
  console.log(table(['peers', 'twill start→ready', 'twill whole reconcile', 'twill kernel write', 'iproute2 (ip -batch + bridge -batch)', 'ratio write/iproute2 (goal ≤ 1.0)', 'ratio reconcile/iproute2'],
    PEERS.map((n) => {
      const rs = runs.filter((r) => r.peers === n);
      const of = (f: (r: Run) => number) => rs.map(f);
      return [String(n), med(of((r) => r.agentMs), fmtMs), med(of((r) => r.reconcileMs), fmtMs), med(of((r) => r.kernelMs), fmtMs), med(of((r) => r.baselineMs), fmtMs),
        med(of((r) => r.kernelMs / r.baselineMs), ratio), med(of((r) => r.reconcileMs / r.baselineMs), ratio)];
    })));
  if (extra.latency) {
    const l = extra.latency;
    console.log(`\nEvent latency with ${Math.max(...PEERS)} peers present: etcd write → kernel (${EVENTS} adds, ${EVENTS} removes)`);
    console.log(table(['event', 'twill p50', 'twill p99', 'iproute2 one peer p50', 'ratio p50', 'goal p99'], [
      ['lease added → route present', fmtMs(quantile(l.add, 0.5)), fmtMs(quantile(l.add, 0.99)), fmtMs(quantile(l.anchor, 0.5)), (quantile(l.add, 0.5) / quantile(l.anchor, 0.5)).toFixed(2), '≤ 50 ms'],
      ['lease removed → ARP gone', fmtMs(quantile(l.del, 0.5)), fmtMs(quantile(l.del, 0.99)), fmtMs(quantile(l.anchor, 0.5)), (quantile(l.del, 0.5) / quantile(l.anchor, 0.5)).toFixed(2), '≤ 50 ms'],
    ]));
  }
  if (extra.resources) {
    const r = extra.resources;
    console.log(`\nResources with ${Math.max(...PEERS)} peers, idle for ${IDLE_S} s (sampled after ${Math.max(3, SETTLE_S)} s of quiet following the event test)`);
    console.log(table(['measure', 'twilld', 'anchor: idle bare node', 'ratio', 'goal'], [
      ['RSS', `${r.rssMiB.toFixed(1)} MiB`, `${r.anchorRssMiB.toFixed(1)} MiB`, (r.rssMiB / r.anchorRssMiB).toFixed(2), '≤ 96 MiB'],
      ['idle CPU', `${r.cpuPct.toFixed(2)} %`, `${r.anchorCpuPct.toFixed(2)} %`, r.anchorCpuPct > 0 ? (r.cpuPct / r.anchorCpuPct).toFixed(1) : '–', '≤ 0.5 %'],
    ]));
  }
}

interface Ctx { agent: ChildProcess; etcd: Etcd3; used: Set<number>; port: number; spawnedAt: number }

async function convergence(h: NetlinkHandle, n: number, more?: (c: Ctx) => Promise<LatencyResult>): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'twill-bench-'));
  const etcdProc = await startEtcd({ host: '127.0.0.1', dataDir: join(dir, 'etcd') });
  const etcd = new Etcd3({ hosts: etcdProc.endpoint });
  try {
    const peers = Array.from({ length: n }, (_, i) => peerOf(i));
    await seedPeers(etcd, peers);
    const port = 18471;
    const t0 = performance.now();
    const { agent, log } = spawnAgent({ endpoint: etcdProc.endpoint, dir, port });
    await waitReady(port, agent, log);
    const agentMs = performance.now() - t0;
    await waitLogged(log);   // pino writes asynchronously: the line may trail /readyz
    if (process.env.TWILL_BENCH_LOG) writeFileSync(`${process.env.TWILL_BENCH_LOG}.${n}`, `${new Date(Date.now() - agentMs).toISOString()} spawn\n${new Date().toISOString()} ready\n${log()}`);
    const { ms: reconcileMs, applyMs: kernelMs } = firstApply(log());
    await verifyKernel(h, n);
    const ctx: Ctx = { agent, etcd, used: new Set(peers.map((_, i) => i)), port, spawnedAt: t0 };
    const l = more ? await more(ctx) : undefined;
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    if (process.env.TWILL_BENCH_LOG) writeFileSync(`${process.env.TWILL_BENCH_LOG}.${n}.full`, log());
    if (l) l.anchor = await iproute2OnePeer();   // the agent is gone: nobody repairs these away
    execFileSync('ip', ['link', 'del', 'twill.1']);
    const baselineMs = await programWithIproute2(undefined, peers);
    execFileSync('ip', ['link', 'del', 'twill.1']);
    return { peers: n, agentMs, reconcileMs, kernelMs, baselineMs };
  } finally {
    etcd.close();
    await etcdProc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitLogged(log: () => string): Promise<void> {
  for (let i = 0; i < 200 && Number.isNaN(firstApply(log()).ms); i++) await new Promise((r) => setTimeout(r, 10));
}

/** The start-up reconcile's duration and its apply phase, from the agent's own log line. */
function firstApply(log: string): { ms: number; applyMs: number } {
  for (const line of log.split('\n')) {
    if (!line.includes('"msg":"reconciled"')) continue;
    const j = JSON.parse(line) as { ms?: number; applyMs?: number; writes?: number };
    if ((j.writes ?? 0) > 0) return { ms: j.ms ?? NaN, applyMs: j.applyMs ?? NaN };
  }
  return { ms: NaN, applyMs: NaN };
}

async function verifyKernel(h: NetlinkHandle, n: number): Promise<void> {
  const k = await kernelEntries(h);
  const got = { routes: k.routes.length, nexthops: k.nexthops.length, arp: k.arp.length, fdb: k.fdb.length };
  for (const [key, v] of Object.entries(got)) if (v !== n) throw new Error(`kernel holds ${v} ${key}, want ${n}: ${JSON.stringify(got)}`);
}

interface LatencyResult { add: number[]; del: number[]; anchor: number[] }

async function latency(h: NetlinkHandle, c: Ctx, count: number): Promise<LatencyResult> {
  const ctl = new AbortController();
  const waiters = new Map<string, () => void>();
  const watch = (async () => {
    for await (const ev of h.watch(['route', 'neigh'], ctl.signal)) {
      if (ev.type === 'overflow') continue;
      const o = ev.object;
      const key = o.kind === 'route' && ev.type === 'new' ? `add:${o.dst}` : o.kind === 'neigh' && ev.type === 'del' && o.family === 4 ? `del:${o.ip}/24` : undefined;
      if (key) { waiters.get(key)?.(); waiters.delete(key); }
    }
  })();
  const wait = (key: string) => new Promise<void>((r, j) => {
    const t = setTimeout(() => j(new Error(`timeout waiting for ${key}`)), 10_000);
    waiters.set(key, () => { clearTimeout(t); r(); });
  });
  const fresh = Array.from({ length: count }, (_, i) => peerOf(40_000 + i));
  const add: number[] = [];
  const del: number[] = [];
  for (const p of fresh) {
    const w = wait(`add:${p.subnet}`);
    const id = await grant(c.etcd);
    const t = performance.now();
    await c.etcd.put(keyOf(p)).value(valueOf(p)).lease(id);
    await w;
    add.push(performance.now() - t);
  }
  for (const p of fresh) {
    const w = wait(`del:${p.subnet.replace('.0/24', '.0')}/24`);
    const t = performance.now();
    await c.etcd.delete().key(keyOf(p));
    await w;
    del.push(performance.now() - t);
  }
  ctl.abort();
  await watch.catch(() => undefined);
  return { add, del, anchor: [] };
}

/** Anchor for event latency: one peer's four entries written by iproute2 (ip -batch + bridge -batch). */
async function iproute2OnePeer(): Promise<number[]> {
  const anchor: number[] = [];
  for (let i = 0; i < 30; i++) anchor.push(await programWithIproute2(undefined, [peerOf(50_000 + i)], { reuseDevice: true }));
  return anchor;
}

interface Resources { rssMiB: number; cpuPct: number; anchorRssMiB: number; anchorCpuPct: number }

async function resources(pid: number, spawnedAt: number): Promise<Resources> {
  const anchor = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, Math.max(3, SETTLE_S) * 1000));
  const a0 = cpuTicks(pid), b0 = cpuTicks(anchor.pid!);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const secs = (performance.now() - t0) / 1000;
  // For lining the window up with the agent's own timeline (e.g. --trace-gc's ms since start).
  if (process.env.TWILL_BENCH_LOG) console.error(`bench: idle window ${((t0 - spawnedAt) / 1000).toFixed(1)}–${((t0 - spawnedAt) / 1000 + secs).toFixed(1)} s after the agent's spawn`);
  const hz = 100;
  const res = {
    rssMiB: rssMiB(pid), cpuPct: ((cpuTicks(pid) - a0) / hz / secs) * 100,
    anchorRssMiB: rssMiB(anchor.pid!), anchorCpuPct: ((cpuTicks(anchor.pid!) - b0) / hz / secs) * 100,
  };
  anchor.kill();
  return res;
}

// Last, so every const above is initialised before the top-level await runs.
if (!args.includes('--inside')) runInSandbox('bench/agent', args); else await inside();
