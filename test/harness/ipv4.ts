// Tiny IPv4 helpers for the harness (the product's prefix math lives in lib/ip).
export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): { base: number; len: number } {
  const [addr, len] = cidr.split('/');
  const l = Number(len);
  if (!addr || !Number.isInteger(l) || l < 0 || l > 32) throw new Error(`not an IPv4 prefix: ${cidr}`);
  const mask = l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
  return { base: (ipToInt(addr) & mask) >>> 0, len: l };
}

/** The n-th address of a prefix (0 = network address). */
export function nthAddress(cidr: string, n: number): string {
  const { base } = parseCidr(cidr);
  return intToIp((base + n) >>> 0);
}

export function contains(cidr: string, ip: string): boolean {
  const { base, len } = parseCidr(cidr);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === base;
}

export function overlaps(a: string, b: string): boolean {
  const pa = parseCidr(a);
  const pb = parseCidr(b);
  const len = Math.min(pa.len, pb.len);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return ((pa.base & mask) >>> 0) === ((pb.base & mask) >>> 0);
}
