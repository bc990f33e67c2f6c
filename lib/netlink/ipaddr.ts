// Address text <-> wire bytes for the netlink codec. Kept here (not in lib/ip) so that the codec,
// which the CNI plugin loads on every invocation, has no dependency beyond node:buffer.
// Output is canonical: dotted quad for IPv4, RFC 5952 for IPv6 (lowercase, longest zero run
// compressed), lowercase colon-separated MACs — the forms the NetlinkHandle contract promises, so
// that desired and observed state compare as plain strings.
import type { Family } from './types.js';

export interface IpBytes {
  family: Family;
  bytes: Buffer;
}

/** Parses dotted-quad IPv4 (s[from..to)) into out[off..off+4) without allocating; false when malformed. */
export function parseV4Into(s: string, out: Buffer, off: number, from = 0, to = s.length): boolean {
  let part = 0;
  let val = 0;
  let digits = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return false;
      out[off + part++] = val;
      val = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (++digits > 3) return false;
      val = val * 10 + (c - 48);
      if (val > 255) return false;
    } else {
      return false;
    }
  }
  if (digits === 0 || part !== 3) return false;
  out[off + 3] = val;
  return true;
}
const parseV4 = parseV4Into;

function parseV6(s: string): Buffer | undefined {
  const out = Buffer.alloc(16);
  const dbl = s.indexOf('::');
  if (dbl !== s.lastIndexOf('::')) return undefined;
  const head = dbl < 0 ? s : s.slice(0, dbl);
  const tail = dbl < 0 ? '' : s.slice(dbl + 2);
  const groups = (txt: string): number[] | undefined => {
    if (txt === '') return [];
    const words: number[] = [];
    const parts = txt.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = Buffer.alloc(4);
        if (!parseV4(p, v4, 0)) return undefined;
        words.push(v4.readUInt16BE(0), v4.readUInt16BE(2));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
        words.push(parseInt(p, 16));
      }
    }
    return words;
  };
  const h = groups(head);
  const t = groups(tail);
  if (!h || !t) return undefined;
  if (dbl < 0 ? h.length !== 8 : h.length + t.length > 7) return undefined;
  h.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  t.forEach((w, i) => out.writeUInt16BE(w, (8 - t.length + i) * 2));
  return out;
}

/** Parses an IPv4 or IPv6 address; undefined when malformed. */
export function parseIp(s: string): IpBytes | undefined {
  if (s.includes(':')) {
    const b = parseV6(s);
    return b ? { family: 6, bytes: b } : undefined;
  }
  const b = Buffer.alloc(4);
  return parseV4(s, b, 0) ? { family: 4, bytes: b } : undefined;
}

export function ipFamily(s: string): Family | undefined {
  return parseIp(s)?.family;
}

function formatV6(b: Buffer, off: number): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push(b.readUInt16BE(off + i * 2));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (ws: number[]) => ws.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(w);
  return `${hex(w.slice(0, bestStart))}::${hex(w.slice(bestStart + bestLen))}`;
}

/** Formats 4 or 16 bytes at `off` of `b` (length decides the family). */
export function formatIp(b: Buffer, off = 0, len = b.length - off): string {
  if (len === 4) return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  if (len === 16) return formatV6(b, off);
  throw new RangeError(`address of ${len} bytes`);
}

export interface PrefixBytes extends IpBytes {
  len: number;
}

/** Parses "10.244.1.0/24" (a bare address means a host prefix). */
export function parsePrefix(s: string): PrefixBytes | undefined {
  const slash = s.indexOf('/');
  const ip = parseIp(slash < 0 ? s : s.slice(0, slash));
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (slash < 0) return { ...ip, len: max };
  const lenTxt = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(lenTxt)) return undefined;
  const len = Number(lenTxt);
  return len <= max ? { ...ip, len } : undefined;
}

const hexVal = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

/** Parses "aa:bb:cc:dd:ee:ff" into out[off..off+6) without allocating; false when malformed. */
export function parseMacInto(s: string, out: Buffer, off: number): boolean {
  if (s.length !== 17) return false;
  for (let i = 0; i < 6; i++) {
    const hi = hexVal(s.charCodeAt(i * 3));
    const lo = hexVal(s.charCodeAt(i * 3 + 1));
    if (hi < 0 || lo < 0 || (i < 5 && s.charCodeAt(i * 3 + 2) !== 58)) return false;
    out[off + i] = hi * 16 + lo;
  }
  return true;
}

export function parseMac(s: string): Buffer | undefined {
  const b = Buffer.alloc(6);
  return parseMacInto(s, b, 0) ? b : undefined;
}

export function formatMac(b: Buffer, off = 0, len = b.length - off): string {
  let s = '';
  for (let i = 0; i < len; i++) {
    const v = b[off + i]!;
    s += (i ? ':' : '') + (v < 16 ? '0' : '') + v.toString(16);
  }
  return s;
}
