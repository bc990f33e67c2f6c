// Minimal, strict IP math on bigint for the plugin's hot path (parse, format, prefix bounds).
// Formatting follows Go's net.IP.String() (RFC 5952 for IPv6) because host-local names its
// reservation files that way, and a node moving from host-local must find its records.

export type IpFamily = 4 | 6;

export interface Ip {
  family: IpFamily;
  value: bigint;
}

export interface Cidr {
  family: IpFamily;
  addr: bigint;       // the address as written (host bits may be set: "10.244.1.1/24")
  prefixLen: number;
}

const V4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function bits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

export function parseIp(s: string): Ip | undefined {
  if (V4_RE.test(s)) {
    const v = s.split('.').reduce((acc, o) => (acc << 8n) | BigInt(o), 0n);
    return { family: 4, value: v };
  }
  const v6 = parseV6(s);
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

function parseV6(s: string): bigint | undefined {
  if (s.length < 2 || s.length > 45 || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (i === items.length - 1 && it.includes('.')) {
        if (!V4_RE.test(it)) return undefined;
        const o = it.split('.').map(Number);
        out.push((o[0]! << 8) | o[1]!, (o[2]! << 8) | o[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(it)) out.push(parseInt(it, 16));
      else return undefined;
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const n = head.length + tail.length;
  if (halves.length === 2 ? n > 7 : n !== 8) return undefined;
  const all = [...head, ...new Array<number>(8 - n).fill(0), ...tail];
  return all.reduce((acc, g) => (acc << 16n) | BigInt(g), 0n);
}

export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((s) => ((value >> s) & 0xffn).toString()).join('.');
  }
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  // Longest run (>= 2) of zero groups, first one on a tie.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

export function parseCidr(s: string): Cidr | undefined {
  const slash = s.indexOf('/');
  if (slash < 0) return undefined;
  const ip = parseIp(s.slice(0, slash));
  const lenStr = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenStr)) return undefined;
  const prefixLen = Number(lenStr);
  if (prefixLen > bits(ip.family)) return undefined;
  return { family: ip.family, addr: ip.value, prefixLen };
}

export function hostMask(family: IpFamily, prefixLen: number): bigint {
  return (1n << BigInt(bits(family) - prefixLen)) - 1n;
}

export function networkOf(c: Cidr): bigint {
  return c.addr & ~hostMask(c.family, c.prefixLen);
}

export function lastOf(c: Cidr): bigint {
  return networkOf(c) | hostMask(c.family, c.prefixLen);
}

export function contains(c: Cidr, family: IpFamily, v: bigint): boolean {
  return family === c.family && v >= networkOf(c) && v <= lastOf(c);
}

export function formatCidr(family: IpFamily, addr: bigint, prefixLen: number): string {
  return `${formatIp(family, addr)}/${prefixLen}`;
}

/** "10.244.1.0/24" for a Cidr (host bits cleared). */
export function networkString(c: Cidr): string {
  return formatCidr(c.family, networkOf(c), c.prefixLen);
}
