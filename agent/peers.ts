// PeerTable: every lease we know, its verdict, and the kernel entries the valid ones need.
//
// Validation happens before anything is programmed (a bad lease must never reach the kernel):
// subnet inside the network and of the configured length, not ours, a unicast public IP that is
// not ours, a unicast VTEP MAC that is not ours, the vxlan backend with our VNI. Because valid
// subnets are aligned and all of one length, two of them overlap exactly when they are equal, so
// overlap detection is a map lookup and the table can be updated one lease at a time.
//
// Conflicts (two peers claiming one subnet or one VTEP MAC) are decided by age, the same way on
// every node: the lease created first (Lease.created — etcd's create revision, a Node's
// creationTimestamp — then the key) keeps it, so a newcomer can never take an incumbent off the
// network; the loser is ignored until the winner goes, then takes over. Every verdict is kept
// per store key: a key that is deleted or corrected leaves the books at once.
import { unicastHostProblem } from '../lib/ip/host.js';
import { canonicalMac, macProblem } from '../lib/ip/mac.js';
import { contains, formatPrefix, tryParsePrefix, type Prefix } from '../lib/ip/prefix.js';
import type { Lease } from '../lib/subnet/types.js';
import { sameLeaseData } from '../lib/lease/diff.js';
import { localEntries, PeerSource, subnetTextOf as textOf, type DeviceInfo, type PeerSpec } from './backend/vxlan/desired.js';
import { formatIp } from '../lib/ip/addr.js';
import type { DesiredState, Entry } from './reconcile/state.js';

export type InvalidReason =
  | 'decode' | 'backend' | 'vni' | 'subnet' | 'outside-network' | 'subnet-length'
  | 'overlaps-local' | 'overlaps-peer' | 'public-ip' | 'vtep-mac' | 'duplicate-mac' | 'own-public-ip' | 'own-vtep-mac';

export interface PeerContext {
  network: Prefix;
  subnetLen: number;
  vni: number;
  /** This node's VTEP MAC (canonical) and public IP: a peer claiming either is never programmed. */
  ownMac?: string | undefined;
  ownPublicIP?: string | undefined;
}

interface PeerRecord {
  lease?: Lease;
  spec?: PeerSpec;            // set when the lease is well-formed (may still overlap)
  invalid?: { reason: InvalidReason; message: string };
  /** Builds the peer's kernel entries; set only while the peer is valid and the device known. */
  source?: PeerSource;
}

/** Checks a lease on its own (everything except overlaps). Pure. */
export function checkLease(lease: Lease, ctx: PeerContext): { spec: PeerSpec } | { reason: InvalidReason; message: string } {
  const a = lease.attrs;
  if (a.backendType !== 'vxlan') return { reason: 'backend', message: `BackendType ${JSON.stringify(a.backendType)} is not supported (want "vxlan")` };
  const data = a.backendData as { VNI?: unknown; VtepMAC?: unknown } | undefined;
  if (!data || data.VNI !== ctx.vni) return { reason: 'vni', message: `BackendData.VNI ${JSON.stringify(data?.VNI)} does not match ours (${ctx.vni})` };
  const subnet = tryParsePrefix(lease.subnet, { family: 4 });
  if (!subnet) return { reason: 'subnet', message: `subnet ${JSON.stringify(lease.subnet)} is not an IPv4 prefix` };
  if (!contains(ctx.network, subnet)) return { reason: 'outside-network', message: `subnet ${lease.subnet} lies outside the network ${formatPrefix(ctx.network)}` };
  if (subnet.len !== ctx.subnetLen) return { reason: 'subnet-length', message: `subnet ${lease.subnet} is not a /${ctx.subnetLen}` };
  const hostProblem = typeof a.publicIP === 'string' ? unicastHostProblem(a.publicIP) : undefined;
  const ipProblem = typeof a.publicIP !== 'string' ? 'is missing' : hostProblem && `is ${hostProblem}`;
  if (ipProblem) return { reason: 'public-ip', message: `PublicIP ${JSON.stringify(a.publicIP)} ${ipProblem}` };
  if (a.publicIP === ctx.ownPublicIP) return { reason: 'own-public-ip', message: `PublicIP ${a.publicIP} is this node's own public IP` };
  const mac = typeof data.VtepMAC === 'string' ? unicastMac(data.VtepMAC) : undefined;
  if (!mac) {
    const macP = typeof data.VtepMAC === 'string' ? macProblem(data.VtepMAC) ?? 'is not a unicast MAC' : 'is missing';
    return { reason: 'vtep-mac', message: `VtepMAC ${JSON.stringify(data.VtepMAC)} ${macP}` };
  }
  if (mac === ctx.ownMac) return { reason: 'own-vtep-mac', message: `VtepMAC ${mac} is this node's own VTEP MAC` };
  return { spec: { key: lease.key, subnet, publicIP: a.publicIP, vtepMAC: mac, subnetText: formatPrefix(subnet) } };
}

