// Prefixes (CIDRs) on bigint: parse/format, containment, overlap, and the "subnet index" view
// of a network (subnet n of length L inside network N) that allocation works in. Everything is
// exact for both families; nothing here allocates more than a few bigints.
import { invalid } from '../errors.js';
import { BITS, formatIp, maxValue, tryParseIp, type Family, type IpAddr } from './addr.js';

export interface Prefix {
  readonly family: Family;
  /** The network address (host bits are always zero). */
  readonly addr: bigint;
  readonly len: number;
}

export interface ParsePrefixOptions {
  /** Name used in error messages (default "prefix"). */
  field?: string;
  /** Restrict to one family. */
  family?: Family;
  /** Clear host bits instead of rejecting them ("10.244.1.7/16" → 10.244.0.0/16). */
  normalize?: boolean;
}

/** Mask of the host bits of a prefix of length `len`. */
export function hostMask(family: Family, len: number): bigint {
  return (1n << BigInt(BITS[family] - len)) - 1n;
}

export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(BITS[p.family] - p.len);
}

/** Network masks (maxValue & ~hostMask) by family and length, built once: makePrefix runs per lease. */
const NET_MASKS: Record<Family, bigint[]> = {
  4: Array.from({ length: 33 }, (_, len) => maxValue(4) & ~hostMask(4, len)),
  6: Array.from({ length: 129 }, (_, len) => maxValue(6) & ~hostMask(6, len)),
};

export function makePrefix(ip: IpAddr, len: number): Prefix {
  // Lengths outside the table (negative, too long, fractional) take the computed path, which
  // keeps whatever it did for them (a mask or a RangeError).
  const mask = NET_MASKS[ip.family]?.[len] ?? (~hostMask(ip.family, len) & maxValue(ip.family));
  return { family: ip.family, addr: ip.value & mask, len };
}

/** A prefix length text: "0" or ASCII digits without a leading zero, at most `bits`; else -1. */
function parseLen(text: string, bits: number): number {
  if (text.length === 0 || text.length > 3 || (text.length > 1 && text.charCodeAt(0) === 0x30)) return -1;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n > bits ? -1 : n;
}

function familyText(opts: ParsePrefixOptions): string {
  return opts.family === undefined ? 'an IPv4 or IPv6 prefix' : `an IPv${opts.family} prefix`;
}

/**
 * The prefix `s` denotes, or the rule it breaks. Returning the rule instead of throwing lets
 * tryParsePrefix reject without building an error (decoding an IPv6-only lease key tries
 * IPv4 first, so that rejection happens once per lease).
 */
function prefixOrRule(s: string, opts: ParsePrefixOptions): Prefix | string {
  if (typeof s !== 'string') return `must be ${familyText(opts)} as a string, e.g. "10.244.0.0/16"`;
  const slash = s.indexOf('/');
  if (slash < 0) return `must be ${familyText(opts)} in CIDR form address/length, e.g. "10.244.0.0/16"`;
  const ip = tryParseIp(s.slice(0, slash));
  if (!ip) return `must be ${familyText(opts)}: "${s.slice(0, slash)}" is not an IP address`;
  if (opts.family !== undefined && ip.family !== opts.family) return `must be ${familyText(opts)}`;
  const bits = BITS[ip.family];
  const len = parseLen(s.slice(slash + 1), bits);
  if (len < 0) return `prefix length must be an integer 0..${bits}`;
  const p = makePrefix(ip, len);
  if (p.addr !== ip.value && !opts.normalize) return `host bits are set; the network address is ${formatPrefix(p)}`;
  return p;
}

export function parsePrefix(s: string, opts: ParsePrefixOptions = {}): Prefix {
  const field = opts.field ?? 'prefix';
  const p = prefixOrRule(s, opts);
  if (typeof p === 'string') throw invalid(field, s, p);
  return p;
}

