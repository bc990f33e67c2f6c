// MAC addresses: a VTEP MAC from a peer lease must be a 6-octet unicast address before it is
// written to the ARP/FDB tables (a multicast or all-zero MAC there silently breaks delivery).

const COLON = 0x3a, DASH = 0x2d;

/** Value of an ASCII hex digit's char code (either case), or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20; // 'A'..'F' → 'a'..'f'; no other code lands in 'a'..'f'
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/**
 * Parses "aa:bb:cc:dd:ee:ff" (or with '-'), any case, into 6 octets; undefined if malformed.
 * Six 2-digit hex groups and one separator used throughout means exactly 17 characters with
 * the separator at 2, 5, 8, 11 and 14, so the check is a single pass over char codes.
 */
export function parseMac(s: string): Uint8Array | undefined {
  if (typeof s !== 'string' || s.length !== 17) return undefined;
  const sep = s.charCodeAt(2);
  if (sep !== COLON && sep !== DASH) return undefined;
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) {
    const at = i * 3;
    if (i < 5 && s.charCodeAt(at + 2) !== sep) return undefined;
    const hi = hexDigit(s.charCodeAt(at)), lo = hexDigit(s.charCodeAt(at + 1));
    if (hi < 0 || lo < 0) return undefined;
    out[i] = hi * 16 + lo;
  }
  return out;
}

const HEX_OCTET = Array.from({ length: 256 }, (_, o) => o.toString(16).padStart(2, '0'));

/** Lower-case, colon-separated form. */
export function formatMac(octets: Uint8Array): string {
  let s = '';
  for (let i = 0; i < octets.length; i++) s += i === 0 ? HEX_OCTET[octets[i]!] : `:${HEX_OCTET[octets[i]!]}`;
  return s;
}

/** Whether `s` is already what canonicalMac returns: 17 chars, lower-case hex, ':' separators. */
function isCanonicalMac(s: string): boolean {
  if (s.length !== 17) return false;
  for (let i = 0; i < 17; i++) {
    const c = s.charCodeAt(i);
    if (i % 3 === 2 ? c !== COLON : !((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66))) return false;
  }
  return true;
}

/** Why `s` is not a valid unicast MAC, or undefined when it is one. */
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

/** Canonical text of a valid MAC, or undefined. */
export function canonicalMac(s: string): string | undefined {
  // Leases carry the canonical form already; then the text itself is the answer.
  if (typeof s === 'string' && isCanonicalMac(s)) return s;
  const m = parseMac(s);
  return m ? formatMac(m) : undefined;
}
