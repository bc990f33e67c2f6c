// flannel's subnet key form, so twill and flannel read each other's etcd data:
//   IPv4        10.244.3.0-24
//   dual-stack  10.244.3.0-24&fd00:10:244:3::-64
//   IPv6-only   fd00:10:244:3::-64   (flannel has no etcd form for IPv6-only; this one is
//               skipped by flannel's key regex rather than misread as 0.0.0.0/0)
// Decoding is strict: a key whose address has host bits set is not a subnet key.
import { formatPrefix, tryParsePrefix } from '../ip/prefix.js';

export interface SubnetPair {
  subnet: string;        // "10.244.3.0/24", "" when IPv6-only
  ipv6Subnet?: string;   // "fd00:10:244:3::/64"
}

function part(cidr: string): string {
  const slash = cidr.lastIndexOf('/');
  return `${cidr.slice(0, slash)}-${cidr.slice(slash + 1)}`;
}

/** "10.244.3.0/24" (+ "fd00::/64") → "10.244.3.0-24" (&"fd00::-64"). Inputs must be canonical. */
export function encodeSubnetKey(subnet: string, ipv6Subnet?: string): string {
  if (!subnet && !ipv6Subnet) throw new Error('encodeSubnetKey: no subnet');
  if (!subnet) return part(ipv6Subnet!);
  return ipv6Subnet ? `${part(subnet)}&${part(ipv6Subnet)}` : part(subnet);
}

const V4 = { family: 4 } as const, V6 = { family: 6 } as const;

function decodePart(s: string, family: 4 | 6): string | undefined {
  const dash = s.lastIndexOf('-');
  if (dash <= 0) return undefined;
  const cidr = `${s.slice(0, dash)}/${s.slice(dash + 1)}`;
  const p = tryParsePrefix(cidr, family === 4 ? V4 : V6);
  if (!p) return undefined;
  // IPv4 prefixes parse only from their canonical text (decimal octets and length without
  // leading zeros, host bits clear), so `cidr` is what formatPrefix would build. IPv6 text
  // may be in any of its spellings and is formatted.
  return family === 4 ? cidr : formatPrefix(p);
}

/** Decodes the last path component of a key; undefined when it is not a subnet key. */
export function decodeSubnetKey(key: string): SubnetPair | undefined {
  const name = key.slice(key.lastIndexOf('/') + 1);
  const amp = name.indexOf('&');
  if (amp >= 0) {
    const subnet = decodePart(name.slice(0, amp), 4);
    const ipv6Subnet = decodePart(name.slice(amp + 1), 6);
    return subnet && ipv6Subnet ? { subnet, ipv6Subnet } : undefined;
  }
  const v4 = decodePart(name, 4);
  if (v4) return { subnet: v4 };
  const v6 = decodePart(name, 6);
  return v6 ? { subnet: '', ipv6Subnet: v6 } : undefined;
}

/** `<prefix>/subnets/` — the directory all leases live under. */
export function subnetsDir(prefix: string): string {
  return `${prefix.replace(/\/+$/, '')}/subnets/`;
}

export function subnetKeyPath(prefix: string, pair: SubnetPair): string {
  return subnetsDir(prefix) + encodeSubnetKey(pair.subnet, pair.ipv6Subnet);
}
