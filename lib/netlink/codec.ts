// rtnetlink objects <-> bytes, pure (no I/O, no koffi): every NlChange becomes one or more
// request messages appended to an NlWriter, every received RTM_NEW*/DEL* payload becomes the
// plain objects of types.ts. Decoders normalise what the kernel adds on its own so that observed
// state compares equal to what was written:
//   - a route through a nexthop object (RTA_NH_ID) is reported with only `nhid` — the kernel
//     also echoes the nexthop's gateway/device, which belong to the Nexthop, not the Route;
//   - a neighbour without a link-layer address (INCOMPLETE/FAILED, and every RTM_DELNEIGH of an
//     ARP entry — the kernel marks it FAILED and drops the lladdr before notifying) has mac '';
//   - route listings skip cloned (cache) entries and non-unicast types (local, broadcast, ...).
// Sequence numbers are written as 0 here and assigned by the socket at send time.
// Encoders validate their input and throw TwillError(invalid(...)) naming field, value and rule;
// the handle turns that into a per-entry EINVAL result, never a failed batch.
import { invalid } from '../errors.js';
import * as C from './consts.js';
import { formatIp, formatMac, parsePrefix } from './ipaddr.js';
import type {
  Addr, Family, Link, LinkSpec, LinkType, Neigh, NeighFilter, Nexthop, NlChange, NlEvent, NlEventGroup,
  NlObject, NlVerb, Route, RouteFilter, VxlanAttrs,
} from './types.js';
import { AttrScan, attrStr, attrU32, attrU8, parseAttrs, type NlMsg, type NlWriter } from './wire.js';

export type SeqSource = () => number;

const REQ = C.NLM_F_REQUEST | C.NLM_F_ACK;

function newFlags(verb: NlVerb): number {
  switch (verb) {
    case 'create': return REQ | C.NLM_F_CREATE | C.NLM_F_EXCL;
    case 'replace': return REQ | C.NLM_F_CREATE | C.NLM_F_REPLACE;
    case 'set': return REQ;
    case 'delete': return REQ;
  }
}

const afOf = (f: Family): number => (f === 4 ? C.AF_INET : C.AF_INET6);
const familyOf = (af: number): Family | undefined => (af === C.AF_INET ? 4 : af === C.AF_INET6 ? 6 : undefined);

/** Writes an address attribute; throws (the caller abandons the message) when malformed. */
function putIp(w: NlWriter, type: number, field: string, value: string | undefined, family?: Family): Family {
  const f = value === undefined ? 0 : w.ip(type, value);
  if (f === 0) throw invalid(field, value, 'must be an IPv4 or IPv6 address', 'NETLINK');
  if (family !== undefined && f !== family) throw invalid(field, value, `must be an IPv${family} address`, 'NETLINK');
  return f;
}

function putMac(w: NlWriter, type: number, field: string, value: string): void {
  if (!w.mac(type, value)) throw invalid(field, value, 'must be a MAC address aa:bb:cc:dd:ee:ff', 'NETLINK');
}

/** Digits of s[from..] as a prefix length ≤ max; -1 when malformed. */
function prefixLen(s: string, from: number, max: number): number {
  if (from >= s.length || s.length - from > 3) return -1;
  let v = 0;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + c - 48;
  }
  return v <= max ? v : -1;
}

function checkU32(field: string, v: number | undefined, min = 0): void {
  if (v !== undefined && (!Number.isInteger(v) || v < min || v > 0xffffffff)) {
    throw invalid(field, v, `must be an integer in [${min}, 4294967295]`, 'NETLINK');
  }
}

function checkIfname(field: string, name: string): void {
  if (name.length === 0 || Buffer.byteLength(name) > 15 || /[\s/:]/.test(name) || name === '.' || name === '..') {
    throw invalid(field, name, 'must be an interface name of 1-15 bytes without whitespace, "/" or ":"', 'NETLINK');
  }
}

// ---------------------------------------------------------------------------------------------
// links

function writeIfinfo(w: NlWriter, family: number, index: number, up: boolean | undefined): void {
  const at = w.zeros(C.IFINFOMSG_LEN);
  w.buf.writeUInt8(family, at);
  w.buf.writeInt32LE(index, at + 4);
  if (up !== undefined) {
    w.buf.writeUInt32LE(up ? C.IFF_UP : 0, at + 8);
    w.buf.writeUInt32LE(C.IFF_UP, at + 12);
  }
}

