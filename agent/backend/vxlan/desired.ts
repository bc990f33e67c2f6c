// Desired kernel state for the VXLAN backend, per peer. Pure.
//
// Why per peer: every entry a peer needs (ARP, FDB, nexthop, route) depends only on that peer's
// lease and our device, so a lease event recomputes four entries instead of the whole cluster's
// — that is what keeps lease→kernel latency flat at 20k peers. The periodic resync still diffs
// the union of all peers against a full kernel dump (level-triggered, DESIGN style 1).
//
// Why nexthop objects: routes sharing a device are inserted in quadratic time by the kernel;
// routes through nexthop ids stay linear (DESIGN "Kernel programming"). The nexthop id is the
// subnet's IPv4 network address as a u32: deterministic across restarts (so a restarted agent
// finds its own objects and changes nothing) and unique per subnet by construction.
import { NTF_SELF, NUD_PERMANENT, RTPROT_TWILL, type NlObject } from '../../../lib/netlink/types.js';
import { formatIp } from '../../../lib/ip/addr.js';
import { contains, formatPrefix, networkAddress, type Prefix } from '../../../lib/ip/prefix.js';
import { parseIp } from '../../../lib/ip/addr.js';
import { entryKey, type Entry, type EntryKind } from '../../reconcile/state.js';

export const MAIN_TABLE = 254;

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

const entry = (kind: EntryKind, object: NlObject, owner?: string): Entry => {
  const key = entryKey(kind, object);
  return owner === undefined ? { kind, key, object } : { kind, key, object, owner };
};

export function nexthopId(subnet: Prefix): number {
  return Number(subnet.addr & 0xffffffffn);
}

/** The /32 of our subnet's network address on the VXLAN device (what peers' ARP entries name). */
export function localEntries(local: Prefix, dev: DeviceInfo): Entry[] {
  return [entry('addr', { kind: 'addr', ifindex: dev.index, family: 4, address: formatIp(networkAddress(local)), prefixLen: 32 })];
}

export function peerEntries(p: PeerSpec, dev: DeviceInfo): Entry[] {
  const dst = p.subnetText ?? formatPrefix(p.subnet);
  const gw = dst.slice(0, dst.indexOf('/'));   // a Prefix's address is its network address
  const id = nexthopId(p.subnet);
  if (dev.direct && contains(dev.direct.prefix, parseIp(p.publicIP))) {
    const out = dev.direct.ifindex;
    if (!dev.nexthops) {
      return [entry('route', { kind: 'route', family: 4, dst, gateway: p.publicIP, ifindex: out, protocol: RTPROT_TWILL, table: MAIN_TABLE }, p.key)];
    }
    return [
      entry('nexthop', { kind: 'nexthop', id, family: 4, gateway: p.publicIP, ifindex: out, onlink: false, protocol: RTPROT_TWILL }, p.key),
      entry('route', { kind: 'route', family: 4, dst, nhid: id, protocol: RTPROT_TWILL, table: MAIN_TABLE }, p.key),
    ];
  }
  const out: Entry[] = [
    entry('arp', { kind: 'neigh', family: 4, ifindex: dev.index, ip: gw, mac: p.vtepMAC, state: NUD_PERMANENT, flags: 0 }, p.key),
    entry('fdb', { kind: 'neigh', family: 'bridge', ifindex: dev.index, ip: p.publicIP, mac: p.vtepMAC, state: NUD_PERMANENT, flags: NTF_SELF }, p.key),
  ];
  if (dev.nexthops) {
    out.push(
      entry('nexthop', { kind: 'nexthop', id, family: 4, gateway: gw, ifindex: dev.index, onlink: true, protocol: RTPROT_TWILL }, p.key),
      entry('route', { kind: 'route', family: 4, dst, nhid: id, protocol: RTPROT_TWILL, table: MAIN_TABLE }, p.key),
    );
  } else {
    out.push(entry('route', { kind: 'route', family: 4, dst, gateway: gw, ifindex: dev.index, onlink: true, protocol: RTPROT_TWILL, table: MAIN_TABLE }, p.key));
  }
  return out;
}
