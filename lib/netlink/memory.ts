// MemoryKernel: a NetlinkHandle over plain maps, for unit tests of the reconciler and the CNI
// plugin. It mirrors the kernel semantics the agent relies on, not the whole kernel:
//   - create = EEXIST when present, replace = create-or-overwrite, delete of a missing entry is
//     "already gone" (success), set on a missing link = ENODEV;
//   - routes via `nhid` need an existing nexthop (EINVAL), gateways need `onlink` or a connected
//     prefix on the device (ENETUNREACH), device routes need the link up (ENETDOWN);
//   - deleting a link removes its addresses, neighbours, nexthops and every route through them,
//     and its veth peer; addresses on an up link add their connected (proto kernel) route;
//   - listings are normalised exactly like the real decoder (nhid routes carry only nhid, table
//     defaults to main, IPv6 metric defaults to 1024).
// Unlike the kernel it emits a watch event for EVERY change, including cascaded deletions, so
// repair logic can be tested deterministically. Test hooks: failNext() injects per-entry errors,
// external() changes state as "someone else" (ip(8), another agent), overflow() simulates a
// notification overflow, and the sync getters return snapshots for assertions.
import * as C from './consts.js';
import { describeChange, linkToSpec, routeMatches } from './codec.js';
import { formatIp, parseIp, parseMac, parsePrefix } from './ipaddr.js';
import type {
  Addr, Family, Link, LinkSpec, Neigh, NeighFilter, NetlinkHandle, Nexthop, NlChange, NlEvent, NlEventGroup,
  NlObject, NlResult, Route, RouteFilter,
} from './types.js';
import { errnoCode } from './wire.js';

class Errno extends Error {
  readonly errno: number;
  constructor(errno: number, message: string) {
    super(message);
    this.errno = errno;
  }
}

interface Failure { pred: (c: NlChange) => boolean; errno: number; times: number }
interface Watcher { groups: Set<NlEventGroup>; queue: NlEvent[]; wake?: () => void; done: boolean }

const GONE = new Set([C.ENOENT, C.ESRCH, C.ENODEV, C.EADDRNOTAVAIL]);
const maxLen = (f: Family) => (f === 4 ? 32 : 128);

function network(ip: string, len: number): string | undefined {
  const p = parseIp(ip);
  if (!p) return undefined;
  const b = Buffer.from(p.bytes);
  for (let i = 0; i < b.length; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    b[i]! &= (0xff << (8 - bits)) & 0xff;
  }
  return `${formatIp(b)}/${len}`;
}

function contains(prefix: string, ip: string): boolean {
  const p = parsePrefix(prefix);
  const a = parseIp(ip);
  if (!p || !a || p.family !== a.family) return false;
  return network(ip, p.len) === network(formatIp(p.bytes), p.len);
}

let kernelIds = 0;

export class MemoryKernel implements NetlinkHandle {
  readonly netns: string;
  private readonly id = ++kernelIds;
  private readonly nhSupport: boolean;
  private readonly linkMap = new Map<number, Link>();
  private readonly peers = new Map<number, { kernel: MemoryKernel; index: number }>();
  private readonly addrMap = new Map<string, Addr>();
  private readonly routeMap = new Map<string, Route>();
  private readonly nexthopMap = new Map<number, Nexthop>();
  private readonly neighMap = new Map<string, Neigh>();
  private readonly netnsFds = new Map<number, MemoryKernel>();
  private readonly watchers = new Set<Watcher>();
  private failures: Failure[] = [];
  private nextIndex = 1;
  private closed = false;
  /** Number of apply() calls and the changes of the last one (for assertions). */
  applyCalls = 0;
  lastBatch: readonly NlChange[] = [];

  constructor(opts: { netns?: string; nexthops?: boolean } = {}) {
    this.netns = opts.netns ?? 'memory';
    this.nhSupport = opts.nexthops ?? true;
    const lo: Link = { index: this.nextIndex++, name: 'lo', type: 'loopback', mtu: 65536, up: false, mac: '00:00:00:00:00:00' };
    this.linkMap.set(lo.index, lo);
  }

