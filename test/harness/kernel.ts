// What a node's kernel holds, as iproute2 reports it (`ip -j`, `bridge -j`): the VXLAN device,
// and every route / nexthop the agent could own (on the device or tagged with twill's protocol),
// plus the device's ARP and FDB entries. Tests compare this against the peers' leases.
import { ipJson, nsRun } from './exec.js';

export const TWILL_PROTO = '116';

export interface DeviceInfo {
  name: string;
  ifindex: number;
  mtu: number;
  mac: string;
  up: boolean;
  vni: number | undefined;
  local: string | undefined;
  port: number | undefined;
  learning: boolean | undefined;
  addrs: string[];               // "10.244.3.0/32"
}

export interface RouteEntry { dst: string; gateway?: string; dev?: string; nhid?: number; protocol?: string; flags?: string[] }
export interface NexthopEntry { id: number; gateway?: string; dev?: string; protocol?: string; flags?: string[] }
export interface NeighEntry { dst: string; lladdr?: string; state?: string[] }
export interface FdbEntry { mac: string; dst?: string; flags?: string[]; state?: string }

export interface KernelState {
  device: DeviceInfo | undefined;
  routes: RouteEntry[];          // main table, on the device or proto 116
  nexthops: NexthopEntry[];      // on the device or proto 116
  arp: NeighEntry[];             // neighbours on the device
  fdb: FdbEntry[];               // FDB on the device
}

interface LinkJson {
  ifindex: number; ifname: string; mtu: number; address: string; flags: string[];
  linkinfo?: { info_kind?: string; info_data?: { id?: number; local?: string; port?: number; learning?: boolean } };
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export async function readDevice(netns: string, dev: string): Promise<DeviceInfo | undefined> {
  const r = await nsRun(netns, 'ip', ['-j', '-d', 'addr', 'show', 'dev', dev], { allowFail: true });
  if (r.code !== 0) return undefined;
  const l = (JSON.parse(r.stdout) as LinkJson[])[0];
  if (!l) return undefined;
  const d = l.linkinfo?.info_data;
  return {
    name: l.ifname, ifindex: l.ifindex, mtu: l.mtu, mac: l.address, up: l.flags.includes('UP'),
    vni: d?.id, local: d?.local, port: d?.port, learning: d?.learning,
    addrs: (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
  };
}

/** Kernel routes print a bare host route as "10.244.3.0" only when /32; normalise to CIDR. */
const cidr = (dst: string): string => (dst.includes('/') || dst === 'default' ? dst : `${dst}/32`);

export async function kernelState(netns: string, dev: string): Promise<KernelState> {
  const device = await readDevice(netns, dev);
  const owned = (e: { dev?: string; protocol?: string }): boolean => e.dev === dev || e.protocol === TWILL_PROTO;
  const [routes, nexthops] = await Promise.all([
    ipJson<RouteEntry>(netns, 'route', 'show', 'table', 'main'),
    ipJson<NexthopEntry>(netns, 'nexthop', 'show').catch(() => []),
  ]);
  let arp: NeighEntry[] = [];
  let fdb: FdbEntry[] = [];
  if (device) {
    arp = await ipJson<NeighEntry>(netns, 'neigh', 'show', 'dev', dev);
    const out = (await nsRun(netns, 'bridge', ['-j', 'fdb', 'show', 'dev', dev])).stdout.trim();
    fdb = out ? (JSON.parse(out) as FdbEntry[]) : [];
  }
  return {
    device,
    routes: routes.filter(owned).map((r) => ({ ...r, dst: cidr(r.dst) })),
    nexthops: nexthops.filter(owned),
    arp,
    fdb,
  };
}

/** The per-peer view of a node's kernel, sorted, for exact comparison with expectations. */
export interface PeerEntries {
  arp: string[];       // "10.244.2.0 02:..:..  PERMANENT"
  fdb: string[];       // "02:.. 10.213.0.11"
  routes: string[];    // "10.244.2.0/24 via 10.244.2.0"
  nexthops: string[];  // "10.244.2.0"
}

export function peerEntries(k: KernelState): PeerEntries {
  const nh = new Map(k.nexthops.map((n) => [n.id, n]));
  return {
    arp: k.arp.map((a) => `${a.dst} ${a.lladdr ?? '?'} ${(a.state ?? []).join(',')}`).sort(),
    fdb: k.fdb.map((f) => `${f.mac} ${f.dst ?? '?'}`).sort(),
    routes: k.routes
      .filter((r) => !(r.protocol === 'kernel' && r.dev === k.device?.name))
      .map((r) => `${r.dst} via ${r.gateway ?? nh.get(r.nhid ?? -1)?.gateway ?? '?'}`).sort(),
    nexthops: k.nexthops.map((n) => n.gateway ?? '?').sort(),
  };
}
