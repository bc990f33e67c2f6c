// Picks the underlay ("external") interface the way flanneld does: --iface (names or IPs, first
// match wins), else --iface-regex (against names and addresses), else --iface-can-reach (the
// interface the main table routes that address through, longest prefix), else the interface of
// the default route. The public IP defaults to the interface's first global IPv4 address.
import type { Addr, Link, NetlinkHandle, Route } from '../lib/netlink/types.js';
import { TwillError, invalid } from '../lib/errors.js';
import { parseIp, tryParseIp } from '../lib/ip/addr.js';
import { unicastHostProblem } from '../lib/ip/host.js';
import { contains, parsePrefix } from '../lib/ip/prefix.js';

export interface ExternalInterface {
  name: string;
  index: number;
  mtu: number;
  ip: string;            // underlay source address (VXLAN local)
  prefixLen: number;
  publicIP: string;      // what peers use (--public-ip or ip)
}

export interface IfaceOptions {
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach?: string;
  publicIp?: string;
}

const globalV4 = (addrs: Addr[], index: number) => addrs.filter((a) => a.ifindex === index && a.family === 4 && (a.scope ?? 0) === 0);

export async function selectInterface(h: NetlinkHandle, o: IfaceOptions): Promise<ExternalInterface> {
  const [links, addrs] = await Promise.all([h.listLinks(), h.listAddrs(4)]);
  const pick = (l: Link | undefined, ip?: string): ExternalInterface | undefined => {
    if (!l) return undefined;
    const a = ip ? addrs.find((x) => x.ifindex === l.index && x.address === ip) : globalV4(addrs, l.index)[0];
    if (!a) return undefined;
    return { name: l.name, index: l.index, mtu: l.mtu, ip: a.address, prefixLen: a.prefixLen, publicIP: o.publicIp ?? a.address };
  };
  if (o.publicIp) {
    // Peers would reject anything else (agent/peers.ts checks a lease's PublicIP the same way).
    const ip = tryParseIp(o.publicIp);
    if (!ip || ip.family !== 4) throw invalid('--public-ip', o.publicIp, 'must be an IPv4 address');
    const problem = unicastHostProblem(ip);
    if (problem) throw invalid('--public-ip', o.publicIp, `must be a unicast host address (it is ${problem})`);
  }
  for (const spec of o.iface) {
    const asIp = tryParseIp(spec);
    const found = asIp
      ? pick(links.find((l) => addrs.some((a) => a.ifindex === l.index && a.address === spec)), spec)
      : pick(links.find((l) => l.name === spec));
    if (found) return found;
  }
  if (o.iface.length) throw new TwillError('BACKEND', `--iface ${o.iface.join(',')}: no such interface with an IPv4 address`);
  for (const re of o.ifaceRegex.map((r) => new RegExp(r))) {
    for (const l of links) {
      if (re.test(l.name)) { const f = pick(l); if (f) return f; }
      for (const a of globalV4(addrs, l.index)) if (re.test(a.address)) return pick(l, a.address)!;
    }
  }
  if (o.ifaceRegex.length) throw new TwillError('BACKEND', `--iface-regex ${o.ifaceRegex.join(',')}: no interface or address matches`);
  const routes = await withNexthopDevices(h, await h.listRoutes({ family: 4, table: 254 }));
  const target = o.ifaceCanReach ? parseIp(o.ifaceCanReach, '--iface-can-reach', 4) : undefined;
  const route = target ? bestRoute(routes, target.value) : routes.find((r) => r.dst === '0.0.0.0/0' && r.ifindex);
  if (!route?.ifindex) {
    throw new TwillError('BACKEND', target
      ? `--iface-can-reach ${o.ifaceCanReach}: no route reaches it`
      : 'no default route: pass --iface, --iface-regex or --iface-can-reach to choose the underlay interface');
  }
  const found = pick(links.find((l) => l.index === route.ifindex), route.src);
  if (!found) throw new TwillError('BACKEND', `interface with index ${route.ifindex} has no IPv4 address`);
  return found;
}

/** A route through a nexthop object is listed without a device: take its nexthop's. */
async function withNexthopDevices(h: NetlinkHandle, routes: Route[]): Promise<Route[]> {
  if (!routes.some((r) => r.nhid !== undefined && !r.ifindex)) return routes;
  const dev = new Map((await h.listNexthops()).map((n) => [n.id, n.ifindex]));
  return routes.map((r) => (r.nhid !== undefined && !r.ifindex ? { ...r, ifindex: dev.get(r.nhid) } : r));
}

function bestRoute(routes: Route[], ip: bigint): Route | undefined {
  let best: Route | undefined;
  let bestLen = -1;
  for (const r of routes) {
    const p = parsePrefix(r.dst, { family: 4 });
    if (p.len > bestLen && r.ifindex && contains(p, { family: 4, value: ip })) { best = r; bestLen = p.len; }
  }
  return best;
}
