// Deterministic names and MACs. The host-side veth name comes from (container ID, ifname) so
// DEL and GC find it without the pod's netns (which may be gone); MACs come from the address so
// a pod that gets an address back also gets its MAC back and peers' ARP caches stay right.
import { createHash } from 'node:crypto';
import { formatIp, type Ip } from '../ipam/ip.js';

export const VETH_PREFIX = 'tw';
export const VETH_NAME_RE = /^tw[0-9a-f]{11}$/;

/** "tw" + 11 hex chars of sha256(containerId + "/" + ifname): 13 bytes, below IFNAMSIZ. */
export function hostVethName(containerId: string, ifname: string): string {
  const h = createHash('sha256').update(`${containerId}/${ifname}`).digest('hex');
  return VETH_PREFIX + h.slice(0, 11);
}

/** A locally administered unicast MAC: 0a:58 + IPv4 bytes (kindnet/OVN style), else a hash. */
export function macFromIp(ip: Ip): string {
  if (ip.family === 4) {
    const b = [0x0a, 0x58, ...[24n, 16n, 8n, 0n].map((s) => Number((ip.value >> s) & 0xffn))];
    return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
  }
  const h = createHash('sha256').update(formatIp(ip.family, ip.value)).digest();
  const b = [0x0a, 0x58, h[0]!, h[1]!, h[2]!, h[3]!];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The host-side veth MAC: 0e + 5 hash bytes of its name (never equal to a macFromIp MAC). */
export function hostVethMac(vethName: string): string {
  const h = createHash('sha256').update(vethName).digest();
  return [0x0e, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!].map((x) => x.toString(16).padStart(2, '0')).join(':');
}
