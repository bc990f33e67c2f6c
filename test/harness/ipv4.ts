// IPv4 helpers for the harness in the number/string shapes its call sites use; the math is
// lib/ip's (one prefix implementation for the product and its tests).
import { formatIp, parseIp } from '../../lib/ip/addr.js';
import { contains as prefixContains, overlaps as prefixOverlaps, nthAddr, parsePrefix } from '../../lib/ip/prefix.js';

const v4 = (cidr: string) => parsePrefix(cidr, { family: 4, normalize: true });

export function ipToInt(ip: string): number {
  return Number(parseIp(ip, 'ip', 4).value);
}

export function intToIp(n: number): string {
  return formatIp({ family: 4, value: BigInt(n >>> 0) });
}

export function parseCidr(cidr: string): { base: number; len: number } {
  const p = v4(cidr);
  return { base: Number(p.addr), len: p.len };
}

/** The n-th address of a prefix (0 = network address). */
export function nthAddress(cidr: string, n: number): string {
  return formatIp(nthAddr(v4(cidr), BigInt(n)));
}

export function contains(cidr: string, ip: string): boolean {
  return prefixContains(v4(cidr), parseIp(ip, 'ip', 4));
}

export function overlaps(a: string, b: string): boolean {
  return prefixOverlaps(v4(a), v4(b));
}
