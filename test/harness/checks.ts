// Cluster-wide checks shared by the e2e tests and `demo --check`. Each returns a list of
// problems (empty = fine) phrased so a failure says which node, which entry and what differed.
import type { Cluster } from './cluster.js';
import { peerEntries, type PeerEntries } from './kernel.js';
import { contains, nthAddress, overlaps } from './ipv4.js';
import type { StoredLease } from './store.js';

const lc = (s: string | undefined): string => (s ?? '').toLowerCase();

/** Every node holds a lease; subnets are distinct, inside Network and of the right length. */
export async function checkSubnets(c: Cluster, network: string, subnetLen: number): Promise<string[]> {
  const problems: string[] = [];
  const leases = await c.store.leases();
  for (const n of c.nodes) {
    const mine = leases.filter((l) => l.publicIP === n.underlayIP);
    if (mine.length !== 1) problems.push(`${n.name}: ${mine.length} leases carry its public IP ${n.underlayIP} (want 1): ${mine.map((l) => l.subnet).join(', ')}`);
    if (!n.subnet) problems.push(`${n.name}: no subnet in its subnet file`);
    else if (mine[0] && mine[0].subnet !== n.subnet) problems.push(`${n.name}: subnet file says ${n.subnet}, stored lease says ${mine[0].subnet}`);
  }
  for (const l of leases) {
    if (!contains(network, l.subnet.split('/')[0]!)) problems.push(`lease ${l.subnet} lies outside ${network}`);
    if (!l.subnet.endsWith(`/${subnetLen}`)) problems.push(`lease ${l.subnet} is not a /${subnetLen}`);
  }
  for (let a = 0; a < leases.length; a++) {
    for (let b = a + 1; b < leases.length; b++) {
      if (overlaps(leases[a]!.subnet, leases[b]!.subnet)) problems.push(`leases ${leases[a]!.subnet} and ${leases[b]!.subnet} overlap`);
    }
  }
  return problems;
}

/** What node `self` must hold for `peers` (stored leases), in peerEntries() form. */
export function expectedEntries(peers: readonly StoredLease[]): PeerEntries {
  return {
    arp: peers.map((l) => `${nthAddress(l.subnet, 0)} ${lc(l.vtepMAC)} PERMANENT`).sort(),
    fdb: peers.map((l) => `${lc(l.vtepMAC)} ${l.publicIP}`).sort(),
    routes: peers.map((l) => `${l.subnet} via ${nthAddress(l.subnet, 0)}`).sort(),
    nexthops: peers.map((l) => nthAddress(l.subnet, 0)).sort(),
  };
}

function diffList(node: string, kind: string, want: readonly string[], got: readonly string[]): string[] {
  const out: string[] = [];
  for (const w of want) if (!got.includes(w)) out.push(`${node}: ${kind} missing: ${w}`);
  for (const g of got) if (!want.includes(g)) out.push(`${node}: ${kind} unexpected: ${g}`);
  if (out.length === 0 && want.length !== got.length) out.push(`${node}: ${kind}: ${got.length} entries, want ${want.length} (duplicates?)`);
  return out;
}

/**
 * Each node (with a running agent, or all in `indices`) holds exactly the ARP, FDB, nexthop and
 * route entries for its peers (every stored lease but its own) and nothing else.
 */
export async function checkPeerEntries(c: Cluster, indices?: readonly number[], isPeer: (l: StoredLease) => boolean = () => true): Promise<string[]> {
  const leases = (await c.store.leases()).filter(isPeer);
  const problems: string[] = [];
  const which = indices ?? c.nodes.filter((n) => n.agent.running).map((n) => n.index);
  await Promise.all(which.map(async (i) => {
    const n = c.node(i);
    const k = await c.kernelState(i);
    if (!k.device) { problems.push(`${n.name}: no ${c.device} device`); return; }
    const want = expectedEntries(leases.filter((l) => l.subnet !== n.subnet));
    const got = peerEntries(k);
    for (const kind of ['arp', 'fdb', 'nexthops', 'routes'] as const) problems.push(...diffList(n.name, kind, want[kind], got[kind]));
  }));
  return problems;
}

/** Polls checkPeerEntries until clean; returns the last problems (empty when converged). */
export async function waitPeerEntries(
  c: Cluster, timeoutMs: number, indices?: readonly number[], isPeer?: (l: StoredLease) => boolean,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await checkPeerEntries(c, indices, isPeer);
    if (p.length === 0 || Date.now() >= deadline) return p;
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface PairResult {
  from: string;           // pod name
  to: string;
  fromNode: number;
  toNode: number;
  ok: boolean;            // connected and the receiver saw the sender's pod address
  seenSource: string | undefined;
  expectedSource: string;
  ms: number;             // TCP connect + reply time
  error?: string;
}

/** TCP from every pod to every pod on another node; the receiver reports the source it saw. */
export async function connectivityMatrix(c: Cluster): Promise<PairResult[]> {
  const pairs = c.pods.flatMap((a) => c.pods.filter((b) => b.node !== a.node).map((b) => [a, b] as const));
  return Promise.all(pairs.map(async ([a, b]) => {
    const r = await c.tcpProbe(a.netns, b.ip, { timeoutSec: 2 });
    const noNat = r.seenSource === a.ip;
    return {
      from: a.name, to: b.name, fromNode: a.node, toNode: b.node,
      ok: r.ok && noNat, seenSource: r.seenSource, expectedSource: a.ip, ms: r.ms,
      ...(r.ok && !noNat ? { error: `receiver saw ${r.seenSource}, not ${a.ip} (NAT)` } : r.error ? { error: r.error } : {}),
    };
  }));
}

export function matrixProblems(m: readonly PairResult[]): string[] {
  return m.filter((p) => !p.ok).map((p) => `${p.from} → ${p.to}: ${p.error ?? 'failed'}`);
}