export function tryParsePrefix(s: string, opts: ParsePrefixOptions = {}): Prefix | undefined {
  // The try keeps the old contract for a malformed `opts` (null): undefined, not a TypeError.
  try {
    const p = prefixOrRule(s, opts);
    return typeof p === 'string' ? undefined : p;
  } catch {
    return undefined;
  }
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp({ family: p.family, value: p.addr })}/${p.len}`;
}

export function prefixEquals(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && a.addr === b.addr && a.len === b.len;
}

/** Last address of the prefix (v4: the broadcast address). */
export function lastAddr(p: Prefix): bigint {
  return p.addr | hostMask(p.family, p.len);
}

/** Whether `outer` contains the address or the whole prefix `inner`. */
export function contains(outer: Prefix, inner: Prefix | IpAddr): boolean {
  if (outer.family !== inner.family) return false;
  if ('value' in inner) return (inner.value & ~hostMask(outer.family, outer.len)) === outer.addr;
  return inner.len >= outer.len && (inner.addr & ~hostMask(outer.family, outer.len)) === outer.addr;
}

export function overlaps(a: Prefix, b: Prefix): boolean {
  return a.family === b.family && (contains(a, b) || contains(b, a));
}

/** Network address (host bits clear) as an IpAddr. */
export function networkAddress(p: Prefix): IpAddr {
  return { family: p.family, value: p.addr };
}

/** First usable host: network + 1 (flannel's FLANNEL_SUBNET address; the bridge gateway). */
export function firstHost(p: Prefix): IpAddr {
  return { family: p.family, value: p.addr + (p.len >= BITS[p.family] ? 0n : 1n) };
}

/** The gateway pods use: the first usable host. */
export function gateway(p: Prefix): IpAddr {
  return firstHost(p);
}

/** Broadcast address (last address; for v6 just the last address of the prefix). */
export function broadcast(p: Prefix): IpAddr {
  return { family: p.family, value: lastAddr(p) };
}

/** Last usable host: v4 skips the broadcast address; v6 has none to skip. */
export function lastHost(p: Prefix): IpAddr {
  const skip = p.family === 4 && p.len < 31 ? 1n : 0n;
  return { family: p.family, value: lastAddr(p) - skip };
}

/** Address `n` positions after the network address. */
export function nthAddr(p: Prefix, n: bigint): IpAddr {
  if (n < 0n || n >= prefixSize(p)) throw new RangeError(`offset ${n} is outside ${formatPrefix(p)}`);
  return { family: p.family, value: p.addr + n };
}

/** Number of subnets of length `subnetLen` in `network`. */
export function subnetCount(network: Prefix, subnetLen: number): bigint {
  if (subnetLen < network.len || subnetLen > BITS[network.family]) {
    throw new RangeError(`subnet length /${subnetLen} does not fit in ${formatPrefix(network)}`);
  }
  return 1n << BigInt(subnetLen - network.len);
}

/** The n-th (0-based) subnet of length `subnetLen` in `network`. */
export function nthSubnet(network: Prefix, subnetLen: number, n: bigint): Prefix {
  const count = subnetCount(network, subnetLen);
  if (n < 0n || n >= count) throw new RangeError(`subnet index ${n} is outside 0..${count - 1n} of ${formatPrefix(network)}`);
  const step = 1n << BigInt(BITS[network.family] - subnetLen);
  return { family: network.family, addr: network.addr + n * step, len: subnetLen };
}

/** Index of the subnet of length `subnetLen` that holds `addr` (which must be in `network`). */
export function subnetIndexOf(network: Prefix, subnetLen: number, addr: bigint): bigint {
  return (addr - network.addr) >> BigInt(BITS[network.family] - subnetLen);
}

/**
 * Inclusive index range [min, max] of the subnets of length `subnetLen` in `network` that
 * `p` overlaps; undefined when it overlaps none (other family or outside the network).
 */
export function subnetIndexRange(network: Prefix, subnetLen: number, p: Prefix): [bigint, bigint] | undefined {
  if (p.family !== network.family) return undefined;
  const clipped = contains(network, p) ? p : contains(p, network) ? network : undefined;
  if (!clipped) return undefined;
  return [subnetIndexOf(network, subnetLen, clipped.addr), subnetIndexOf(network, subnetLen, lastAddr(clipped))];
}
