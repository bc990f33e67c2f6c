// MAC addresses: a VTEP MAC from a peer lease must be a 6-octet unicast address before it is
// written to the ARP/FDB tables (a multicast or all-zero MAC there silently breaks delivery).

/** Parses "aa:bb:cc:dd:ee:ff" (or with '-'), any case, into 6 octets; undefined if malformed. */
export function parseMac(s: string): Uint8Array | undefined {
  if (typeof s !== 'string') return undefined;
  const parts = s.split(/[:-]/);
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) return undefined;
  const sep = s[2];
  if (!parts.every((_, i) => i === 5 || s[i * 3 + 2] === sep)) return undefined;
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** Lower-case, colon-separated form. */
export function formatMac(octets: Uint8Array): string {
  return Array.from(octets, (o) => o.toString(16).padStart(2, '0')).join(':');
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
  const m = parseMac(s);
  return m ? formatMac(m) : undefined;
}
