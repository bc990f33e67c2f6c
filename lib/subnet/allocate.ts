// The acquisition decision, shared by every store that allocates subnets itself (etcd, memory):
// given the stored entries and our attributes, decide what to do, purely. The store then
// carries the plan out atomically (etcd: a guarded transaction) and, if it lost a race,
// asks again with a fresh view.
//
// Order (flannel's, plus reservations):
//   1. an entry whose PublicIP is ours and fits the config → reuse it (keep the subnet);
//      a reservation (no etcd lease) is preferred over a leased entry;
//   2. otherwise previousSubnet (from the subnet file) if it fits and nothing overlaps it;
//   3. otherwise a uniformly random free subnet in [SubnetMin, SubnetMax] (per family).
// Every stored entry blocks the subnets it overlaps — leases, reservations and entries whose
// value does not decode alike. Leased (non-reserved) entries carrying our PublicIP that no
// longer fit the config are returned as `stale` for the store to delete; reservations are
// never deleted or taken over by another node.
import type { NetConf } from '../config/types.js';
import type { Lease, LeaseAttrs } from './types.js';
import { invalid, TwillError } from '../errors.js';
import { BITS, formatIp, parseIp, tryParseIp, type Family } from '../ip/addr.js';
import { canonicalMac } from '../ip/mac.js';
import { decodeLease, type DecodeResult } from '../lease/codec.js';
import { decodeSubnetKey } from '../lease/key.js';
import { contains, formatPrefix, overlaps, parsePrefix, subnetIndexOf, tryParsePrefix, type Prefix } from '../ip/prefix.js';
import { freeSubnetCount, pickFreeSubnet, type PickRange } from '../ip/pick.js';

/** One stored entry, as the allocator needs it. */
export interface StoredEntry {
  key: string;
  subnet: string;          // decoded from the key ("" when IPv6-only)
  ipv6Subnet?: string;
  /** Decoded value; undefined when the value is invalid (the entry still blocks its subnet). */
  lease?: Lease;
  /** No store lease attached (etcd: lease id 0). Never taken by another node. */
  reservation: boolean;
}

export type AcquirePlan =
  | { kind: 'reuse'; entry: StoredEntry & { lease: Lease } }
  | { kind: 'create'; subnet: string; ipv6Subnet?: string; source: 'previous' | 'random' };

export interface AcquireDecision {
  plan: AcquirePlan;
  /** Our own leased entries that no longer fit the config: delete them first. */
  stale: StoredEntry[];
  /** Human-readable notes for the log (why previousSubnet was not used, ...). */
  notes: string[];
}

export interface AcquireInput {
  conf: NetConf;
  entries: readonly StoredEntry[];
  attrs: LeaseAttrs;
  previousSubnet?: string;
  random?: () => number;
}

/** The [SubnetMin, SubnetMax] pick range of one family, or undefined when it is disabled. */
export function pickRange(conf: NetConf, family: Family): PickRange | undefined {
  const enabled = family === 4 ? conf.enableIPv4 : conf.enableIPv6;
  const net = family === 4 ? conf.network : conf.ipv6Network;
  const min = family === 4 ? conf.subnetMin : conf.ipv6SubnetMin;
  const max = family === 4 ? conf.subnetMax : conf.ipv6SubnetMax;
  if (!enabled || !net || !min || !max) return undefined;
  const network = parsePrefix(net);
  const len = family === 4 ? conf.subnetLen : conf.ipv6SubnetLen;
  const at = (s: string) => subnetIndexOf(network, len, tryParseIp(s)!.value);
  return { network, subnetLen: len, min: at(min), max: at(max) };
}

/** Why `subnet` cannot be a node subnet of this family under `conf` (or undefined if it can). */
export function subnetProblem(conf: NetConf, family: Family, subnet: string | undefined, opts: { inRange: boolean }): string | undefined {
  const range = pickRange(conf, family);
  const name = family === 4 ? 'subnet' : 'IPv6 subnet';
  if (!range) return subnet ? `${name} ${subnet} given but IPv${family} is disabled` : undefined;
  if (!subnet) return `no ${name} but IPv${family} is enabled`;
  const p = tryParsePrefix(subnet, { family });
  if (!p) return `${name} ${JSON.stringify(subnet)} is not an IPv${family} prefix`;
  if (p.len !== range.subnetLen) return `${name} ${subnet} is not a /${range.subnetLen}`;
  if (!contains(range.network, p)) return `${name} ${subnet} is outside the network ${formatPrefix(range.network)}`;
  if (opts.inRange) {
    const i = subnetIndexOf(range.network, range.subnetLen, p.addr);
    if (i < range.min || i > range.max) return `${name} ${subnet} is outside [${describeBounds(range)}]`;
  }
  return undefined;
}

