// Desired kernel state for the VXLAN backend, per peer. Pure.
//
// Why per peer: every entry a peer needs (ARP, FDB, nexthop, route) depends only on that peer's
// lease and our device, so a lease event recomputes four entries instead of the whole cluster's
// — that is what keeps lease→kernel latency flat at 20k peers. The periodic resync still diffs
// the union of all peers against a full kernel dump (level-triggered: docs/design.md, rule 1).
//
// Why entries are built on demand (PeerSource): at 20k peers, 80k retained Entry + NlObject pairs
// and a second 80k-slot map cost ≈20 MB; a peer's entries are a pure function of (lease, device),
// so the agent keeps one small PeerSource per peer and builds entries when a diff, an event or a
// status query asks. The observed-state cache stores that same source for every kernel entry that
// matches it (reconcile/state.ts), so an in-sync entry costs a map slot and nothing else.
//
// Why nexthop objects: routes sharing a device are inserted in quadratic time by the kernel;
// routes through nexthop ids stay linear (docs/design.md, "Decisions, measured"). The nexthop id is the
// subnet's IPv4 network address as a u32: deterministic across restarts (so a restarted agent
// finds its own objects and changes nothing) and unique per subnet by construction.
import { MAIN_TABLE, NTF_SELF, NUD_PERMANENT, RTPROT_TWILL, type NlObject } from '../../../lib/netlink/types.js';
import { formatIp } from '../../../lib/ip/addr.js';
import { contains, formatPrefix, networkAddress, type Prefix } from '../../../lib/ip/prefix.js';
import { parseIp } from '../../../lib/ip/addr.js';
import { entryKey, type Entry, type EntryKind, type EntrySource } from '../../reconcile/state.js';

export { MAIN_TABLE };

export interface DeviceInfo {
  index: number;
  name: string;
  mtu: number;
  vni: number;
  nexthops: boolean;          // kernel supports nexthop objects
  /** DirectRouting: peers whose public IP is on the underlay segment get a direct route. */
  direct?: { ifindex: number; prefix: Prefix };
}

export interface PeerSpec {
  key: string;                // lease key
  subnet: Prefix;             // validated IPv4 subnet
  publicIP: string;
  vtepMAC: string;
  /** formatPrefix(subnet), when the caller already has it (saves bigint formatting per peer). */
  subnetText?: string;
}

/** The peer's subnet as text (the validated spec carries it; formatting is the fallback). */
export const subnetTextOf = (spec: PeerSpec): string => spec.subnetText ?? formatPrefix(spec.subnet);

const entry = (kind: EntryKind, object: NlObject | undefined, source: PeerSource): Entry | undefined =>
  object === undefined ? undefined : { kind, key: entryKey(kind, object), object, source };

/** One peer's entries on one device: immutable (a changed lease or device makes a new source). */
export class PeerSource implements EntrySource {
  readonly spec: PeerSpec;
  readonly dev: DeviceInfo;
  /** Derived once: entries are rebuilt often (events, diffs, status), these never change. */
  readonly nhid: number;
  readonly dst: string;
  readonly direct: boolean;

  constructor(spec: PeerSpec, dev: DeviceInfo) {
    this.spec = spec;
    this.dev = dev;
    this.nhid = nexthopId(spec.subnet);
    this.dst = subnetTextOf(spec);
    this.direct = dev.direct !== undefined && contains(dev.direct.prefix, parseIp(spec.publicIP));
  }

  get owner(): string { return this.spec.key; }

  /** How many entries entries() returns, without building them (peerObject's cases below). */
  get size(): number {
    const n = this.dev.nexthops ? 2 : 1;   // route (+ nexthop)
    return this.direct ? n : n + 2;        // + ARP and FDB through the VXLAN device
  }

  /** Every entry of this peer, in write order. */
  entries(): Entry[] {
    const out: Entry[] = [];
    for (const kind of PEER_KINDS) {
      const e = entry(kind, peerObject(kind, this), this);
      if (e) out.push(e);
    }
    return out;
  }

  /** The entry with this key, or undefined when the peer has none. */
  entry(key: string): Entry | undefined {
    const kind = key.slice(0, key.indexOf('|')) as EntryKind;
    const e = entry(kind, peerObject(kind, this), this);
    return e?.key === key ? e : undefined;
  }

  object(kind: EntryKind): NlObject | undefined { return peerObject(kind, this); }
}

export function nexthopId(subnet: Prefix): number {
  return Number(subnet.addr & 0xffffffffn);
}
/** The /32 of our subnet's network address on the VXLAN device (what peers' ARP entries name). */
export function localEntries(local: Prefix, dev: DeviceInfo): Entry[] {
  const object: NlObject = { kind: 'addr', ifindex: dev.index, family: 4, address: formatIp(networkAddress(local)), prefixLen: 32 };
  return [{ kind: 'addr', key: entryKey('addr', object), object }];
}

const PEER_KINDS: readonly EntryKind[] = ['arp', 'fdb', 'nexthop', 'route'];

/** A peer's entries in write order: ARP, FDB, nexthop, route (fewer with DirectRouting or without nexthop objects). */
export function peerEntries(p: PeerSpec, dev: DeviceInfo): Entry[] {
  return new PeerSource(p, dev).entries();
}

/** The kernel object of the one entry of `kind` the peer needs, or undefined when it needs none. */
function peerObject(kind: EntryKind, src: PeerSource): NlObject | undefined {
  const { spec: p, dev, dst, nhid: id } = src;
  if (src.direct) {
    const out = dev.direct!.ifindex;
    switch (kind) {
      case 'nexthop':
        return dev.nexthops ? { kind: 'nexthop', id, family: 4, gateway: p.publicIP, ifindex: out, onlink: false, protocol: RTPROT_TWILL } : undefined;
      case 'route':
        return dev.nexthops
          ? { kind: 'route', family: 4, dst, nhid: id, protocol: RTPROT_TWILL, table: MAIN_TABLE }
          : { kind: 'route', family: 4, dst, gateway: p.publicIP, ifindex: out, protocol: RTPROT_TWILL, table: MAIN_TABLE };
      default:
        return undefined;
    }
  }
  switch (kind) {
    case 'arp':
      return { kind: 'neigh', family: 4, ifindex: dev.index, ip: gatewayOf(dst), mac: p.vtepMAC, state: NUD_PERMANENT, flags: 0 };
    case 'fdb':
      return { kind: 'neigh', family: 'bridge', ifindex: dev.index, ip: p.publicIP, mac: p.vtepMAC, state: NUD_PERMANENT, flags: NTF_SELF };
    case 'nexthop':
      return dev.nexthops ? { kind: 'nexthop', id, family: 4, gateway: gatewayOf(dst), ifindex: dev.index, onlink: true, protocol: RTPROT_TWILL } : undefined;
    case 'route':
      return dev.nexthops
        ? { kind: 'route', family: 4, dst, nhid: id, protocol: RTPROT_TWILL, table: MAIN_TABLE }
        : { kind: 'route', family: 4, dst, gateway: gatewayOf(dst), ifindex: dev.index, onlink: true, protocol: RTPROT_TWILL, table: MAIN_TABLE };
    default:
      return undefined;
  }
}

/** The peer's gateway on the overlay: its subnet's network address (a Prefix's address is its network address). */
const gatewayOf = (dst: string): string => dst.slice(0, dst.indexOf('/'));
