// Spec validation for the traffic rules. Prefixes are canonicalised (network address, compressed
// IPv6) because nft and iptables-save print them that way, and check() compares text.
import { isIPv4, isIPv6 } from 'node:net';
import { invalid } from '../../lib/errors.js';

export type Family = 4 | 6;

export interface Cidr { family: Family; text: string }

function toBigInt(addr: string, family: Family): bigint {
  if (family === 4) return addr.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  const [head = '', tail] = addr.split('::');
  const words = (s: string) => (s === '' ? [] : s.split(':'));
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return all.reduce((acc, w) => (acc << 16n) | BigInt(parseInt(w, 16)), 0n);
}

function fromBigInt(v: bigint, family: Family): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const hex = [...Array(8).keys()].map((i) => ((v >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
  return new URL(`http://[${hex}]/`).hostname.slice(1, -1);   // WHATWG compresses like nft does
}

/** Parses `addr/len` of the given family; host bits must be zero. */
export function parseCidr(field: string, value: string, family: Family): Cidr {
  const [addr = '', len = '', extra] = value.split('/');
  const bits = family === 4 ? 32 : 128;
  const okAddr = family === 4 ? isIPv4(addr) : isIPv6(addr) && !addr.includes('.');
  const n = Number(len);
  if (extra !== undefined || !okAddr || !/^\d{1,3}$/.test(len) || n > bits) {
    throw invalid(field, value, `must be an IPv${family} prefix such as ${family === 4 ? '10.244.0.0/16' : 'fd00:10::/56'}`);
  }
  const v = toBigInt(addr, family);
  const hostMask = (1n << BigInt(bits - n)) - 1n;
  if ((v & hostMask) !== 0n) throw invalid(field, value, 'host bits must be zero (use the network address)');
  return { family, text: `${fromBigInt(v, family)}/${n}` };
}