function describeBounds(r: PickRange): string {
  const size = 1n << BigInt(BITS[r.network.family] - r.subnetLen);
  const f = (i: bigint) => formatIp({ family: r.network.family, value: r.network.addr + i * size });
  return `${f(r.min)}, ${f(r.max)}`;
}

/** Whether an entry fits the config for reuse (both families, inside [SubnetMin, SubnetMax]). */
export function fitsConfig(conf: NetConf, e: { subnet: string; ipv6Subnet?: string }): string | undefined {
  return subnetProblem(conf, 4, e.subnet, { inRange: true }) ?? subnetProblem(conf, 6, e.ipv6Subnet, { inRange: true });
}

/** Whether a stored lease was published by the node with these attributes. */
export function isOurs(lease: Lease, attrs: LeaseAttrs): boolean {
  if (attrs.publicIP) return lease.attrs.publicIP === attrs.publicIP;
  return !!attrs.publicIPv6 && lease.attrs.publicIPv6 === attrs.publicIPv6;
}

function takenOf(entries: readonly StoredEntry[], family: Family): Prefix[] {
  const out: Prefix[] = [];
  for (const e of entries) {
    const s = family === 4 ? e.subnet : e.ipv6Subnet;
    const p = s ? tryParsePrefix(s, { family }) : undefined;
    if (p) out.push(p);
  }
  return out;
}

function exhausted(conf: NetConf, range: PickRange, stored: number): TwillError {
  const fam = range.network.family;
  const total = range.max - range.min + 1n;
  const [minName, maxName] = fam === 4 ? ['SubnetMin', 'SubnetMax'] : ['IPv6SubnetMin', 'IPv6SubnetMax'];
  const [lo, hi] = describeBounds(range).split(', ');
  return new TwillError('SUBNETS_EXHAUSTED',
    `out of subnets: no free /${range.subnetLen} left in ${fam === 4 ? 'Network' : 'IPv6Network'} ${formatPrefix(range.network)} ` +
    `between ${minName} ${lo} and ${maxName} ${hi}: all ${total} subnets in the range are taken ` +
    `(${stored} leases and reservations stored); remove stale leases or widen the range`,
    { field: fam === 4 ? 'Network' : 'IPv6Network', value: conf.network ?? conf.ipv6Network, rule: 'a free subnet must remain' });
}

function previousCandidate(input: AcquireInput, taken: Record<Family, Prefix[]>, notes: string[]): { v4?: string; v6?: string } | undefined {
  const prev = input.previousSubnet;
  if (!prev) return undefined;
  const p = tryParsePrefix(prev, { normalize: false });
  if (!p) { notes.push(`previous subnet ${JSON.stringify(prev)} is not a prefix; ignored`); return undefined; }
  const conf = input.conf;
  // The subnet file records the IPv4 subnet, or the IPv6 one on an IPv6-only node.
  if (p.family === 6 && conf.enableIPv4) { notes.push(`previous subnet ${prev} is IPv6 but IPv4 is enabled; ignored`); return undefined; }
  const problem = subnetProblem(conf, p.family, formatPrefix(p), { inRange: true });
  if (problem) { notes.push(`previous subnet ${prev} does not fit the network config (${problem}); ignored`); return undefined; }
  const holder = taken[p.family].find((t) => overlaps(t, p));
  if (holder) { notes.push(`previous subnet ${prev} is taken (${formatPrefix(holder)} is stored); picking another`); return undefined; }
  return p.family === 4 ? { v4: formatPrefix(p) } : { v6: formatPrefix(p) };
}

function pick(conf: NetConf, family: Family, taken: Prefix[], stored: number, random?: () => number): string | undefined {
  const range = pickRange(conf, family);
  if (!range) return undefined;
  const p = pickFreeSubnet(range, taken, random);
  if (!p) throw exhausted(conf, range, stored);
  return formatPrefix(p);
}