function writeVxlan(w: NlWriter, v: VxlanAttrs): void {
  checkU32('vxlan.vni', v.vni);
  if (v.vni > 0xffffff) throw invalid('vxlan.vni', v.vni, 'must be in [0, 16777215]', 'NETLINK');
  if (!Number.isInteger(v.port) || v.port < 0 || v.port > 65535) throw invalid('vxlan.port', v.port, 'must be in [0, 65535]', 'NETLINK');
  w.u32(C.IFLA_VXLAN_ID, v.vni);
  if (v.local !== undefined) putIp(w, v.local.includes(':') ? C.IFLA_VXLAN_LOCAL6 : C.IFLA_VXLAN_LOCAL, 'vxlan.local', v.local);
  w.u16be(C.IFLA_VXLAN_PORT, v.port);
  w.u8(C.IFLA_VXLAN_LEARNING, v.learning ? 1 : 0);
  if (v.gbp) w.flag(C.IFLA_VXLAN_GBP);
  if (v.udpCsum !== undefined) w.u8(C.IFLA_VXLAN_UDP_CSUM, v.udpCsum ? 1 : 0);
  if (v.link !== undefined) { checkU32('vxlan.link', v.link); w.u32(C.IFLA_VXLAN_LINK, v.link); }
}

function writeLinkinfo(w: NlWriter, s: LinkSpec): void {
  if (!s.type) return;
  const li = w.nest(C.IFLA_LINKINFO);
  w.str(C.IFLA_INFO_KIND, s.type);
  if (s.type === 'vxlan' && s.vxlan) {
    const d = w.nest(C.IFLA_INFO_DATA);
    writeVxlan(w, s.vxlan);
    w.nestEnd(d);
  } else if (s.type === 'veth' && s.veth) {
    const d = w.nest(C.IFLA_INFO_DATA);
    const p = w.nest(C.VETH_INFO_PEER);
    writeIfinfo(w, C.AF_UNSPEC, 0, undefined);
    checkIfname('veth.peerName', s.veth.peerName);
    w.str(C.IFLA_IFNAME, s.veth.peerName);
    if (s.veth.peerNetnsFd !== undefined) w.s32(C.IFLA_NET_NS_FD, s.veth.peerNetnsFd);
    if (s.veth.peerMtu !== undefined) { checkU32('veth.peerMtu', s.veth.peerMtu, 68); w.u32(C.IFLA_MTU, s.veth.peerMtu); }
    if (s.veth.peerMac !== undefined) putMac(w, C.IFLA_ADDRESS, 'veth.peerMac', s.veth.peerMac);
    w.nestEnd(p);
    w.nestEnd(d);
  }
  w.nestEnd(li);
}

/** Fields of a 'set' other than hairpin (which travels in its own AF_BRIDGE message). */
function hasMainSetFields(s: LinkSpec): boolean {
  return s.mtu !== undefined || s.mac !== undefined || s.up !== undefined || s.master !== undefined
    || s.newName !== undefined || s.netnsFd !== undefined || s.vxlan !== undefined;
}

function encodeLinkMain(w: NlWriter, verb: NlVerb, s: LinkSpec, seq: number): void {
  const create = verb === 'create' || verb === 'replace';
  if (create && !s.type) throw invalid('type', s.type, `is required to ${verb} a link`, 'NETLINK');
  if (create && s.type === 'veth' && !s.veth) throw invalid('veth', s.veth, 'is required to create a veth', 'NETLINK');
  if (create && s.type === 'vxlan' && !s.vxlan) throw invalid('vxlan', s.vxlan, 'is required to create a vxlan', 'NETLINK');
  const index = create ? 0 : s.index ?? 0;
  w.begin(verb === 'delete' ? C.RTM_DELLINK : C.RTM_NEWLINK, newFlags(verb), seq);
  writeIfinfo(w, C.AF_UNSPEC, index, verb === 'delete' ? undefined : s.up);
  if (index === 0) { checkIfname('name', s.name); w.str(C.IFLA_IFNAME, s.name); }
  if (verb !== 'delete') {
    if (s.newName !== undefined) {
      if (index === 0) throw invalid('index', s.index, 'is required to rename a link (resolve it by name first)', 'NETLINK');
      checkIfname('newName', s.newName);
      w.str(C.IFLA_IFNAME, s.newName);
    }
    if (s.mtu !== undefined) { checkU32('mtu', s.mtu, 68); w.u32(C.IFLA_MTU, s.mtu); }
    if (s.mac !== undefined) putMac(w, C.IFLA_ADDRESS, 'mac', s.mac);
    if (s.master !== undefined) { checkU32('master', s.master); w.u32(C.IFLA_MASTER, s.master); }
    if (s.netnsFd !== undefined) w.s32(C.IFLA_NET_NS_FD, s.netnsFd);
    if (create) writeLinkinfo(w, s);
    else if (s.vxlan) writeLinkinfo(w, { ...s, type: 'vxlan' });
  }
  w.end();
}