/** The canonical text of a unicast, non-zero MAC, or undefined. */
function unicastMac(s: string): string | undefined {
  const canon = canonicalMac(s);
  if (!canon || (parseInt(canon.slice(0, 2), 16) & 1) === 1 || canon === '00:00:00:00:00:00') return undefined;
  return canon;
}

export interface PeerView {
  key: string;
  lease?: Lease;
  valid: boolean;
  invalid?: { reason: InvalidReason; message: string };
  /** The peer's kernel entries (built on each call; empty unless valid). */
  entries: readonly Entry[];
}

export class PeerTable {
  private readonly peers = new Map<string, PeerRecord>();
  // Holders by subnet text / VTEP MAC: the lease key itself, a Set only when shared (a Set per
  // peer costs ~100 bytes more at 20k peers, and sharing is the rare, invalid case).
  private readonly bySubnet: Holders = new Map();
  private readonly byMac: Holders = new Map();
  private localSubnetText: string | undefined;
  private localKey: string | undefined;
  private localSubnet: Prefix | undefined;
  private readonly local = new Map<string, Entry>();
  private dev: DeviceInfo | undefined;
  private entryCount = 0;
  private readonly view: DesiredState;

  private readonly ctxValue: PeerContext;
  private readonly onInvalid: ((key: string, reason: InvalidReason, message: string) => void) | undefined;
  private readonly onAccepted: ((key: string, previous: InvalidReason) => void) | undefined;

  /** `onInvalid`: a key got a new problem (logged once per distinct problem); `onAccepted`: a
   *  key that had one is now valid (e.g. a conflict's loser taking over when the winner left). */
  constructor(ctx: PeerContext, onInvalid?: (key: string, reason: InvalidReason, message: string) => void,
    onAccepted?: (key: string, previous: InvalidReason) => void) {
    this.ctxValue = ctx;
    this.onInvalid = onInvalid;
    this.onAccepted = onAccepted;
    this.view = this.makeView();
  }

  get ctx(): PeerContext { return this.ctxValue; }

  /**
   * The union of every valid peer's entries and our local ones, built on demand (see PeerSource):
   * get(key) finds the owning peer through the subnet / MAC indexes the table keeps anyway.
   */
  desired(): DesiredState { return this.view; }

  private makeView(): DesiredState {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const t = this;
    const view: DesiredState = {
      get: (key) => t.local.get(key) ?? t.ownerOf(key)?.source?.entry(key),
      has: (key) => view.get(key) !== undefined,
      *values() {
        yield* t.local.values();
        for (const r of t.peers.values()) if (r.source) yield* r.source.entries();
      },
      get size() { return t.local.size + t.entryCount; },
      holds: (source) => t.peers.get(source.owner)?.source === source,
    };
    return view;
  }

