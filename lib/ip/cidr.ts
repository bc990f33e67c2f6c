// An address with its prefix length, host bits kept: "10.244.1.5/24" is a pod address inside
// its subnet, the form `ip addr`, CNI results and flannel's FLANNEL_SUBNET (the gateway) use. A
// Prefix cannot hold it (its host bits are always zero), so the network is derived on demand.
// An IpCidr is an IpAddr, so formatIp/contains/ipEquals apply to its address directly.
// The length is parsed like Go's net.ParseCIDR (decimal, leading zeros allowed): CNI results
// written by Go plugins must read back exactly as they do there.
import { BITS, formatIp, tryParseIp, type IpAddr } from './addr.js';
import { makePrefix, type Prefix } from './prefix.js';

export interface IpCidr extends IpAddr {
  readonly len: number;
}

/** Parses "address/length" keeping host bits; undefined when malformed. */
export function tryParseCidr(s: string): IpCidr | undefined {
  if (typeof s !== 'string') return undefined;
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = tryParseIp(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return undefined;
  const len = Number(lenText);
  return len > BITS[ip.family] ? undefined : { family: ip.family, value: ip.value, len };
}

/** "10.244.1.5/24": the address (host bits kept) and the length. */
export function formatCidr(c: IpCidr): string {
  return `${formatIp(c)}/${c.len}`;
}

/** The network the address lies in ("10.244.1.5/24" → 10.244.1.0/24). */
export function cidrNetwork(c: IpCidr): Prefix {
  return makePrefix(c, c.len);
}
