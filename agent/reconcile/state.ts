// KernelState: the slice of kernel state twill owns, keyed so desired and observed can be diffed
// structurally. Every entry is per peer and independent of the others, which lets a lease event
// re-diff only that peer's keys while the periodic resync diffs everything (same function).
import type { Addr, Neigh, Nexthop, NlObject, Route } from '../../lib/netlink/types.js';

export type EntryKind = 'addr' | 'arp' | 'fdb' | 'nexthop' | 'route';

export interface Entry {
  kind: EntryKind;
  key: string;
  object: NlObject;
  /** What built the entry (a peer), when it can build it again: the observed cache keeps this. */
  source?: EntrySource;
}

/** An immutable builder of entries (one peer on one device); equal sources build equal entries. */
export interface EntrySource {
  /** The lease key of the peer. */
  readonly owner: string;
  entry(key: string): Entry | undefined;
  /** The kernel object of the entry of `kind` (no key or Entry built), if the source has one. */
  object(kind: EntryKind): NlObject | undefined;
}

export type KernelState = Map<string, Entry>;

/** The desired state as the reconciler reads it: a Map, or a view that builds entries on demand. */
export interface DesiredState {
  get(key: string): Entry | undefined;
  has(key: string): boolean;
  /** Every desired entry. */
  values(): Iterable<Entry>;
  readonly size: number;
  /**
   * Whether `source` is still what builds its owner's entries (no entry built: the resync's scan
   * checks 20k cached entries with this). Optional: without it the scan walks values().
   */
  holds?(source: EntrySource): boolean;
}

/** Write order (ARP → FDB → nexthop → route); deletes run in reverse so the kernel never ARPs. */
export const WRITE_ORDER: readonly EntryKind[] = ['addr', 'arp', 'fdb', 'nexthop', 'route'];

export const keyOf = {
  addr: (a: Addr) => `addr|${a.ifindex}|${a.address}/${a.prefixLen}`,
  arp: (n: Neigh) => `arp|${n.ifindex}|${n.ip}`,
  fdb: (n: Neigh) => `fdb|${n.ifindex}|${n.mac}`,
  nexthop: (n: Nexthop) => `nexthop|${n.id}`,
  route: (r: Route) => `route|${r.table ?? 254}|${r.dst}`,
};

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
  if (a.source !== undefined && a.source === b.source && a.key === b.key) return true;
  return sameObject(a.kind, a.object, b.object);
}

/** sameEntry on bare objects of one kind. */
export function sameObject(kind: EntryKind, a: NlObject, b: NlObject): boolean {
  const x = a as unknown as Record<string, unknown>;
  const y = b as unknown as Record<string, unknown>;
  switch (kind) {
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
 * The observed-state cache: a KernelState that stores compactly and indexes routes by nexthop.
 *
 * An entry that came from a source (i.e. equals what a peer wants) is stored as that source, and
 * rebuilt on get(): at 20k peers the cache then holds 80k map slots and keys but no entry objects.
 * recorded(key, e) is the identity test the reconciler uses for its own writes.
 *
 * Routes are indexed by the nexthop they use: the kernel drops such routes silently when the
 * nexthop goes, and the reconciler must find them without scanning 20k entries. The index holds
 * the route key, or a Set only when several routes share a nexthop (a Set per route costs ≈130
 * bytes, 2.6 MB at 20k peers).
 */
export class ObservedState {
  private readonly raw = new Map<string, Entry | EntrySource>();
  private readonly byNexthop = new Map<number, string | Set<string>>();
  private touched: Set<string> | undefined;

  constructor(entries?: Iterable<readonly [string, Entry]>) {
    if (entries) for (const [k, v] of entries) this.set(k, v);
  }

  get size(): number { return this.raw.size; }

  has(key: string): boolean { return this.raw.has(key); }

  keys(): IterableIterator<string> { return this.raw.keys(); }

  get(key: string): Entry | undefined {
    const v = this.raw.get(key);
    return v === undefined || isEntry(v) ? v : v.entry(key);
  }

  /** Whether the cache holds an entry equal to `e` under `key` (without building it). */
  matches(key: string, e: Entry): boolean {
    const v = this.raw.get(key);
    if (v === undefined) return false;
    if (isEntry(v)) return sameEntry(v, e);
    const o = v.object(e.kind);
    return o !== undefined && sameObject(e.kind, o, e.object);
  }

  /** Whether `e` itself (or its source) is what the cache holds for `key`. */
  recorded(key: string, e: Entry): boolean {
    const v = this.raw.get(key);
    return v !== undefined && (v === e || (e.source !== undefined && v === e.source));
  }

  /**
   * Records every key set or deleted from now on (until untrack()): the keys a kernel dump taken
   * meanwhile may show out of date (Reconciler.resync merges the dump with these).
   */
  track(): Set<string> { return (this.touched = new Set()); }

  untrack(): void { this.touched = undefined; }

  set(key: string, e: Entry): this {
    this.touched?.add(key);
    this.unindex(key);
    // Only sources build entries that point back at them, so the source rebuilds this one.
    this.raw.set(key, e.source ?? e);
    const nhid = e.kind === 'route' ? (e.object as { nhid?: number }).nhid : undefined;
    if (nhid !== undefined) {
      const h = this.byNexthop.get(nhid);
      if (h === undefined || h === key) this.byNexthop.set(nhid, key);
      else if (typeof h === 'string') this.byNexthop.set(nhid, new Set([h, key]));
      else h.add(key);
    }
    return this;
  }

  delete(key: string): boolean {
    this.touched?.add(key);
    this.unindex(key);
    return this.raw.delete(key);
  }

  /** The raw slots: an entry, or the source that builds it (see the class comment). */
  slots(): IterableIterator<[string, Entry | EntrySource]> { return this.raw.entries(); }

  *entries(): IterableIterator<[string, Entry]> {
    for (const key of this.raw.keys()) yield [key, this.get(key)!];
  }

  [Symbol.iterator](): IterableIterator<[string, Entry]> { return this.entries(); }

  /** Keys of routes that go through nexthop `id`. */
  routesVia(id: number): string[] {
    const h = this.byNexthop.get(id);
    return h === undefined ? [] : typeof h === 'string' ? [h] : [...h];
  }

  private unindex(key: string): void {
    if (!key.startsWith('route|')) return;
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

export function isEntry(v: Entry | EntrySource): v is Entry {
  return (v as Entry).kind !== undefined;
}
