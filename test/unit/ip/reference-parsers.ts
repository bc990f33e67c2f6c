// Test-only reference: verbatim copies of the address, MAC and prefix parsers/formatters as
// they were before the char-code rewrite (lib/ip/addr.ts, mac.ts, prefix.ts). The
// differential tests run these against the live code on generated inputs, so any difference
// in what is accepted, what comes out or what an error says shows up as a failing case.
// Do not "fix" or speed these up: their only job is to be the old behaviour.
import { invalid } from '../../../lib/errors.js';

export type Family = 4 | 6;

export interface IpAddr {
  readonly family: Family;
  readonly value: bigint;
}

export const BITS: Record<Family, number> = { 4: 32, 6: 128 };

export function maxValue(family: Family): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}

function parseV4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
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
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (v4 === undefined) return undefined;
    text = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
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

export function tryParseIp(s: string): IpAddr | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === undefined ? undefined : { family: 6, value: v };
  }
  const v = parseV4(s);
  return v === undefined ? undefined : { family: 4, value: v };
}

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
  return [24n, 16n, 8n, 0n].map((sh) => String((v >> sh) & 0xffn)).join('.');
}

function formatV6(v: bigint): string {
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
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

export function canonicalIp(s: string, field = 'ip'): string {
  return formatIp(parseIp(s, field));
}

// ---- mac.ts ----

export function parseMac(s: string): Uint8Array | undefined {
  if (typeof s !== 'string') return undefined;
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  const sep = s[2];
  if (!parts.every((_, i) => i === 5 || s[i * 3 + 2] === sep)) return undefined;
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(octets: Uint8Array): string {
  return Array.from(octets, (o) => o.toString(16).padStart(2, '0')).join(':');
}

export function macProblem(s: string): string | undefined {
  const m = parseMac(s);
  if (!m) return 'must be 6 hex octets separated by ":" (e.g. "0a:58:0a:f4:01:01")';
  if ((m[0]! & 1) === 1) return 'is a multicast/broadcast MAC (lowest bit of the first octet set)';
  if (m.every((o) => o === 0)) return 'is the all-zero MAC';
  return undefined;
}

export function isValidUnicastMac(s: string): boolean {
  return macProblem(s) === undefined;
}

export function canonicalMac(s: string): string | undefined {
  const m = parseMac(s);
  return m ? formatMac(m) : undefined;
}

// ---- prefix.ts ----

export interface Prefix {
  readonly family: Family;
  readonly addr: bigint;
  readonly len: number;
}

export interface ParsePrefixOptions {
  field?: string;
  family?: Family;
  normalize?: boolean;
}

export function hostMask(family: Family, len: number): bigint {
  return (1n << BigInt(BITS[family] - len)) - 1n;
}

export function makePrefix(ip: IpAddr, len: number): Prefix {
  return { family: ip.family, addr: ip.value & ~hostMask(ip.family, len) & maxValue(ip.family), len };
}

export function parsePrefix(s: string, opts: ParsePrefixOptions = {}): Prefix {
  const field = opts.field ?? 'prefix';
  const fam = opts.family === undefined ? 'an IPv4 or IPv6 prefix' : `an IPv${opts.family} prefix`;
  if (typeof s !== 'string') throw invalid(field, s, `must be ${fam} as a string, e.g. "10.244.0.0/16"`);
  const slash = s.indexOf('/');
  if (slash < 0) throw invalid(field, s, `must be ${fam} in CIDR form address/length, e.g. "10.244.0.0/16"`);
  const ip = tryParseIp(s.slice(0, slash));
  if (!ip) throw invalid(field, s, `must be ${fam}: "${s.slice(0, slash)}" is not an IP address`);
  if (opts.family !== undefined && ip.family !== opts.family) throw invalid(field, s, `must be ${fam}`);
  const lenText = s.slice(slash + 1);
  const bits = BITS[ip.family];
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > bits) {
    throw invalid(field, s, `prefix length must be an integer 0..${bits}`);
  }
  const p = makePrefix(ip, Number(lenText));
  if (p.addr !== ip.value && !opts.normalize) {
    throw invalid(field, s, `host bits are set; the network address is ${formatPrefix(p)}`);
  }
  return p;
}

export function tryParsePrefix(s: string, opts: ParsePrefixOptions = {}): Prefix | undefined {
  try { return parsePrefix(s, opts); } catch { return undefined; }
}

export function formatPrefix(p: Prefix): string {
  return `${formatIp({ family: p.family, value: p.addr })}/${p.len}`;
}