  /** The valid peer that would own the entry `key` (by its subnet, nexthop id or VTEP MAC). */
  private ownerOf(key: string): PeerRecord | undefined {
    const bar = key.indexOf('|');
    const kind = key.slice(0, bar);
    const rest = key.slice(key.indexOf('|', bar + 1) + 1);   // after "kind|ifindex-or-table|"
    let holder: string | Set<string> | undefined;
    switch (kind) {
      case 'route': holder = this.bySubnet.get(rest); break;
      case 'arp': holder = this.bySubnet.get(`${rest}/${this.ctxValue.subnetLen}`); break;
      case 'fdb': holder = this.byMac.get(rest); break;
      case 'nexthop': {
        // The nexthop id is the subnet's IPv4 network address (desired.ts, nexthopId).
        const id = Number(key.slice(bar + 1));
        holder = Number.isInteger(id) && id >= 0 && id <= 0xffffffff
          ? this.bySubnet.get(`${formatIp({ family: 4, value: BigInt(id) })}/${this.ctxValue.subnetLen}`) : undefined;
        break;
      }
      default: return undefined;
    }
    if (typeof holder === 'string') return this.peers.get(holder);
    // Shared: only the conflict's winner has a source (reevaluate).
    for (const k of holders(holder)) { const r = this.peers.get(k); if (r?.source) return r; }
    return undefined;
  }

  /** Our own lease: never a peer; its subnet is off limits to peers. Returns dirty entry keys. */
  setLocal(key: string, subnet: Prefix): Set<string> {
    this.localKey = key;
    this.localSubnet = subnet;
    this.localSubnetText = formatPrefix(subnet);
    return this.rebuildAll();
  }

  /** The device (index changes when it is recreated). Returns dirty keys (everything). */
  setDevice(dev: DeviceInfo): Set<string> {
    this.dev = dev;
    return this.rebuildAll();
  }

  upsert(lease: Lease): Set<string> {
    const dirty = new Set<string>();
    this.upsertInto(lease, dirty);
    return dirty;
  }

  private upsertInto(lease: Lease, dirty: Set<string> | undefined): void {
    const old = this.peers.get(lease.key);
    const touched: string[] = [];
    if (old?.spec) touched.push(textOf(old.spec), old.spec.vtepMAC);
    this.unindex(lease.key, old);
    // The old verdict stays until re-checked, so an unchanged problem is not reported twice.
    const rec: PeerRecord = { lease };
    if (old?.source) rec.source = old.source;
    if (old?.invalid) rec.invalid = old.invalid;
    this.peers.set(lease.key, rec);
    if (lease.key !== this.localKey) {
      const c = checkLease(lease, this.ctxValue);
      if ('spec' in c) {
        rec.spec = c.spec;
        touched.push(textOf(c.spec), c.spec.vtepMAC);
        this.index(lease.key, c.spec);
      } else {
        rec.invalid = c;
        // Reported here: reevaluate() only sees the new record, whose reason is already set.
        if (old?.invalid?.reason !== c.reason || old.invalid.message !== c.message) this.onInvalid?.(lease.key, c.reason, c.message);
      }
    }
    this.reevaluate(lease.key, dirty);
    // Only peers that still share a subnet or MAC with someone need a second look.
    for (const s of touched) {
      const h = this.bySubnet.get(s) ?? this.byMac.get(s);
      if (h === undefined || h === lease.key) continue;
      for (const k of holders(h)) if (k !== lease.key) this.reevaluate(k, dirty);
    }
  }

  remove(key: string): Set<string> {
    const dirty = new Set<string>();
    this.removeInto(key, dirty);
    return dirty;
  }

  private removeInto(key: string, dirty: Set<string> | undefined): void {
    const old = this.peers.get(key);
    if (!old) return;
    this.unindex(key, old);
    this.setSource(old, undefined, dirty);
    this.peers.delete(key);
    if (old.spec) for (const s of [textOf(old.spec), old.spec.vtepMAC]) for (const k of this.sharers(s)) this.reevaluate(k, dirty);
  }

