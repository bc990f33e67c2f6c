// Deterministic names and MACs. The host-side veth name comes from (container ID, ifname) so
// DEL and GC find it without the pod's netns (which may be gone); MACs come from the address so
// a pod that gets an address back also gets its MAC back and peers' ARP caches stay right.
import { fnv1a64Hex } from './hash.js';
import { formatIp, type IpAddr } from '../../lib/ip/addr.js';
import { formatMac } from '../../lib/ip/mac.js';

export const VETH_PREFIX = 'tw';
export const VETH_NAME_RE = /^tw[0-9a-f]{11}$/;

/** "tw" + 11 hex chars of FNV-1a-64(containerId + "/" + ifname): 13 bytes, below IFNAMSIZ. */
export function hostVethName(containerId: string, ifname: string): string {
  return VETH_PREFIX + fnv1a64Hex(`${containerId}/${ifname}`).slice(0, 11);
}

function hashBytes(s: string): number[] {
  const h = fnv1a64Hex(s);
  return Array.from({ length: 8 }, (_, i) => parseInt(h.slice(i * 2, i * 2 + 2), 16));
}

/** A locally administered unicast MAC: 0a:58 + IPv4 bytes (kindnet/OVN style), else a hash. */
export function macFromIp(ip: IpAddr): string {
  const tail = ip.family === 4 ? [24n, 16n, 8n, 0n].map((s) => Number((ip.value >> s) & 0xffn)) : hashBytes(formatIp(ip)).slice(0, 4);
  return formatMac(Uint8Array.of(0x0a, 0x58, ...tail));
}

/** The host-side veth MAC: 0e + 5 hash bytes of its name (never equal to a macFromIp MAC). */
export function hostVethMac(vethName: string): string {
  const h = hashBytes(vethName);
  return formatMac(Uint8Array.of(0x0e, ...h.slice(0, 5)));
}
