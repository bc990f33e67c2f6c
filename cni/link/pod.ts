// Everything inside the pod's netns, in one batch on a handle bound to that netns: lo up (a
// fresh netns has it down and onlink routes fail without it), the interface up, its addresses
// and routes. Routes use replace semantics so a retried ADD converges instead of failing EEXIST.
import { CniError, CNI_ERR } from '../skel/errors.js';
import { formatIp, type Family } from '../../lib/ip/addr.js';
import { applyAll } from './apply.js';
import type { Link, NetlinkHandle, NlChange } from '../../lib/netlink/types.js';

export const RTPROT_BOOT = 3;

export interface PodAddr {
  family: Family;
  address: bigint;
  prefixLen: number;
  gateway: bigint;
  routes: string[];       // destinations reached via the gateway ("0.0.0.0/0" or the cluster network)
}

export async function configurePod(h: NetlinkHandle, ifname: string, addrs: readonly PodAddr[]): Promise<Link> {
  const links = await h.listLinks();
  const lo = links.find((l) => l.type === 'loopback' || l.name === 'lo');
  const pod = links.find((l) => l.name === ifname);
  if (!pod) throw new CniError(CNI_ERR.kernel, `interface ${ifname} is missing in ${h.netns} right after creating it`);
  const changes: NlChange[] = [];
  if (lo && !lo.up) changes.push({ verb: 'set', object: { kind: 'link', name: lo.name, index: lo.index, up: true } });
  changes.push({ verb: 'set', object: { kind: 'link', name: ifname, index: pod.index, up: true } });
  for (const a of addrs) {
    changes.push({ verb: 'replace', object: { kind: 'addr', ifindex: pod.index, family: a.family, address: formatIp({ family: a.family, value: a.address }), prefixLen: a.prefixLen } });
  }
  for (const a of addrs) {
    for (const dst of a.routes) {
      changes.push({ verb: 'replace', object: { kind: 'route', family: a.family, dst, gateway: formatIp({ family: a.family, value: a.gateway }), ifindex: pod.index, protocol: RTPROT_BOOT } });
    }
  }
  await applyAll(h, changes, `pod interface ${ifname}`);
  return pod;
}