/** Decides how to acquire a lease (throws SUBNETS_EXHAUSTED when no subnet is free). */
export function planAcquire(input: AcquireInput): AcquireDecision {
  const { conf, entries, attrs } = input;
  const notes: string[] = [];
  const stale: StoredEntry[] = [];
  const mine = entries.filter((e): e is StoredEntry & { lease: Lease } => !!e.lease && isOurs(e.lease, attrs));
  const fitting = mine.filter((e) => {
    const problem = fitsConfig(conf, e);
    if (!problem) return true;
    if (e.reservation) notes.push(`reservation ${e.key} carries our public IP but does not fit the network config (${problem}); left alone`);
    else { notes.push(`lease ${e.key} carries our public IP but does not fit the network config (${problem}); deleting it`); stale.push(e); }
    return false;
  });
  const reuse = fitting.find((e) => e.reservation) ?? fitting[0];
  if (reuse) return { plan: { kind: 'reuse', entry: reuse }, stale, notes };

  const taken: Record<Family, Prefix[]> = { 4: takenOf(entries, 4), 6: takenOf(entries, 6) };
  const prev = previousCandidate(input, taken, notes);
  const v4 = prev?.v4 ?? pick(conf, 4, taken[4], entries.length, input.random);
  const v6 = prev?.v6 ?? pick(conf, 6, taken[6], entries.length, input.random);
  const plan: AcquirePlan = { kind: 'create', subnet: v4 ?? '', source: prev ? 'previous' : 'random' };
  if (v6) plan.ipv6Subnet = v6;
  return { plan, stale, notes };
}

/** Free subnets left in each enabled family (for status and logs). */
export function freeSubnets(conf: NetConf, entries: readonly StoredEntry[]): { v4?: bigint; v6?: bigint } {
  const out: { v4?: bigint; v6?: bigint } = {};
  const r4 = pickRange(conf, 4);
  const r6 = pickRange(conf, 6);
  if (r4) out.v4 = freeSubnetCount(r4, takenOf(entries, 4));
  if (r6) out.v6 = freeSubnetCount(r6, takenOf(entries, 6));
  return out;
}

/** A stored key/value as a StoredEntry; undefined when the key is not a subnet key. */
export function storedEntry(key: string, value: string, meta: { expiration: number | null; leaseId?: string }): StoredEntry | undefined {
  return entryOf(key, decodeLease(key, value, meta), meta.leaseId === undefined);
}

/** storedEntry from an entry already decoded with decodeLease (the key is parsed again only
 *  when the value failed to decode). */
export function entryOf(key: string, decoded: DecodeResult<Lease>, reservation: boolean): StoredEntry | undefined {
  const pair = decoded.ok ? decoded.value : decodeSubnetKey(key);
  if (!pair) return undefined;
  const e: StoredEntry = { key, subnet: pair.subnet, reservation };
  if (pair.ipv6Subnet) e.ipv6Subnet = pair.ipv6Subnet;
  if (decoded.ok) e.lease = decoded.value;
  return e;
}

/** Our attributes in canonical form (addresses and MACs), validated before they are published. */
export function canonicalAttrs(a: LeaseAttrs): LeaseAttrs {
  const v4 = a.publicIP ? parseIp(a.publicIP, 'publicIP', 4) : undefined;
  const v6 = a.publicIPv6 ? parseIp(a.publicIPv6, 'publicIPv6', 6) : undefined;
  if (!v4 && !v6) throw invalid('publicIP', a.publicIP, 'a public IPv4 or IPv6 address is required');
  const mac = (d: { VNI: number; VtepMAC: string }, field: string) => {
    const m = canonicalMac(d.VtepMAC);
    if (!m) throw invalid(field, d.VtepMAC, 'must be a MAC address');
    return { VNI: d.VNI, VtepMAC: m };
  };
  return {
    publicIP: v4 ? formatIp(v4) : '',
    publicIPv6: v6 ? formatIp(v6) : null,
    backendType: a.backendType,
    backendData: mac(a.backendData, 'backendData.VtepMAC'),
    backendV6Data: a.backendV6Data ? mac(a.backendV6Data, 'backendV6Data.VtepMAC') : null,
  };
}