/** Bridge-port hairpin: RTM_SETLINK, AF_BRIDGE, IFLA_PROTINFO|NLA_F_NESTED { IFLA_BRPORT_MODE }. */
function encodeHairpin(w: NlWriter, index: number, on: boolean, seq: number): void {
  w.begin(C.RTM_SETLINK, REQ, seq);
  writeIfinfo(w, C.AF_BRIDGE, index, undefined);
  const p = w.nest(C.IFLA_PROTINFO, true);
  w.u8(C.IFLA_BRPORT_MODE, on ? 1 : 0);
  w.nestEnd(p);
  w.end();
}

/** Whether encoding this link change needs its ifindex resolved from its name first. */
export function linkNeedsIndex(verb: NlVerb, s: LinkSpec): boolean {
  if (s.index !== undefined && s.index > 0) return false;
  return verb === 'set' && (s.newName !== undefined || s.hairpin !== undefined);
}

function encodeLink(w: NlWriter, verb: NlVerb, s: LinkSpec, seq: SeqSource): number {
  if (verb === 'set' && s.hairpin !== undefined) {
    if (!s.index) throw invalid('index', s.index, 'is required to set hairpin (resolve it by name first)', 'NETLINK');
    let n = 0;
    if (hasMainSetFields(s)) { encodeLinkMain(w, verb, s, seq()); n++; }
    encodeHairpin(w, s.index, s.hairpin, seq());
    return n + 1;
  }
  encodeLinkMain(w, verb, s, seq());
  return 1;
}

const KIND_TYPES: Record<string, LinkType> = { vxlan: 'vxlan', bridge: 'bridge', veth: 'veth' };

function decodeVxlan(d: Buffer): VxlanAttrs {
  const a = parseAttrs(d);
  const v: VxlanAttrs = {
    vni: attrU32(a, C.IFLA_VXLAN_ID) ?? 0,
    port: a.get(C.IFLA_VXLAN_PORT)?.readUInt16BE(0) ?? 0,
    learning: (attrU8(a, C.IFLA_VXLAN_LEARNING) ?? 0) !== 0,
  };
  const local = a.get(C.IFLA_VXLAN_LOCAL) ?? a.get(C.IFLA_VXLAN_LOCAL6);
  if (local && (local.length === 4 || local.length === 16)) v.local = formatIp(local);
  if (a.has(C.IFLA_VXLAN_GBP)) v.gbp = true;
  const csum = attrU8(a, C.IFLA_VXLAN_UDP_CSUM);
  if (csum !== undefined) v.udpCsum = csum !== 0;
  const link = attrU32(a, C.IFLA_VXLAN_LINK);
  if (link) v.link = link;
  return v;
}