  // ---- NetlinkHandle ----------------------------------------------------------------------------

  async listLinks(): Promise<Link[]> { this.check(); return this.links(); }
  async getLink(name: string): Promise<Link | undefined> { this.check(); return this.linkByName(name); }
  async listAddrs(family?: Family): Promise<Addr[]> { this.check(); return this.addrs().filter((a) => family === undefined || a.family === family); }
  async listNexthops(): Promise<Nexthop[]> { this.check(); return this.nexthops(); }
  async supportsNexthops(): Promise<boolean> { this.check(); return this.nhSupport; }

  async listRoutes(filter: RouteFilter = {}): Promise<Route[]> {
    this.check();
    return this.routes().filter((r) => routeMatches(r, filter, r.nhid !== undefined ? this.nexthopMap.get(r.nhid)?.ifindex : undefined));
  }

  async listNeighs(filter: NeighFilter): Promise<Neigh[]> {
    this.check();
    return this.neighs().filter((n) => n.family === filter.family && (filter.ifindex === undefined || n.ifindex === filter.ifindex));
  }

  async apply(changes: readonly NlChange[]): Promise<NlResult[]> {
    this.check();
    this.applyCalls++;
    this.lastBatch = [...changes];
    return changes.map((c) => {
      const f = this.failures.find((x) => x.times > 0 && x.pred(c));
      if (f) {
        f.times--;
        this.failures = this.failures.filter((x) => x.times > 0);
        return this.result(c, f.errno, 'injected failure');
      }
      return this.applyOne(c);
    });
  }

