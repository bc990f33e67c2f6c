// The node bridge: created on first use, then only verified. Its MAC is pinned (derived from the
// gateway address) because a bridge without one takes its lowest port's MAC, which changes as
// pods come and go and makes every pod re-ARP the gateway. Concurrent ADDs may race to create
// it: EEXIST just means another invocation won.
import { CniError, CNI_ERR } from '../skel/errors.js';
import { formatIp, type Family } from '../../lib/ip/addr.js';
import { applyAll } from './apply.js';
import { macFromIp } from './names.js';
import type { Link, NetlinkHandle, NlChange } from '../../lib/netlink/types.js';

export interface GatewayAddr {
  family: Family;
  address: bigint;
  prefixLen: number;
}

/** `beforeAddrs` runs once the link exists and before its addresses are set (sysctls). */
export async function ensureBridge(
  h: NetlinkHandle, name: string, mtu: number, gateways: readonly GatewayAddr[], beforeAddrs?: (br: Link) => void,
): Promise<Link> {
  let br = await findLink(h, name);
  if (!br) {
    const mac = gateways[0] ? macFromIp({ family: gateways[0].family, value: gateways[0].address }) : undefined;
    const [r] = await h.apply([{ verb: 'create', object: { kind: 'link', name, type: 'bridge', mtu, up: true, ...(mac ? { mac } : {}) } }]);
    if (r && !r.ok && r.code !== 'EEXIST') {
      throw new CniError(CNI_ERR.kernel, `bridge ${name}: create in ${h.netns} failed: ${r.code} (${r.message})`);
    }
    br = await findLink(h, name);
    if (!br) throw new CniError(CNI_ERR.kernel, `bridge ${name}: missing in ${h.netns} right after creating it`);
  }
  if (br.type !== 'bridge') {
    throw new CniError(CNI_ERR.invalidConfig, `bridge: ${JSON.stringify(name)} is invalid: a ${br.kind ?? br.type} link of that name exists in ${h.netns}`);
  }
  beforeAddrs?.(br);
  const fix: NlChange[] = [];
  if (!br.up) fix.push({ verb: 'set', object: { kind: 'link', name, index: br.index, up: true } });
  for (const g of gateways) {
    fix.push({ verb: 'replace', object: { kind: 'addr', ifindex: br.index, family: g.family, address: formatIp({ family: g.family, value: g.address }), prefixLen: g.prefixLen } });
  }
  if (fix.length) await applyAll(h, fix, `bridge ${name}`);
  return br;
}

/**
 * One link by name: RTM_GETLINK by name where the handle has it (a dump of all host links is
 * interrupted by concurrent ADDs creating veths, and grows with the number of pods).
 */
export async function findLink(h: NetlinkHandle, name: string): Promise<Link | undefined> {
  if (h.getLink) return h.getLink(name);
  return (await h.listLinks()).find((l) => l.name === name);
}