/** Decodes an RTM_NEWLINK/RTM_DELLINK payload (AF_UNSPEC); undefined for other families. */
export function decodeLink(data: Buffer): Link | undefined {
  if (data.length < C.IFINFOMSG_LEN || data[0] === C.AF_BRIDGE) return undefined;
  const a = parseAttrs(data, C.IFINFOMSG_LEN);
  const arphrd = data.readUInt16LE(2);
  const link: Link = {
    index: data.readInt32LE(4),
    name: attrStr(a, C.IFLA_IFNAME) ?? '',
    type: arphrd === C.ARPHRD_LOOPBACK ? 'loopback' : 'other',
    mtu: attrU32(a, C.IFLA_MTU) ?? 0,
    up: (data.readUInt32LE(8) & C.IFF_UP) !== 0,
  };
  const mac = a.get(C.IFLA_ADDRESS);
  if (mac && mac.length > 0) link.mac = formatMac(mac);
  const master = attrU32(a, C.IFLA_MASTER);
  if (master) link.master = master;
  const li = a.get(C.IFLA_LINKINFO);
  if (li) {
    const info = parseAttrs(li);
    const kind = attrStr(info, C.IFLA_INFO_KIND);
    if (kind) {
      link.kind = kind;
      link.type = KIND_TYPES[kind] ?? link.type;
      const d = info.get(C.IFLA_INFO_DATA);
      if (kind === 'vxlan' && d) link.vxlan = decodeVxlan(d);
    }
    const slaveData = info.get(C.IFLA_INFO_SLAVE_DATA);
    if (attrStr(info, C.IFLA_INFO_SLAVE_KIND) === 'bridge' && slaveData) {
      const mode = attrU8(parseAttrs(slaveData), C.IFLA_BRPORT_MODE);
      if (mode !== undefined) link.hairpin = mode !== 0;
    }
  }
  return link;
}

export function getLinkRequest(w: NlWriter, name: string, seq = 0): void {
  checkIfname('name', name);
  w.begin(C.RTM_GETLINK, REQ, seq);
  writeIfinfo(w, C.AF_UNSPEC, 0, undefined);
  w.str(C.IFLA_IFNAME, name);
  w.end();
}

