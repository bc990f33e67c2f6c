// What the agent benchmarks share (bench/agent.ts, bench/soak.ts): the sandbox netns they run in,
// synthetic peers and their etcd keys, and an agent started as deployed.
//
// The driver re-executes itself inside a private netns (`--inside`) so that etcd, the agent and
// the measuring code share one loopback and the kernel state is isolated. Synthetic peers do not
// exist: their FDB entries point at addresses nothing ever sends to, and the netns's only
// uplink is a veth into a dead-end netns, so no packet can leave the sandbox.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { encodeLeaseAttrs } from '../../lib/lease/codec.js';
import { RTPROT_TWILL, type NetlinkHandle, type NlObject } from '../../lib/netlink/types.js';
import { nexthopIdOf, type BaselinePeer } from './iproute2-baseline.js';

const ROOT = resolve(import.meta.dirname, '../../..');
export const TWILLD = join(ROOT, 'bin/twilld.js');
export const PREFIX = '/twill.io/network';
/** Every peer in 10.0.0.0/8; the agent's own subnet from 10.255.x (SubnetMin/Max), apart from theirs. */
export const BENCH_NETCONF = { Network: '10.0.0.0/8', SubnetLen: 24, SubnetMin: '10.255.0.0', SubnetMax: '10.255.255.0', Backend: { Type: 'vxlan', VNI: 1 } };
/** Extra node flags for the agent only, e.g. TWILL_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' (Node 20 refuses --cpu-prof in NODE_OPTIONS). */
const AGENT_NODE_ARGS = (process.env.TWILL_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** The node flags bin/twilld.js's shebang passes (`#!/usr/bin/env -S node <flags>`). */
const SHEBANG_FLAGS = readFileSync(TWILLD, 'utf8').split('\n', 1)[0]!.replace(/^#!\/usr\/bin\/env -S node\s*/, '').split(' ').filter(Boolean);

/** Runs this script again with `--inside` in a fresh netns with an `uplink` (10.250.0.1/24) into a dead end; removes both after. */
export function runInSandbox(name: string, args: string[]): void {
  if (process.getuid?.() !== 0) { console.log(`${name}: needs root (network namespaces); skipped`); return; }
  const ns = `twb${process.pid.toString(36)}`;
  const dead = `${ns}-x`;
  const ip = (...a: string[]) => execFileSync('ip', a, { stdio: 'inherit' });
  try {
    ip('netns', 'add', ns); ip('netns', 'add', dead);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('-n', ns, 'link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'sink', 'netns', dead);
    ip('-n', ns, 'addr', 'add', '10.250.0.1/24', 'dev', 'uplink');
    ip('-n', ns, 'link', 'set', 'uplink', 'up');
    ip('-n', dead, 'link', 'set', 'sink', 'up');
    execFileSync('ip', ['netns', 'exec', ns, process.execPath, process.argv[1]!, ...args, '--inside'], { stdio: 'inherit' });
  } finally {
    for (const n of [ns, dead]) try { execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' }); } catch { /* gone */ }
  }
}

export function peerOf(i: number): BaselinePeer {
  // Subnet 10.(i>>8).(i&255).0/24 inside 10.0.0.0/8, skipping 10.0.0.0/24 (ours is picked by the agent).
  const k = i + 1;
  return { subnet: `10.${k >> 8}.${k & 255}.0/24`, publicIP: `172.${16 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`, vtepMAC: `02:42:${((k >> 16) & 255).toString(16).padStart(2, '0')}:${((k >> 8) & 255).toString(16).padStart(2, '0')}:${(k & 255).toString(16).padStart(2, '0')}:01` };
}
export const keyOf = (p: BaselinePeer, prefix = PREFIX) => `${prefix}/subnets/${p.subnet.replace('/', '-')}`;
export const valueOf = (p: BaselinePeer) => encodeLeaseAttrs({ publicIP: p.publicIP, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: p.vtepMAC } });

/** A fresh 2-hour etcd lease (no keepalive: the benchmarks are shorter). */
export const grant = (etcd: Etcd3): Promise<string> => etcd.lease(7200, { autoKeepAlive: false }).grant();

/**
 * Writes the config and `peers` under each of `prefixes` (twill's by default; flannel's is
 * /coreos.com/network), each peer under its own etcd lease as every agent holds one (n distinct
 * lease ids, not one shared). With several prefixes a peer's copies share that peer's lease: each
 * agent reads only its own prefix, and one grant per peer halves the seeding time.
 */
export async function seedPeers(etcd: Etcd3, peers: readonly BaselinePeer[], prefixes: string | readonly string[] = PREFIX): Promise<void> {
  const all = typeof prefixes === 'string' ? [prefixes] : prefixes;
  for (const prefix of all) await etcd.put(`${prefix}/config`).value(JSON.stringify(BENCH_NETCONF));
  const ids: string[] = [];
  for (let i = 0; i < peers.length; i += 500) ids.push(...await Promise.all(peers.slice(i, i + 500).map(() => grant(etcd))));
  const puts = all.flatMap((prefix) => peers.map((p, i) => ({ key: keyOf(p, prefix), value: valueOf(p), lease: ids[i]! })));
  const txns: Promise<unknown>[] = [];
  for (let i = 0; i < puts.length; i += 128) {
    const ops = puts.slice(i, i + 128).map((x) => etcd.put(x.key).value(x.value).lease(x.lease));
    txns.push(etcd.if(`${all[0]!}/config`, 'Version', '>', 0).then(...ops).commit());
    if (txns.length === 8) await Promise.all(txns.splice(0));
  }
  await Promise.all(txns);
}

/** The agent as deployed: node with the flags of bin/twilld.js's shebang; its stdout collected in `log()`. */
export function spawnAgent(o: { endpoint: string; dir: string; port: number; extra?: string[] }): { agent: ChildProcess; log: () => string } {
  const agent = spawn(process.execPath, [...SHEBANG_FLAGS, ...AGENT_NODE_ARGS, TWILLD, '--etcd-endpoints', o.endpoint, '--iface', 'uplink', '--subnet-file', join(o.dir, 'subnet.env'),
    '--healthz-ip', '127.0.0.1', '--healthz-port', String(o.port), '--log-level', 'info', ...(o.extra ?? [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  let log = '';
  agent.stdout!.on('data', (d: Buffer) => { log += d.toString(); });
  return { agent, log: () => log };
}

export async function waitReady(port: number, agent: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (agent.exitCode !== null) throw new Error(`agent exited (${agent.exitCode}):\n${log().slice(-3000)}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
    if (ok) return;
    // Every probe is work for the agent's event loop while it programs the kernel (at 5 ms it
    // was ≈20 ms of the 20k-peer apply); 20 ms keeps start→ready within ±20 ms of the truth.
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`agent not ready after 120 s:\n${log().slice(-3000)}`);
}

/** What twill holds in the kernel: routes and nexthops of its protocol, ARP and FDB entries on twill.1. */
export async function kernelEntries(h: NetlinkHandle) {
  const dev = (await h.listLinks()).find((l) => l.name === 'twill.1');
  if (!dev) throw new Error('twill.1 missing');
  const [routes, nexthops, arp, fdb] = await Promise.all([
    h.listRoutes({ family: 4, protocol: RTPROT_TWILL }), h.listNexthops(),
    h.listNeighs({ family: 4, ifindex: dev.index }), h.listNeighs({ family: 'bridge', ifindex: dev.index }),
  ]);
  return {
    routes: routes.filter((r) => r.protocol === RTPROT_TWILL), nexthops: nexthops.filter((x) => x.protocol === RTPROT_TWILL),
    arp, fdb: fdb.filter((f) => f.ip),
  };
}

export function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}
/**
 * cpuTicks plus the CPU of child processes it has waited for (cutime + cstime): both agents check
 * their traffic rules by running nft / iptables, and that work is billed to the children.
 */
export function cpuTicksWithChildren(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
}
const statusKiB = (pid: number, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
export const rssMiB = (pid: number) => statusKiB(pid, 'VmRSS') / 1024;
/** Peak RSS since the process started (VmHWM). */
export const hwmMiB = (pid: number) => statusKiB(pid, 'VmHWM') / 1024;

/**
 * The kernel entries one peer needs, agent-neutral: the route to its subnet, the ARP entry of its
 * gateway, the FDB entry of its VTEP MAC, and (twill) the nexthop object the route goes through.
 * flanneld writes the first three (route via the gateway, onlink); twill writes all four.
 */
export function peerEntryKeys(p: BaselinePeer, nexthop: boolean): string[] {
  const keys = [`route ${p.subnet}`, `arp ${p.subnet.split('/')[0]!}`, `fdb ${p.vtepMAC.toLowerCase()}`];
  if (nexthop) keys.push(`nexthop ${nexthopIdOf(p.subnet)}`);
  return keys;
}

function eventKey(o: NlObject): string | undefined {
  switch (o.kind) {
    case 'route': return o.family === 4 && (o.table ?? 254) === 254 ? `route ${o.dst}` : undefined;
    case 'nexthop': return `nexthop ${o.id}`;
    case 'neigh': return o.family === 4 ? `arp ${o.ip}` : o.family === 'bridge' && o.ip ? `fdb ${o.mac.toLowerCase()}` : undefined;
    default: return undefined;
  }
}

interface Waiter { keys: Set<string>; want: boolean; left: Set<string>; done: (t: number) => void; fail: (e: Error) => void }

/**
 * A netlink listener that knows which peer entries the kernel holds, from notifications alone (no
 * dumps: a dump while the agent programs would take CPU from it and lock the tables it writes).
 * Opened before the agent starts, so it sees every entry from the empty state; `waitFor` resolves
 * with the performance.now() at which the last of the given entries appeared (or went).
 */
export class KernelWatch {
  private readonly present = new Set<string>();
  private readonly waiters = new Set<Waiter>();
  private readonly ctl = new AbortController();
  private readonly loop: Promise<void>;
  private error: Error | undefined;

  constructor(h: NetlinkHandle) {
    const events = h.watch(['route', 'nexthop', 'neigh'], this.ctl.signal);
    this.loop = (async () => {
      for await (const ev of events) {
        if (ev.type === 'overflow') {
          // A lost notification would make a count wrong; a larger buffer is the fix, not a guess.
          this.error = new Error('netlink listener overflowed (events lost): raise watchBufferBytes');
          for (const w of this.waiters) w.fail(this.error);
          this.waiters.clear();
          continue;
        }
        const key = eventKey(ev.object);
        if (key === undefined) continue;
        const now = performance.now();
        const isNew = ev.type === 'new';
        if (isNew) this.present.add(key); else this.present.delete(key);
        for (const w of this.waiters) {
          if (!w.keys.has(key)) continue;
          if (isNew === w.want) w.left.delete(key); else w.left.add(key);
          if (w.left.size === 0) { this.waiters.delete(w); w.done(now); }
        }
      }
    })();
  }

  /** Resolves when every key is present (`want` true) or absent (false), with the time it became so. */
  waitFor(keys: readonly string[], want: boolean, timeoutMs = 120_000): Promise<number> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      const all = new Set(keys);
      const left = new Set([...all].filter((k) => this.present.has(k) !== want));
      if (left.size === 0) { resolve(performance.now()); return; }
      const t = setTimeout(() => { this.waiters.delete(w); reject(new Error(`kernel: ${w.left.size} of ${all.size} entries still ${want ? 'missing' : 'present'} after ${timeoutMs} ms (e.g. ${[...w.left].slice(0, 3).join(', ')})`)); }, timeoutMs);
      const w: Waiter = { keys: all, want, left, done: (x) => { clearTimeout(t); resolve(x); }, fail: (e) => { clearTimeout(t); reject(e); } };
      this.waiters.add(w);
    });
  }

  /** How many of `keys` the kernel holds now, as seen by the listener. */
  count(keys: readonly string[]): number { return keys.reduce((n, k) => n + (this.present.has(k) ? 1 : 0), 0); }

  async close(): Promise<void> {
    this.ctl.abort();
    await this.loop.catch(() => undefined);
  }
}
