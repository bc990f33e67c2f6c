// Which addresses may serve as a node's public (underlay) IP, i.e. a VXLAN tunnel endpoint.
// A peer lease carrying anything else is ignored before it reaches the kernel.
//
// Rejected: unspecified (0.0.0.0/8, ::), loopback (127/8, ::1), multicast (224/4, ff00::/8),
// the reserved class E block including limited broadcast (240/4), IPv4-mapped IPv6
// (::ffff:0:0/96 — give the IPv4 form instead) and link-local (169.254/16, fe80::/10).
// Link-local is rejected on purpose: it is not routable beyond one link, and an IPv6
// link-local VTEP needs a zone id the lease format cannot carry, so such a lease can only
// produce a blackhole on any cluster that spans more than one L2 segment.
import { tryParseIp, type IpAddr } from './addr.js';
import { contains, parsePrefix, type Prefix } from './prefix.js';

const REJECT: readonly { prefix: Prefix; reason: string }[] = ([
  ['::/128', 'the unspecified address'],
  ['0.0.0.0/8', 'in 0.0.0.0/8 ("this network", includes the unspecified address)'],
  ['127.0.0.0/8', 'a loopback address'],
  ['::1/128', 'a loopback address'],
  ['169.254.0.0/16', 'a link-local address'],
  ['fe80::/10', 'a link-local address'],
  ['224.0.0.0/4', 'a multicast address'],
  ['ff00::/8', 'a multicast address'],
  ['240.0.0.0/4', 'in the reserved block 240.0.0.0/4 (includes the broadcast address)'],
  ['::ffff:0:0/96', 'an IPv4-mapped IPv6 address (use the IPv4 form)'],
] as const).map(([p, reason]) => ({ prefix: parsePrefix(p), reason }));

/** Why `ip` is not a unicast host address, or undefined when it is one. */
export function unicastHostProblem(ip: string | IpAddr): string | undefined {
  const addr = typeof ip === 'string' ? tryParseIp(ip) : ip;
  if (!addr) return 'not an IP address';
  return REJECT.find((r) => contains(r.prefix, addr))?.reason;
}

export function isUnicastHost(ip: string | IpAddr): boolean {
  return unicastHostProblem(ip) === undefined;
}