export function dumpLinksRequest(w: NlWriter, seq = 0): void {
  w.begin(C.RTM_GETLINK, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  writeIfinfo(w, C.AF_UNSPEC, 0, undefined);
  w.end();
}

// ---------------------------------------------------------------------------------------------
// addresses

function encodeAddr(w: NlWriter, verb: NlVerb, a: Addr, seq: number): void {
  if (verb === 'set') throw invalid('verb', verb, 'addresses support create, replace and delete', 'NETLINK');
  const max = a.family === 4 ? 32 : 128;
  if (!Number.isInteger(a.prefixLen) || a.prefixLen < 0 || a.prefixLen > max) throw invalid('prefixLen', a.prefixLen, `must be in [0, ${max}]`, 'NETLINK');
  checkU32('ifindex', a.ifindex, 1);
  w.begin(verb === 'delete' ? C.RTM_DELADDR : C.RTM_NEWADDR, newFlags(verb), seq);
  const at = w.zeros(C.IFADDRMSG_LEN);
  w.buf.writeUInt8(afOf(a.family), at);
  w.buf.writeUInt8(a.prefixLen, at + 1);
  w.buf.writeUInt8(a.scope ?? 0, at + 3);
  w.buf.writeUInt32LE(a.ifindex, at + 4);
  putIp(w, C.IFA_LOCAL, 'address', a.address, a.family);
  putIp(w, C.IFA_ADDRESS, 'address', a.address, a.family);
  w.end();
}

const addrScan = new AttrScan(16);

/** The address in attribute `t` of `a` (4 or 16 bytes), formatted; undefined otherwise. */
function scanIp(a: AttrScan, t: number): string | undefined {
  const n = a.size(t);
  return n === 4 || n === 16 ? formatIp(a.buf, a.offset(t), n) : undefined;
}

export function decodeAddr(data: Buffer): Addr | undefined {
  if (data.length < C.IFADDRMSG_LEN) return undefined;
  const family = familyOf(data[0]!);
  if (!family) return undefined;
  const a = addrScan.scan(data, C.IFADDRMSG_LEN);
  const address = scanIp(a, C.IFA_LOCAL) ?? scanIp(a, C.IFA_ADDRESS);
  if (!address) return undefined;
  return { ifindex: data.readUInt32LE(4), family, address, prefixLen: data[1]!, scope: data[3]! };
}

export function dumpAddrsRequest(w: NlWriter, family: Family | undefined, seq = 0): void {
  w.begin(C.RTM_GETADDR, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  const at = w.zeros(C.IFADDRMSG_LEN);
  w.buf.writeUInt8(family ? afOf(family) : C.AF_UNSPEC, at);
  w.end();
}

// ---------------------------------------------------------------------------------------------
// routes

function encodeRoute(w: NlWriter, verb: NlVerb, r: Route, seq: number): void {
  if (verb === 'set') throw invalid('verb', verb, 'routes support create, replace and delete', 'NETLINK');
  const slash = r.dst.indexOf('/');
  const dstLen = slash > 0 ? prefixLen(r.dst, slash + 1, r.family === 4 ? 32 : 128) : -1;
  if (dstLen < 0) throw invalid('dst', r.dst, `must be an IPv${r.family} prefix such as ${r.family === 4 ? '10.244.1.0/24' : 'fd00::/64'}`, 'NETLINK');
  checkU32('ifindex', r.ifindex);
  checkU32('nhid', r.nhid);
  checkU32('metric', r.metric);
  checkU32('table', r.table);
  checkU32('mtu', r.mtu);
  if (r.nhid !== undefined && r.nhid === 0) throw invalid('nhid', r.nhid, 'must be a nexthop id > 0', 'NETLINK');
  const del = verb === 'delete';
  const table = r.table ?? C.RT_TABLE_MAIN;
  const scope = del ? C.RT_SCOPE_NOWHERE
    : r.scope ?? (r.gateway === undefined && r.nhid === undefined && r.ifindex !== undefined ? C.RT_SCOPE_LINK : C.RT_SCOPE_UNIVERSE);
  w.begin(del ? C.RTM_DELROUTE : C.RTM_NEWROUTE, newFlags(verb), seq);
  const at = w.zeros(C.RTMSG_LEN);
  const b = w.buf;
  b.writeUInt8(afOf(r.family), at);
  b.writeUInt8(dstLen, at + 1);
  b.writeUInt8(table < 256 ? table : C.RT_TABLE_UNSPEC, at + 4);
  b.writeUInt8(r.protocol & 0xff, at + 5);
  b.writeUInt8(scope, at + 6);
  b.writeUInt8(del ? 0 : C.RTN_UNICAST, at + 7);
  b.writeUInt32LE(r.onlink && r.nhid === undefined ? C.RTNH_F_ONLINK : 0, at + 8);
  if (dstLen > 0) {
    if (w.ip(C.RTA_DST, r.dst, 0, slash) !== r.family) throw invalid('dst', r.dst, `must be an IPv${r.family} prefix`, 'NETLINK');
  }
  else if (parsePrefix(r.dst)?.family !== r.family) throw invalid('dst', r.dst, `must be an IPv${r.family} prefix`, 'NETLINK');
  w.u32(C.RTA_TABLE, table);
  if (r.nhid !== undefined) {
    // A delete names the route by table/dst/protocol/metric only: with RTA_NH_ID the kernel
    // refuses (EINVAL) once the nexthop is gone, and "already gone" must stay a success.
    if (!del) w.u32(C.RTA_NH_ID, r.nhid);
  } else {
    if (r.gateway !== undefined) putIp(w, C.RTA_GATEWAY, 'gateway', r.gateway, r.family);
    if (r.ifindex !== undefined) w.u32(C.RTA_OIF, r.ifindex);
  }
  if (r.metric !== undefined) w.u32(C.RTA_PRIORITY, r.metric);
  if (!del && r.src !== undefined) putIp(w, C.RTA_PREFSRC, 'src', r.src, r.family);
  if (!del && r.mtu !== undefined) {
    const m = w.nest(C.RTA_METRICS);
    w.u32(C.RTAX_MTU, r.mtu);
    w.nestEnd(m);
  }
  w.end();
}

const routeScan = new AttrScan(32);

/** Decodes an RTM_NEWROUTE/DELROUTE payload; undefined for cloned and non-unicast routes. */
export function decodeRoute(data: Buffer): Route | undefined {
  if (data.length < C.RTMSG_LEN) return undefined;
  const family = familyOf(data[0]!);
  const flags = data.readUInt32LE(8);
  if (!family || data[7] !== C.RTN_UNICAST || flags & C.RTM_F_CLONED) return undefined;
  const a = routeScan.scan(data, C.RTMSG_LEN);
  const dstIp = scanIp(a, C.RTA_DST) ?? (family === 4 ? '0.0.0.0' : '::');
  const r: Route = { family, dst: `${dstIp}/${data[1]!}`, protocol: data[5]!, table: a.u32(C.RTA_TABLE) ?? data[4]!, scope: data[6]! };
  const nhid = a.u32(C.RTA_NH_ID);
  if (nhid !== undefined) {
    r.nhid = nhid;
  } else {
    const gw = scanIp(a, C.RTA_GATEWAY);
    if (gw !== undefined) r.gateway = gw;
    const oif = a.u32(C.RTA_OIF);
    if (oif !== undefined) r.ifindex = oif;
    if (flags & C.RTNH_F_ONLINK) r.onlink = true;
  }
  const metric = a.u32(C.RTA_PRIORITY);
  if (metric !== undefined) r.metric = metric;
  const src = scanIp(a, C.RTA_PREFSRC);
  if (src !== undefined) r.src = src;
  const metrics = a.view(C.RTA_METRICS);
  const mtu = metrics ? attrU32(parseAttrs(metrics), C.RTAX_MTU) : undefined;
  if (mtu !== undefined) r.mtu = mtu;
  return r;
}

/** The kernel-side part of a route filter (NETLINK_GET_STRICT_CHK); the caller re-checks. */
export function dumpRoutesRequest(w: NlWriter, f: RouteFilter, seq = 0): void {
  w.begin(C.RTM_GETROUTE, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  const at = w.zeros(C.RTMSG_LEN);
  w.buf.writeUInt8(f.family ? afOf(f.family) : C.AF_UNSPEC, at);
  const table = f.table ?? C.RT_TABLE_MAIN;
  w.buf.writeUInt8(table > 0 && table < 256 ? table : 0, at + 4);
  w.buf.writeUInt8(f.protocol ?? 0, at + 5);
  if (table >= 256) w.u32(C.RTA_TABLE, table);
  if (f.ifindex !== undefined) w.u32(C.RTA_OIF, f.ifindex);
  w.end();
}

export function routeMatches(r: Route, f: RouteFilter, oif?: number): boolean {
  const table = f.table ?? C.RT_TABLE_MAIN;
  if (f.family !== undefined && r.family !== f.family) return false;
  if (table !== 0 && r.table !== table) return false;
  if (f.protocol !== undefined && r.protocol !== f.protocol) return false;
  if (f.ifindex !== undefined && (oif ?? r.ifindex) !== f.ifindex) return false;
  return true;
}

/** RTA_OIF of the route payload decodeRoute() saw last (kept even when normalised away). */
export function lastRouteOif(): number | undefined {
  return routeScan.u32(C.RTA_OIF);
}

// ---------------------------------------------------------------------------------------------
// nexthops

function encodeNexthop(w: NlWriter, verb: NlVerb, n: Nexthop, seq: number): void {
  if (verb === 'set') throw invalid('verb', verb, 'nexthops support create, replace and delete', 'NETLINK');
  if (!Number.isInteger(n.id) || n.id < 1 || n.id > 0xffffffff) throw invalid('id', n.id, 'must be an integer in [1, 4294967295]', 'NETLINK');
  const del = verb === 'delete';
  w.begin(del ? C.RTM_DELNEXTHOP : C.RTM_NEWNEXTHOP, newFlags(verb), seq);
  const at = w.zeros(C.NHMSG_LEN);
  if (!del) {
    w.buf.writeUInt8(afOf(n.family), at);
    w.buf.writeUInt8(n.protocol & 0xff, at + 2);
    w.buf.writeUInt32LE(n.onlink ? C.RTNH_F_ONLINK : 0, at + 4);
  }
  w.u32(C.NHA_ID, n.id);
  if (!del) {
    checkU32('ifindex', n.ifindex, 1);
    w.u32(C.NHA_OIF, n.ifindex);
    putIp(w, C.NHA_GATEWAY, 'gateway', n.gateway, n.family);
  }
  w.end();
}

const nexthopScan = new AttrScan(16);

/** Decodes an RTM_NEWNEXTHOP/DELNEXTHOP payload; groups and blackholes are not representable. */
export function decodeNexthop(data: Buffer): Nexthop | undefined {
  if (data.length < C.NHMSG_LEN) return undefined;
  const a = nexthopScan.scan(data, C.NHMSG_LEN);
  const id = a.u32(C.NHA_ID);
  if (id === undefined || a.has(C.NHA_GROUP) || a.has(C.NHA_BLACKHOLE)) return undefined;
  const gateway = scanIp(a, C.NHA_GATEWAY) ?? '';
  const family = familyOf(data[0]!) ?? (a.size(C.NHA_GATEWAY) === 16 ? 6 : 4);
  return { id, family, gateway, ifindex: a.u32(C.NHA_OIF) ?? 0, onlink: (data.readUInt32LE(4) & C.RTNH_F_ONLINK) !== 0, protocol: data[2]! };
}

export function dumpNexthopsRequest(w: NlWriter, seq = 0): void {
  w.begin(C.RTM_GETNEXTHOP, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  w.zeros(C.NHMSG_LEN);
  w.end();
}

/** A GET for one nexthop id: ENOENT proves the kernel knows nexthop objects. */
export function getNexthopRequest(w: NlWriter, id: number, seq = 0): void {
  w.begin(C.RTM_GETNEXTHOP, REQ, seq);
  w.zeros(C.NHMSG_LEN);
  w.u32(C.NHA_ID, id);
  w.end();
}

// ---------------------------------------------------------------------------------------------
// neighbours (ARP/NDP and bridge FDB)

function neighAf(f: Neigh['family']): number {
  return f === 'bridge' ? C.AF_BRIDGE : afOf(f);
}

function encodeNeigh(w: NlWriter, verb: NlVerb, n: Neigh, seq: number): void {
  if (verb === 'set') throw invalid('verb', verb, 'neighbours support create, replace and delete', 'NETLINK');
  checkU32('ifindex', n.ifindex, 1);
  const del = verb === 'delete';
  const fdb = n.family === 'bridge';
  if (!fdb && n.ip === undefined) throw invalid('ip', n.ip, 'is required for an ARP/NDP entry', 'NETLINK');
  w.begin(del ? C.RTM_DELNEIGH : C.RTM_NEWNEIGH, newFlags(verb), seq);
  const at = w.zeros(C.NDMSG_LEN);
  const b = w.buf;
  b.writeUInt8(neighAf(n.family), at);
  b.writeInt32LE(n.ifindex, at + 4);
  b.writeUInt16LE(del && !fdb ? 0 : n.state & 0xffff, at + 8);
  b.writeUInt8(n.flags & 0xff, at + 10);
  if (n.ip !== undefined) putIp(w, C.NDA_DST, 'ip', n.ip, fdb ? undefined : n.family as Family);
  if (!del || fdb) putMac(w, C.NDA_LLADDR, 'mac', n.mac);
  if (n.vni !== undefined) { checkU32('vni', n.vni); w.u32(C.NDA_VNI, n.vni); }
  w.end();
}

const neighScan = new AttrScan(16);

export function decodeNeigh(data: Buffer): Neigh | undefined {
  if (data.length < C.NDMSG_LEN) return undefined;
  const af = data[0]!;
  const family: Neigh['family'] | undefined = af === C.AF_BRIDGE ? 'bridge' : familyOf(af);
  if (!family) return undefined;
  const a = neighScan.scan(data, C.NDMSG_LEN);
  const ll = a.size(C.NDA_LLADDR);
  const n: Neigh = { family, ifindex: data.readInt32LE(4), mac: ll > 0 ? formatMac(data, a.offset(C.NDA_LLADDR), ll) : '', state: data.readUInt16LE(8), flags: data[10]! };
  const ip = scanIp(a, C.NDA_DST);
  if (ip !== undefined) n.ip = ip;
  const vni = a.u32(C.NDA_VNI);
  if (vni !== undefined) n.vni = vni;
  return n;
}

export function dumpNeighsRequest(w: NlWriter, f: NeighFilter, seq = 0): void {
  w.begin(C.RTM_GETNEIGH, C.NLM_F_REQUEST | C.NLM_F_DUMP, seq);
  const at = w.zeros(C.NDMSG_LEN);
  w.buf.writeUInt8(neighAf(f.family), at);
  if (f.ifindex !== undefined) {
    if (f.family === 'bridge') w.buf.writeInt32LE(f.ifindex, at + 4);
    else w.u32(C.NDA_IFINDEX, f.ifindex);
  }
  w.end();
}

// ---------------------------------------------------------------------------------------------
// changes and events

/** Appends the request message(s) for one change; returns how many messages were written. */
export function encodeChange(w: NlWriter, c: NlChange, seq: SeqSource = () => 0): number {
  const o = c.object;
  switch (o.kind) {
    case 'link': return encodeLink(w, c.verb, o, seq);
    case 'addr': encodeAddr(w, c.verb, o, seq()); return 1;
    case 'route': encodeRoute(w, c.verb, o, seq()); return 1;
    case 'nexthop': encodeNexthop(w, c.verb, o, seq()); return 1;
    case 'neigh': encodeNeigh(w, c.verb, o, seq()); return 1;
  }
}

export function linkToSpec(l: Link): LinkSpec {
  const s: LinkSpec = { name: l.name, index: l.index, mtu: l.mtu, up: l.up };
  if (l.type === 'vxlan' || l.type === 'bridge' || l.type === 'veth') s.type = l.type;
  if (l.mac !== undefined) s.mac = l.mac;
  if (l.master !== undefined) s.master = l.master;
  if (l.vxlan) s.vxlan = l.vxlan;
  if (l.hairpin !== undefined) s.hairpin = l.hairpin;
  return s;
}

const EVENT_TYPES = new Map<number, { type: 'new' | 'del'; decode: (d: Buffer) => NlObject | undefined }>([
  [C.RTM_NEWLINK, { type: 'new', decode: (d) => { const l = decodeLink(d); return l && { kind: 'link', ...linkToSpec(l) }; } }],
  [C.RTM_DELLINK, { type: 'del', decode: (d) => { const l = decodeLink(d); return l && { kind: 'link', ...linkToSpec(l) }; } }],
  [C.RTM_NEWADDR, { type: 'new', decode: (d) => { const a = decodeAddr(d); return a && { kind: 'addr', ...a }; } }],
  [C.RTM_DELADDR, { type: 'del', decode: (d) => { const a = decodeAddr(d); return a && { kind: 'addr', ...a }; } }],
  [C.RTM_NEWROUTE, { type: 'new', decode: (d) => { const r = decodeRoute(d); return r && { kind: 'route', ...r }; } }],
  [C.RTM_DELROUTE, { type: 'del', decode: (d) => { const r = decodeRoute(d); return r && { kind: 'route', ...r }; } }],
  [C.RTM_NEWNEXTHOP, { type: 'new', decode: (d) => { const n = decodeNexthop(d); return n && { kind: 'nexthop', ...n }; } }],
  [C.RTM_DELNEXTHOP, { type: 'del', decode: (d) => { const n = decodeNexthop(d); return n && { kind: 'nexthop', ...n }; } }],
  [C.RTM_NEWNEIGH, { type: 'new', decode: (d) => { const n = decodeNeigh(d); return n && { kind: 'neigh', ...n }; } }],
  [C.RTM_DELNEIGH, { type: 'del', decode: (d) => { const n = decodeNeigh(d); return n && { kind: 'neigh', ...n }; } }],
]);

/** A notification as an NlEvent; undefined for messages the contract does not represent. */
export function decodeEvent(m: NlMsg): NlEvent | undefined {
  const t = EVENT_TYPES.get(m.type);
  const object = t?.decode(m.data);
  return t && object ? { type: t.type, object } : undefined;
}

export const GROUPS: Record<NlEventGroup, number[]> = {
  link: [C.RTNLGRP_LINK],
  addr: [C.RTNLGRP_IPV4_IFADDR, C.RTNLGRP_IPV6_IFADDR],
  route: [C.RTNLGRP_IPV4_ROUTE, C.RTNLGRP_IPV6_ROUTE],
  nexthop: [C.RTNLGRP_NEXTHOP],
  neigh: [C.RTNLGRP_NEIGH],
};

/** "replace route 10.244.1.0/24" — for error messages. */
export function describeChange(c: NlChange): string {
  const o = c.object;
  switch (o.kind) {
    case 'link': return `${c.verb} link ${o.name}${o.index ? `#${o.index}` : ''}`;
    case 'addr': return `${c.verb} address ${o.address}/${o.prefixLen} on #${o.ifindex}`;
    case 'route': return `${c.verb} route ${o.dst}${o.table && o.table !== C.RT_TABLE_MAIN ? ` table ${o.table}` : ''}`;
    case 'nexthop': return `${c.verb} nexthop ${o.id}`;
    case 'neigh': return `${c.verb} ${o.family === 'bridge' ? 'fdb' : 'neigh'} ${o.family === 'bridge' ? o.mac : o.ip ?? ''} on #${o.ifindex}`;
  }
}