  /**
   * A relist: the full set. Returns dirty keys — or, with `dirtyKeys` false, nothing, for a
   * caller that is about to reconcile everything anyway (at 20k peers collecting the 80k keys
   * meant building every peer's entries once just to name them: ≈60 ms and their garbage).
   */
  replaceAll(leases: readonly Lease[], dirtyKeys = true, undecodable: readonly { key: string; reason: string }[] = []): Set<string> {
    const out = new Set<string>();
    const dirty = dirtyKeys ? out : undefined;
    const keep = new Set(leases.map((l) => l.key));
    for (const u of undecodable) keep.add(u.key);
    for (const key of [...this.peers.keys()]) if (!keep.has(key)) this.removeInto(key, dirty);
    for (const l of leases) {
      const prev = this.peers.get(l.key);
      if (prev?.lease && sameLeaseData(prev.lease, l) && prev.lease.created === l.created) { prev.lease = l; continue; }
      this.upsertInto(l, dirty);
    }
    for (const u of undecodable) this.undecodableInto(u.key, u.reason, dirty);
    return out;
  }

  /** Marks an undecodable stored entry (counted and shown, never programmed; logged once per
   *  distinct problem of the key). */
  markUndecodable(key: string, message: string): Set<string> {
    const dirty = new Set<string>();
    this.undecodableInto(key, message, dirty);
    return dirty;
  }

  private undecodableInto(key: string, message: string, dirty: Set<string> | undefined): void {
    const old = this.peers.get(key);
    if (old && !old.lease && old.invalid?.message === message) return;
    this.removeInto(key, dirty);
    this.peers.set(key, { invalid: { reason: 'decode', message } });
    this.onInvalid?.(key, 'decode', message);
  }

  views(): PeerView[] {
    const out: PeerView[] = [];
    for (const [key, r] of this.peers) {
      if (key === this.localKey) continue;
      out.push({ key, lease: r.lease, valid: !r.invalid, invalid: r.invalid, entries: r.source?.entries() ?? [] });
    }
    return out;
  }

  counts(): { valid: number; invalid: number } {
    let valid = 0, invalid = 0;
    for (const [key, r] of this.peers) {
      if (key === this.localKey) continue;
      if (r.invalid) invalid++; else valid++;
    }
    return { valid, invalid };
  }

  private index(key: string, spec: PeerSpec): void {
    holderAdd(this.bySubnet, textOf(spec), key);
    holderAdd(this.byMac, spec.vtepMAC, key);
  }

  private unindex(key: string, rec: PeerRecord | undefined): void {
    if (!rec?.spec) return;
    holderDelete(this.bySubnet, textOf(rec.spec), key);
    holderDelete(this.byMac, rec.spec.vtepMAC, key);
  }

  /** Peers sharing a subnet (prefix text) or a VTEP MAC with someone. */
  private sharers(k: string): string[] {
    return holders(this.bySubnet.get(k) ?? this.byMac.get(k));
  }

