// IP addresses as (family, bigint). One representation for IPv4 and IPv6 keeps every piece of
// prefix math exact and shared: no 32-bit overflow tricks for v4, no byte arrays for v6.
// We do not use ip-cidr: it is ESM-only with a dependency tree we would drag into the CNI
// plugin's import graph (start-up cost: docs/cni.md), and it models v4 and v6 differently.
// Output is canonical: dotted quad for v4, RFC 5952 for v6 (lower case, longest zero run
// compressed, a single zero group never compressed, no leading zeros).
import { invalid } from '../errors.js';

export type Family = 4 | 6;

export interface IpAddr {
  readonly family: Family;
  readonly value: bigint;
}

export const BITS: Record<Family, number> = { 4: 32, 6: 128 };

/** Largest value of an address of this family (all ones). */
export function maxValue(family: Family): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}

/**
 * The value of a dotted quad as a number, or -1: exactly four parts, each "0" or an ASCII
 * decimal number 1..255 without a leading zero ("010" is octal to some parsers and decimal to
 * others). Every accepted text is therefore already in canonical form. One pass over char
 * codes and one bigint at the end: this runs twice per lease decoded at start-up, where
 * split + regex + a bigint per octet was the largest single cost.
 */
function parseV4Number(s: string): number {
  let v = 0, octet = 0, digits = 0, dots = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2e) { // '.'
      if (digits === 0 || ++dots > 3) return -1;
      v = v * 256 + octet;
      octet = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) { // '0'..'9'
      if (digits === 1 && octet === 0) return -1; // leading zero
      octet = octet * 10 + (c - 0x30);
      digits++;
      if (octet > 255) return -1;
    } else {
      return -1;
    }
  }
  return dots === 3 && digits > 0 ? v * 256 + octet : -1;
}

function parseV4(s: string): bigint | undefined {
  const n = parseV4Number(s);
  return n < 0 ? undefined : BigInt(n);
}

function parseGroups(s: string): number[] | undefined {
  if (s === '') return [];
  const out: number[] = [];
  for (const g of s.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    out.push(parseInt(g, 16));
  }
  return out;
}

function parseV6(s: string): bigint | undefined {
  let text = s;
  // An embedded IPv4 tail ("::ffff:192.0.2.1") is rewritten as two hex groups.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseV4Number(text.slice(lastColon + 1));
    if (v4 < 0) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!);
    const rest = parseGroups(halves[1]!);
    if (!head || !rest) return undefined;
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else {
    const all = parseGroups(text);
    if (!all) return undefined;
    groups = all;
  }
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

/** Parses an IPv4 or IPv6 address; undefined when it is neither. No zone ids, no brackets. */
export function tryParseIp(s: string): IpAddr | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { family: 4, value: v };
}

/** Parses an address or throws `invalid(field, s, ...)`; `family` restricts the accepted family. */
export function parseIp(s: string, field = 'ip', family?: Family): IpAddr {
  const ip = tryParseIp(s);
  if (!ip) {
    const what = family === undefined ? 'an IPv4 or IPv6 address' : `an IPv${family} address`;
    throw invalid(field, s, `must be ${what}`);
  }
  if (family !== undefined && ip.family !== family) throw invalid(field, s, `must be an IPv${family} address`);
  return ip;
}

function formatV4(v: bigint): string {
  // The low 32 bits (what masking each octet out of the bigint would print), as one number.
  const n = Number(BigInt.asUintN(32, v));
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

function formatV6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // Longest run of zero groups (first one wins a tie), only when it is 2+ groups long.
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestAt = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

export function formatIp(ip: IpAddr): string {
  return ip.family === 4 ? formatV4(ip.value) : formatV6(ip.value);
}

/** Canonical text of an address given as text (throws like parseIp). */
export function canonicalIp(s: string, field = 'ip'): string {
  return formatIp(parseIp(s, field));
}

export function ipEquals(a: IpAddr, b: IpAddr): boolean {
  return a.family === b.family && a.value === b.value;
}