  watch(groups: readonly NlEventGroup[], signal: AbortSignal): AsyncIterable<NlEvent> {
    const w: Watcher = { groups: new Set(groups), queue: [], done: signal.aborted };
    this.watchers.add(w);
    const end = () => { w.done = true; this.watchers.delete(w); w.wake?.(); };
    signal.addEventListener('abort', end, { once: true });
    const next = async (): Promise<IteratorResult<NlEvent>> => {
      while (w.queue.length === 0 && !w.done) await new Promise<void>((r) => { w.wake = r; });
      w.wake = undefined;
      const e = w.queue.shift();
      return e && !w.done ? { value: e, done: false } : { value: undefined, done: true };
    };
    return { [Symbol.asyncIterator]: () => ({ next, return: async () => { end(); return { value: undefined, done: true }; } }) };
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers) { w.done = true; w.wake?.(); }
    this.watchers.clear();
  }

  // ---- test hooks -------------------------------------------------------------------------------

  /** The next `times` changes matching `pred` fail with `errno` (e.g. 17 EEXIST, 22 EINVAL). */
  failNext(pred: (c: NlChange) => boolean, errno: number, times = 1): void {
    this.failures.push({ pred, errno, times });
  }

  /** Applies changes as "someone else" (no injected failures); watchers see the events. */
  external(changes: readonly NlChange[]): NlResult[] {
    return changes.map((c) => this.applyOne(c));
  }

  /** Deletes one object as someone else would (`ip route del`, `ip link del`, ...). */
  remove(object: NlObject): NlResult {
    return this.applyOne({ verb: 'delete', object });
  }

  /** Simulates a notification overflow (ENOBUFS) on every active watch. */
  overflow(): void {
    for (const w of this.watchers) { w.queue.push({ type: 'overflow' }); w.wake?.(); }
  }

  /** Makes `fd` (as from openNetnsFd) refer to another MemoryKernel for veth peers and moves. */
  bindNetnsFd(fd: number, kernel: MemoryKernel): void {
    this.netnsFds.set(fd, kernel);
  }

  links(): Link[] { return [...this.linkMap.values()].map((l) => ({ ...l, ...(l.vxlan ? { vxlan: { ...l.vxlan } } : {}) })); }
  addrs(): Addr[] { return [...this.addrMap.values()].map((a) => ({ ...a })); }
  nexthops(): Nexthop[] { return [...this.nexthopMap.values()].map((n) => ({ ...n })); }
  neighs(): Neigh[] { return [...this.neighMap.values()].map((n) => ({ ...n })); }
  routes(): Route[] { return [...this.routeMap.values()].map((r) => this.normRoute(r)); }
  linkByName(name: string): Link | undefined { return this.links().find((l) => l.name === name); }

  // ---- semantics ----------------------------------------------------------------------------------

  private check(): void {
    if (this.closed) throw new Error(`memory kernel ${this.netns} is closed`);
  }

  private result(c: NlChange, errno: number, detail: string): NlResult {
    if (c.verb === 'delete' && GONE.has(errno)) return { ok: true };
    const code = errnoCode(errno);
    return { ok: false, errno, code, message: `${describeChange(c)} in ${this.netns}: ${code}: ${detail}` };
  }

  private applyOne(c: NlChange): NlResult {
    try {
      const o = c.object;
      switch (o.kind) {
        case 'link': this.doLink(c.verb, o); break;
        case 'addr': this.doAddr(c.verb, o); break;
        case 'route': this.doRoute(c.verb, o); break;
        case 'nexthop': this.doNexthop(c.verb, o); break;
        case 'neigh': this.doNeigh(c.verb, o); break;
      }
      return { ok: true };
    } catch (err) {
      if (err instanceof Errno) return this.result(c, err.errno, err.message);
      throw err;
    }
  }

  private emit(type: 'new' | 'del', object: NlObject): void {
    const group: NlEventGroup = object.kind;
    for (const w of this.watchers) {
      if (!w.groups.has(group)) continue;
      w.queue.push({ type, object });
      w.wake?.();
    }
  }

  private emitLink(type: 'new' | 'del', l: Link): void {
    this.emit(type, { kind: 'link', ...linkToSpec(l) });
  }

  private needLink(index: number | undefined, what = 'link'): Link {
    const l = index === undefined ? undefined : this.linkMap.get(index);
    if (!l) throw new Errno(C.ENODEV, `no ${what} with ifindex ${index}`);
    return l;
  }

  private findLink(s: LinkSpec): Link | undefined {
    if (s.index) return this.linkMap.get(s.index);
    return [...this.linkMap.values()].find((l) => l.name === s.name);
  }

  // links

  private doLink(verb: NlChange['verb'], s: LinkSpec): void {
    const existing = this.findLink(s);
    if (verb === 'delete') {
      if (!existing) throw new Errno(C.ENODEV, `no link ${s.name}`);
      this.deleteLink(existing);
      return;
    }
    if (verb === 'create' && existing) throw new Errno(C.EEXIST, `link ${s.name} exists`);
    if (verb === 'set' && !existing) throw new Errno(C.ENODEV, `no link ${s.name}`);
    if (existing) this.setLink(existing, s);
    else this.createLink(s);
  }

  private validName(name: string): void {
    if (!name || Buffer.byteLength(name) > 15 || /[\s/:]/.test(name)) throw new Errno(C.EINVAL, `invalid interface name ${JSON.stringify(name)}`);
    if ([...this.linkMap.values()].some((l) => l.name === name)) throw new Errno(C.EEXIST, `link ${name} exists`);
  }

  private newMac(index: number): string {
    const hex = (n: number) => (n & 0xff).toString(16).padStart(2, '0');
    return `02:${hex(this.id >> 8)}:${hex(this.id)}:00:${hex(index >> 8)}:${hex(index)}`;
  }

  private createLink(s: LinkSpec): void {
    if (!s.type) throw new Errno(C.EINVAL, 'link type is required to create a link');
    if (s.type === 'vxlan' && !s.vxlan) throw new Errno(C.EINVAL, 'vxlan attributes are required');
    if (s.type === 'veth' && !s.veth) throw new Errno(C.EINVAL, 'veth attributes are required');
    this.validName(s.name);
    const target = s.netnsFd === undefined ? this : this.kernelOf(s.netnsFd);
    const peerKernel = s.veth?.peerNetnsFd === undefined ? target : this.kernelOf(s.veth.peerNetnsFd);
    if (s.veth) {
      peerKernel.validName(s.veth.peerName);
      if (peerKernel === target && s.veth.peerName === s.name) throw new Errno(C.EEXIST, `link ${s.name} exists`);
    }
    if (s.master) target.masterOf(s.master);
    if (s.mac !== undefined && !parseMac(s.mac)) throw new Errno(C.EINVAL, `invalid MAC ${s.mac}`);
    if (s.mtu !== undefined && s.mtu < 68) throw new Errno(C.EINVAL, `mtu ${s.mtu} below 68`);
    const l = target.addLink({
      name: s.name, type: s.type, kind: s.type, mtu: s.mtu ?? (s.type === 'vxlan' ? 1450 : 1500), up: s.up ?? false,
      ...(s.mac ? { mac: s.mac } : {}), ...(s.vxlan ? { vxlan: { ...s.vxlan } } : {}),
    });
    if (s.master) target.setMaster(l, s.master);
    if (s.veth) {
      const v = s.veth;
      const p = peerKernel.addLink({ name: v.peerName, type: 'veth', kind: 'veth', mtu: v.peerMtu ?? 1500, up: false, ...(v.peerMac ? { mac: v.peerMac } : {}) });
      target.peers.set(l.index, { kernel: peerKernel, index: p.index });
      peerKernel.peers.set(p.index, { kernel: target, index: l.index });
    }
  }

  private addLink(l: Omit<Link, 'index'>): Link {
    const link: Link = { index: this.nextIndex++, ...l };
    link.mac ??= this.newMac(link.index);
    this.linkMap.set(link.index, link);
    this.emitLink('new', link);
    if (link.up) this.onUp(link);
    return link;
  }

  private kernelOf(fd: number): MemoryKernel {
    const k = this.netnsFds.get(fd);
    if (!k) throw new Errno(C.EBADF, `netns fd ${fd} is not bound (bindNetnsFd)`);
    return k;
  }

  private masterOf(index: number): Link {
    const m = this.linkMap.get(index);
    if (!m) throw new Errno(C.EINVAL, `master ifindex ${index} does not exist`);
    if (m.type !== 'bridge') throw new Errno(C.EOPNOTSUPP, `${m.name} cannot be a master`);
    return m;
  }

  private setMaster(l: Link, master: number): void {
    if (master === 0) { delete l.master; delete l.hairpin; return; }
    this.masterOf(master);
    l.master = master;
    l.hairpin ??= false;
  }

  private setLink(l: Link, s: LinkSpec): void {
    if (s.mtu !== undefined && s.mtu < 68) throw new Errno(C.EINVAL, `mtu ${s.mtu} below 68`);
    if (s.mac !== undefined && !parseMac(s.mac)) throw new Errno(C.EINVAL, `invalid MAC ${s.mac}`);
    if (s.newName !== undefined && s.newName !== l.name) this.validName(s.newName);
    if (s.master !== undefined && s.master !== 0) this.masterOf(s.master);
    if (s.hairpin !== undefined && (s.master === 0 || (s.master === undefined && !l.master))) throw new Errno(C.EOPNOTSUPP, `${l.name} is not a bridge port`);
    if (s.netnsFd !== undefined) { this.moveLink(l, this.kernelOf(s.netnsFd), s); return; }
    if (s.newName !== undefined) l.name = s.newName;
    if (s.mtu !== undefined) l.mtu = s.mtu;
    if (s.mac !== undefined) l.mac = s.mac;
    if (s.master !== undefined) this.setMaster(l, s.master);
    if (s.hairpin !== undefined) l.hairpin = s.hairpin;
    if (s.vxlan && l.vxlan) l.vxlan = { ...s.vxlan };
    const wasUp = l.up;
    if (s.up !== undefined) l.up = s.up;
    this.emitLink('new', l);
    if (!wasUp && l.up) this.onUp(l);
    if (wasUp && !l.up) this.onDown(l);
  }

  private moveLink(l: Link, to: MemoryKernel, s: LinkSpec): void {
    if (to === this) return;
    const peer = this.peers.get(l.index);
    this.removeLinkState(l);
    this.peers.delete(l.index);
    const moved = to.addLink({ ...l, name: s.newName ?? l.name, up: false, ...(s.mtu ? { mtu: s.mtu } : {}) });
    delete moved.master;
    delete moved.hairpin;
    if (peer) {
      to.peers.set(moved.index, peer);
      peer.kernel.peers.set(peer.index, { kernel: to, index: moved.index });
    }
  }

  private deleteLink(l: Link): void {
    const peer = this.peers.get(l.index);
    this.removeLinkState(l);
    if (peer) {
      this.peers.delete(l.index);
      peer.kernel.peers.delete(peer.index);
      const pl = peer.kernel.linkMap.get(peer.index);
      if (pl) peer.kernel.removeLinkState(pl);
    }
  }

  /** Removes a link and everything the kernel removes with it. */
  private removeLinkState(l: Link): void {
    for (const [k, a] of this.addrMap) if (a.ifindex === l.index) { this.addrMap.delete(k); this.emit('del', { kind: 'addr', ...a }); }
    for (const [k, n] of this.neighMap) if (n.ifindex === l.index) { this.neighMap.delete(k); this.emit('del', { kind: 'neigh', ...n }); }
    for (const [id, n] of this.nexthopMap) if (n.ifindex === l.index) this.removeNexthop(id);
    for (const [k, r] of this.routeMap) if (r.ifindex === l.index && r.nhid === undefined) this.dropRoute(k, r);
    for (const p of this.linkMap.values()) {
      if (p.master === l.index) { delete p.master; delete p.hairpin; this.emitLink('new', p); }
    }
    this.linkMap.delete(l.index);
    this.emitLink('del', l);
  }

  private onUp(l: Link): void {
    for (const a of this.addrMap.values()) if (a.ifindex === l.index) this.addConnected(a);
  }

  private onDown(l: Link): void {
    for (const [k, r] of this.routeMap) if (r.ifindex === l.index && r.protocol === C.RTPROT_KERNEL) this.dropRoute(k, r);
  }

  // addresses

  private addrKey(a: Addr): string { return `${a.ifindex}|${a.family}|${a.address}/${a.prefixLen}`; }

  private doAddr(verb: NlChange['verb'], a: Addr): void {
    if (verb === 'set') throw new Errno(C.EOPNOTSUPP, 'addresses cannot be set');
    const ip = parseIp(a.address);
    if (!ip || ip.family !== a.family || a.prefixLen < 0 || a.prefixLen > maxLen(a.family)) throw new Errno(C.EINVAL, `invalid address ${a.address}/${a.prefixLen}`);
    const key = this.addrKey(a);
    const have = this.addrMap.get(key);
    if (verb === 'delete') {
      if (!have) throw new Errno(C.EADDRNOTAVAIL, `no address ${a.address}/${a.prefixLen}`);
      this.addrMap.delete(key);
      this.emit('del', { kind: 'addr', ...have });
      const conn = this.connectedKey(have);
      const r = conn && this.routeMap.get(conn);
      if (conn && r && r.protocol === C.RTPROT_KERNEL && r.ifindex === have.ifindex) this.dropRoute(conn, r);
      return;
    }
    const link = this.needLink(a.ifindex);
    if (verb === 'create' && have) throw new Errno(C.EEXIST, `address ${a.address}/${a.prefixLen} exists`);
    const stored: Addr = { ifindex: a.ifindex, family: a.family, address: a.address, prefixLen: a.prefixLen, scope: a.scope ?? 0 };
    this.addrMap.set(key, stored);
    this.emit('new', { kind: 'addr', ...stored });
    if (link.up && !have) this.addConnected(stored);
  }

  private connectedKey(a: Addr): string | undefined {
    if (a.prefixLen === maxLen(a.family)) return undefined;
    const dst = network(a.address, a.prefixLen);
    return dst && this.routeKey({ family: a.family, dst, protocol: C.RTPROT_KERNEL, ...(a.family === 6 ? { metric: 256 } : {}) });
  }

  private addConnected(a: Addr): void {
    const key = this.connectedKey(a);
    if (!key || this.routeMap.has(key)) return;
    const r: Route = {
      family: a.family, dst: network(a.address, a.prefixLen)!, ifindex: a.ifindex, protocol: C.RTPROT_KERNEL,
      table: C.RT_TABLE_MAIN, scope: C.RT_SCOPE_LINK, ...(a.family === 4 ? { src: a.address } : { metric: 256 }),
    };
    this.routeMap.set(key, r);
    this.emit('new', { kind: 'route', ...this.normRoute(r) });
  }

  // routes

  private routeKey(r: Route): string {
    return `${r.family}|${r.table ?? C.RT_TABLE_MAIN}|${r.dst}|${r.metric ?? (r.family === 6 ? 1024 : 0)}`;
  }

  private normRoute(r: Route): Route {
    const out: Route = { family: r.family, dst: r.dst, protocol: r.protocol, table: r.table ?? C.RT_TABLE_MAIN };
    out.scope = r.scope ?? (r.gateway === undefined && r.nhid === undefined && r.ifindex !== undefined ? C.RT_SCOPE_LINK : C.RT_SCOPE_UNIVERSE);
    if (r.nhid !== undefined) out.nhid = r.nhid;
    else {
      if (r.gateway !== undefined) out.gateway = r.gateway;
      if (r.ifindex !== undefined) out.ifindex = r.ifindex;
      if (r.onlink) out.onlink = true;
    }
    const metric = r.metric ?? (r.family === 6 ? 1024 : 0);
    if (metric || r.family === 6) out.metric = metric;
    if (r.src !== undefined) out.src = r.src;
    if (r.mtu !== undefined) out.mtu = r.mtu;
    return out;
  }

  private dropRoute(key: string, r: Route): void {
    this.routeMap.delete(key);
    this.emit('del', { kind: 'route', ...this.normRoute(r) });
  }

  private checkGateway(gw: string, family: Family, ifindex: number | undefined, onlink: boolean): void {
    if (parseIp(gw)?.family !== family) throw new Errno(C.EINVAL, `gateway ${gw} is not IPv${family}`);
    if (onlink) {
      if (ifindex === undefined) throw new Errno(C.EINVAL, 'onlink requires a device');
      return;
    }
    const reachable = [...this.addrMap.values()].some((a) => (ifindex === undefined || a.ifindex === ifindex) && a.family === family
      && this.linkMap.get(a.ifindex)?.up && contains(`${a.address}/${a.prefixLen}`, gw));
    if (!reachable) throw new Errno(C.ENETUNREACH, `gateway ${gw} is not reachable without onlink`);
  }

  private doRoute(verb: NlChange['verb'], r: Route): void {
    if (verb === 'set') throw new Errno(C.EOPNOTSUPP, 'routes cannot be set');
    const p = parsePrefix(r.dst);
    if (!p || !r.dst.includes('/') || p.family !== r.family) throw new Errno(C.EINVAL, `invalid destination ${r.dst}`);
    const key = this.routeKey(r);
    const have = this.routeMap.get(key);
    if (verb === 'delete') {
      if (!have || (r.protocol && have.protocol !== r.protocol) || (r.nhid !== undefined && have.nhid !== r.nhid)) throw new Errno(C.ESRCH, `no route ${r.dst}`);
      this.dropRoute(key, have);
      return;
    }
    if (verb === 'create' && have) throw new Errno(C.EEXIST, `route ${r.dst} exists`);
    if (r.nhid !== undefined) {
      if (!this.nhSupport) throw new Errno(C.EOPNOTSUPP, 'nexthop objects are not supported');
      if (!this.nexthopMap.has(r.nhid)) throw new Errno(C.EINVAL, `nexthop id ${r.nhid} does not exist`);
    } else {
      if (r.ifindex !== undefined) this.needLink(r.ifindex);
      if (r.gateway !== undefined) this.checkGateway(r.gateway, r.family, r.ifindex, r.onlink ?? false);
      else if (r.ifindex !== undefined && !this.linkMap.get(r.ifindex)!.up) throw new Errno(C.ENETDOWN, 'device is down');
    }
    const stored = { ...r };
    delete (stored as { kind?: string }).kind;
    this.routeMap.set(key, stored);
    this.emit('new', { kind: 'route', ...this.normRoute(stored) });
  }

  // nexthops

  private removeNexthop(id: number): void {
    const n = this.nexthopMap.get(id);
    if (!n) return;
    for (const [k, r] of this.routeMap) if (r.nhid === id) this.dropRoute(k, r);
    this.nexthopMap.delete(id);
    this.emit('del', { kind: 'nexthop', ...n });
  }

  private doNexthop(verb: NlChange['verb'], n: Nexthop): void {
    if (!this.nhSupport) throw new Errno(C.EOPNOTSUPP, 'nexthop objects are not supported');
    if (verb === 'set') throw new Errno(C.EOPNOTSUPP, 'nexthops cannot be set');
    if (!Number.isInteger(n.id) || n.id < 1 || n.id > 0xffffffff) throw new Errno(C.EINVAL, `invalid nexthop id ${n.id}`);
    const have = this.nexthopMap.get(n.id);
    if (verb === 'delete') {
      if (!have) throw new Errno(C.ENOENT, `no nexthop ${n.id}`);
      this.removeNexthop(n.id);
      return;
    }
    if (verb === 'create' && have) throw new Errno(C.EEXIST, `nexthop ${n.id} exists`);
    this.needLink(n.ifindex);
    this.checkGateway(n.gateway, n.family, n.ifindex, n.onlink);
    const stored: Nexthop = { id: n.id, family: n.family, gateway: n.gateway, ifindex: n.ifindex, onlink: n.onlink, protocol: n.protocol };
    this.nexthopMap.set(n.id, stored);
    this.emit('new', { kind: 'nexthop', ...stored });
  }

  // neighbours

  private neighKey(n: Neigh): string {
    return n.family === 'bridge' ? `bridge|${n.ifindex}|${n.mac}` : `${n.family}|${n.ifindex}|${n.ip}`;
  }

  private doNeigh(verb: NlChange['verb'], n: Neigh): void {
    if (verb === 'set') throw new Errno(C.EOPNOTSUPP, 'neighbours cannot be set');
    if (n.family !== 'bridge' && parseIp(n.ip ?? '')?.family !== n.family) throw new Errno(C.EINVAL, `invalid neighbour address ${n.ip}`);
    if (n.family === 'bridge' || verb !== 'delete') {
      if (!parseMac(n.mac)) throw new Errno(C.EINVAL, `invalid MAC ${n.mac}`);
    }
    const key = this.neighKey(n);
    const have = this.neighMap.get(key);
    if (verb === 'delete') {
      if (!have || (n.family === 'bridge' && n.ip !== undefined && have.ip !== n.ip)) throw new Errno(C.ENOENT, 'no such neighbour');
      this.neighMap.delete(key);
      this.emit('del', { kind: 'neigh', ...have });
      return;
    }
    this.needLink(n.ifindex);
    if (verb === 'create' && have) throw new Errno(C.EEXIST, 'neighbour exists');
    const stored: Neigh = { family: n.family, ifindex: n.ifindex, mac: n.mac, state: n.state, flags: n.flags };
    if (n.ip !== undefined) stored.ip = n.ip;
    if (n.vni !== undefined) stored.vni = n.vni;
    this.neighMap.set(key, stored);
    this.emit('new', { kind: 'neigh', ...stored });
  }
}