  /** Recomputes one peer's verdict (overlaps) and entries. */
  private reevaluate(key: string, dirty: Set<string> | undefined): void {
    const rec = this.peers.get(key);
    if (!rec?.lease || key === this.localKey) return;
    const before = rec.invalid?.reason;
    if (rec.spec) {
      const s = textOf(rec.spec);
      const bySubnet = this.bySubnet.get(s);
      const byMac = this.byMac.get(rec.spec.vtepMAC);
      const subnetWinner = this.winner(bySubnet);
      const macWinner = this.winner(byMac);
      if (this.localSubnetText === s) {
        rec.invalid = { reason: 'overlaps-local', message: `subnet ${s} is our own subnet` };
      } else if (subnetWinner !== undefined && subnetWinner !== key) {
        rec.invalid = { reason: 'overlaps-peer', message: `subnet ${s} is held by ${subnetWinner}, ${this.firstNote(subnetWinner, key)}` };
      } else if (macWinner !== undefined && macWinner !== key) {
        rec.invalid = { reason: 'duplicate-mac', message: `VtepMAC ${rec.spec.vtepMAC} is held by ${macWinner}, ${this.firstNote(macWinner, key)}` };
      } else {
        rec.invalid = undefined;
      }
    }
    if (rec.invalid && rec.invalid.reason !== before) this.onInvalid?.(key, rec.invalid.reason, rec.invalid.message);
    if (!rec.invalid && before !== undefined) this.onAccepted?.(key, before);
    if (!rec.invalid && rec.source && rec.source.spec === rec.spec && rec.source.dev === this.dev) return;
    this.setSource(rec, !rec.invalid && rec.spec && this.dev ? new PeerSource(rec.spec, this.dev) : undefined, dirty);
  }

  /** The key among `h` whose lease came first (Lease.created, then the key): it keeps the claim. */
  private winner(h: string | Set<string> | undefined): string | undefined {
    if (h === undefined || typeof h === 'string') return h;
    let best: string | undefined;
    for (const k of h) if (best === undefined || this.before(k, best)) best = k;
    return best;
  }

  private before(a: string, b: string): boolean {
    const ca = this.peers.get(a)?.lease?.created ?? Infinity, cb = this.peers.get(b)?.lease?.created ?? Infinity;
    return ca !== cb ? ca < cb : a < b;
  }

  /** Why `winner` keeps the claim, both keys named: "which was there first (created 5, this one 9); ignored while it holds it". */
  private firstNote(winner: string, loser: string): string {
    const c = (k: string) => this.peers.get(k)?.lease?.created ?? 'unknown';
    return `which was there first (created ${c(winner)}, ${loser} ${c(loser)}); ignored while it holds it`;
  }

  /** Replaces a peer's source; every key it had or now has is dirty (when collected). */
  private setSource(rec: PeerRecord, source: PeerSource | undefined, dirty: Set<string> | undefined): void {
    if (rec.source) {
      this.entryCount -= rec.source.size;
      if (dirty) for (const e of rec.source.entries()) dirty.add(e.key);
    }
    rec.source = source;
    if (source) {
      this.entryCount += source.size;
      if (dirty) for (const e of source.entries()) dirty.add(e.key);
    }
  }

  private rebuildAll(): Set<string> {
    const dirty = new Set<string>();
    for (const k of this.local.keys()) dirty.add(k);
    this.local.clear();
    if (this.localSubnet && this.dev) {
      for (const e of localEntries(this.localSubnet, this.dev)) {
        this.local.set(e.key, e);
        dirty.add(e.key);
      }
    }
    // Our own key may have been stored as a peer before we knew it was ours.
    if (this.localKey && this.peers.get(this.localKey)?.spec) {
      const rec = this.peers.get(this.localKey)!;
      this.unindex(this.localKey, rec);
      rec.spec = undefined;
      this.setSource(rec, undefined, dirty);
    }
    for (const key of this.peers.keys()) this.reevaluate(key, dirty);
    return dirty;
  }
}

type Holders = Map<string, string | Set<string>>;


function holderAdd(m: Holders, k: string, key: string): void {
  const h = m.get(k);
  if (h === undefined || h === key) m.set(k, key);
  else if (typeof h === 'string') m.set(k, new Set([h, key]));
  else h.add(key);
}

function holderDelete(m: Holders, k: string, key: string): void {
  const h = m.get(k);
  if (h === key) m.delete(k);
  else if (typeof h === 'object') {
    h.delete(key);
    if (h.size === 1) m.set(k, h.values().next().value!);
    else if (h.size === 0) m.delete(k);
  }
}

function holders(h: string | Set<string> | undefined): string[] {
  return h === undefined ? [] : typeof h === 'string' ? [h] : [...h];
}
