// KernelState: the slice of kernel state twill owns, keyed so desired and observed can be diffed
// structurally. Every entry is per peer and independent of the others, which lets a lease event
// re-diff only that peer's keys while the periodic resync diffs everything (same function).
import type { Addr, Neigh, Nexthop, NlObject, Route } from '../../lib/netlink/types.js';

export type EntryKind = 'addr' | 'arp' | 'fdb' | 'nexthop' | 'route';

export interface Entry {
  kind: EntryKind;
  key: string;
  object: NlObject;
  /** Peer (lease key) the entry belongs to, for per-peer status and targeted diffs. */
  owner?: string;
}

export type KernelState = Map<string, Entry>;

/** Write order (ARP → FDB → nexthop → route); deletes run in reverse so the kernel never ARPs. */
export const WRITE_ORDER: readonly EntryKind[] = ['addr', 'arp', 'fdb', 'nexthop', 'route'];

export const keyOf = {
  addr: (a: Addr) => `addr|${a.ifindex}|${a.address}/${a.prefixLen}`,
  arp: (n: Neigh) => `arp|${n.ifindex}|${n.ip}`,
  fdb: (n: Neigh) => `fdb|${n.ifindex}|${n.mac}`,
  nexthop: (n: Nexthop) => `nexthop|${n.id}`,
  route: (r: Route) => `route|${r.table ?? 254}|${r.dst}`,
};

export function addEntry(state: KernelState, kind: EntryKind, object: NlObject, owner?: string): void {
  const key = entryKey(kind, object);
  state.set(key, owner === undefined ? { kind, key, object } : { kind, key, object, owner });
}

export function entryKey(kind: EntryKind, o: NlObject): string {
  switch (kind) {
    case 'addr': return keyOf.addr(o as Addr);
    case 'arp': return keyOf.arp(o as Neigh);
    case 'fdb': return keyOf.fdb(o as Neigh);
    case 'nexthop': return keyOf.nexthop(o as Nexthop);
    case 'route': return keyOf.route(o as Route);
  }
}

/** The fields that matter for equality (ignores kernel-filled extras such as flags we did not set). */
export function sameEntry(a: Entry, b: Entry): boolean {
  const x = a.object as unknown as Record<string, unknown>;
  const y = b.object as unknown as Record<string, unknown>;
  switch (a.kind) {
    case 'addr': return x.address === y.address && x.prefixLen === y.prefixLen;
    case 'arp': return x.mac === y.mac && x.state === y.state;
    case 'fdb': return x.ip === y.ip && x.state === y.state;
    case 'nexthop': return x.gateway === y.gateway && x.ifindex === y.ifindex && Boolean(x.onlink) === Boolean(y.onlink);
    case 'route':
      return x.protocol === y.protocol && x.nhid === y.nhid && x.gateway === y.gateway && (x.nhid !== undefined || x.ifindex === y.ifindex)
        && (x.nhid !== undefined || Boolean(x.onlink) === Boolean(y.onlink));
  }
}

/**
 * A KernelState that also indexes routes by the nexthop they use: the kernel drops such routes
 * silently when the nexthop goes, and the reconciler must find them without scanning 20k entries.
 */
export class ObservedState extends Map<string, Entry> {
  // The route key, or a Set only when several routes share a nexthop (rare: a Set per route
  // costs ≈130 bytes, 2.6 MB at 20k peers).
  private readonly byNexthop = new Map<number, string | Set<string>>();

  constructor(entries?: Iterable<readonly [string, Entry]>) {
    super();
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  override set(key: string, e: Entry): this {
    this.unindex(key);
    super.set(key, e);
    const nhid = e.kind === 'route' ? (e.object as { nhid?: number }).nhid : undefined;
    if (nhid !== undefined) {
      const h = this.byNexthop.get(nhid);
      if (h === undefined || h === key) this.byNexthop.set(nhid, key);
      else if (typeof h === 'string') this.byNexthop.set(nhid, new Set([h, key]));
      else h.add(key);
    }
    return this;
  }

  override delete(key: string): boolean {
    this.unindex(key);
    return super.delete(key);
  }

  /** Keys of routes that go through nexthop `id`. */
  routesVia(id: number): string[] {
    const h = this.byNexthop.get(id);
    return h === undefined ? [] : typeof h === 'string' ? [h] : [...h];
  }

  private unindex(key: string): void {
    const old = this.get(key);
    const nhid = old?.kind === 'route' ? (old.object as { nhid?: number }).nhid : undefined;
    if (nhid === undefined) return;
    const h = this.byNexthop.get(nhid);
    if (h === key) this.byNexthop.delete(nhid);
    else if (typeof h === 'object') {
      h.delete(key);
      if (h.size === 1) this.byNexthop.set(nhid, h.values().next().value!);
    }
  }
}
