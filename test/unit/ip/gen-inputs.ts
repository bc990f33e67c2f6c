// Deterministic generators of address, MAC and prefix texts for the differential tests: valid
// forms (canonical and not), near misses made by editing valid ones, and hand-picked nasty
// tokens (leading zeros, signs, whitespace, non-ASCII digits, wrong part counts).
import { isDeepStrictEqual } from 'node:util';
import { formatIp } from './reference-parsers.js';

/** mulberry32: a tiny seeded PRNG, so a failing input is reproducible. */
export class Gen {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number { return Math.floor(this.next() * n); }
  chance(p: number): boolean { return this.next() < p; }
  pick<T>(a: readonly T[]): T { return a[this.int(a.length)]!; }
  bigint(bits: number): bigint {
    let v = 0n;
    for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(this.int(0x10000));
    return v & ((1n << BigInt(bits)) - 1n);
  }
}

// Characters an edit may insert: every class the parsers treat specially, plus look-alikes.
const EDIT_CHARS = [...'0123456789abcdefABCDEFgxX.:-/%[]& +\t\n', '\u0663', '\uff11', '\u212a', '\u0130', '\u00a0', '\ud83d\ude00'];

/** `s` with 1–2 random single-character edits (insert, delete, replace, duplicate). */
export function mutate(g: Gen, s: string): string {
  let out = s;
  for (let k = 1 + g.int(2); k > 0; k--) {
    const at = g.int(out.length + 1);
    switch (g.int(4)) {
      case 0: out = out.slice(0, at) + g.pick(EDIT_CHARS) + out.slice(at); break;
      case 1: out = out.slice(0, at) + out.slice(at + 1); break;
      case 2: out = out.slice(0, at) + g.pick(EDIT_CHARS) + out.slice(at + 1); break;
      default: out = out.slice(0, at) + out.slice(at, at + 1) + out.slice(at); break;
    }
  }
  return out;
}

const OCTETS = ['0', '1', '9', '10', '99', '100', '199', '200', '249', '250', '255', '256', '260', '300', '999', '1000',
  '00', '01', '010', '001', '0255', '0x1', '1e2', '+1', '-1', ' 1', '1 ', '', '\u0663', '\uff11', '1\n', 'a', '0.', '1_0'];

export function v4Valid(g: Gen): string {
  const o = () => String(g.chance(0.2) ? g.pick([0, 1, 254, 255]) : g.int(256));
  return `${o()}.${o()}.${o()}.${o()}`;
}

export function v4Nasty(g: Gen): string {
  const parts = Array.from({ length: g.pick([1, 2, 3, 4, 4, 4, 4, 5, 6]) }, () => g.chance(0.6) ? String(g.int(256)) : g.pick(OCTETS));
  let s = parts.join('.');
  if (g.chance(0.05)) s = `.${s}`;
  if (g.chance(0.05)) s = `${s}.`;
  return s;
}

const GROUPS = ['0', '1', 'a', 'A', 'ffff', 'FFFF', '0000', '00000', '12345', 'g', 'db8', 'DB8', '2001', 'fd00', '0db8', '', ' 1', '+1', '-1'];

/** IPv6 texts: random groups, compressed or not, upper case, zero padding, an IPv4 tail. */
export function v6Text(g: Gen): string {
  const n = g.chance(0.85) ? 8 : g.pick([6, 7, 9]);
  const groups = Array.from({ length: n }, () => {
    if (g.chance(0.1)) return g.pick(GROUPS);
    const v = g.chance(0.4) ? 0 : g.int(0x10000);
    const h = v.toString(16);
    return g.chance(0.2) ? h.padStart(4, '0').toUpperCase() : h;
  });
  if (g.chance(0.25)) groups.splice(n - 2, 2, g.chance(0.7) ? v4Valid(g) : v4Nasty(g));
  if (g.chance(0.6)) {
    const at = g.int(groups.length + 1);
    const len = g.int(Math.min(5, groups.length - at + 1));
    const head = groups.slice(0, at).join(':');
    const tail = groups.slice(at + len).join(':');
    return `${head}::${tail}`;
  }
  return groups.join(':');
}

export function ipTextFrom(g: Gen): string {
  switch (g.int(6)) {
    case 0: return v4Valid(g);
    case 1: return v4Nasty(g);
    case 2: return v6Text(g);
    case 3: return `::ffff:${g.chance(0.8) ? v4Valid(g) : v4Nasty(g)}`;
    case 4: return mutate(g, v4Valid(g));
    default: return mutate(g, v6Text(g));
  }
}

export const IP_FIXED = ['', '0.0.0.0', '255.255.255.255', '010.1.1.1', '1.1.1.01', '256.1.1.1', '1.2.3.4.', '.1.2.3.4',
  '1..2.3', '1.2.3', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4 ', '+1.2.3.4', '-1.2.3.4', '1.2.3.+4', '\u0661.2.3.4', '\uff11.2.3.4',
  '1.2.3.4\n', '1.2.3.4%eth0', '1.2.3.4/24', '0x1.2.3.4', '1e2.2.3.4', '::', '::1', ':::', '::ffff:1.2.3.4',
  '::FFFF:1.2.3.4', '::ffff:1.2.3', '::ffff:01.2.3.4', '::ffff:256.2.3.4', '1.2.3.4::', '::1.2.3.4:1', 'fe80::1%eth0',
  '[::1]', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '::1.2.3.4.5',
  '2001:DB8::1', '2001:db8::0:1', '0:0:0:0:0:0:0:0', '::0.0.0.0', '1::2::3', 'g::1', '12345::', ':1', '1:', '1.2.3.4:'];

export function macText(g: Gen): string {
  const count = g.chance(0.9) ? 6 : g.pick([5, 7]);
  const letterCase = g.pick(['lower', 'lower', 'lower', 'upper', 'mixed']);
  const groups = Array.from({ length: count }, () => {
    if (g.chance(0.04)) return g.pick(['0', 'abc', '0ab', 'g0', 'zz', '', ' a', '\u0663\u0663', '+1', '0x']);
    const h = g.int(256).toString(16).padStart(2, '0');
    if (letterCase === 'upper') return h.toUpperCase();
    return letterCase === 'mixed' && g.chance(0.5) ? h[0]!.toUpperCase() + h[1]! : h;
  });
  const mode = g.int(10);
  if (mode < 5) return groups.join(':');
  if (mode < 7) return groups.join('-');
  if (mode < 8) return groups.join(g.pick(['.', ' ', '', '::', '_']));
  let s = groups[0]!;
  for (let i = 1; i < groups.length; i++) s += g.pick([':', '-', ':', '-', '.']) + groups[i]!;
  return s;
}

export const MAC_FIXED = ['', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff', '01:00:5e:00:00:01', '02:42:ac:11:00:02',
  '02-42-AC-11-00-02', '02:42-ac:11:00:02', '02:42:ac:11:00:02:', ':02:42:ac:11:00:02', '2:42:ac:11:0:2', '002:42:ac:11:00:02',
  '02:42:ac:11:00:0g', '02:42:ac:11:00', '02:42:ac:11:00:02:03', '0242.ac11.0002', '024 2ac110002', '02:42:AC:11:00:02',
  '02:42:ac:11:00:02\n', ' 02:42:ac:11:00:02', '\uff10\uff12:42:ac:11:00:02', '0a:58:0a:f4:01:01', '0A:58:0a:F4:01:01'];

const LENS = ['0', '1', '8', '16', '24', '25', '31', '32', '33', '48', '64', '96', '127', '128', '129', '200', '999', '1000',
  '024', '00', '-1', '', '+8', ' 8', '8 ', '1e1', '\u0663', '0x8', '8.0', '16/16'];

/** A prefix text of `family`; host bits are set with probability `hostBits`. */
export function networkPrefix(g: Gen, family: 4 | 6, hostBits: number): string {
  const bits = family === 4 ? 32 : 128;
  const len = g.int(bits + 1);
  let v = g.bigint(bits);
  if (!g.chance(hostBits)) v &= ~((1n << BigInt(bits - len)) - 1n) & ((1n << BigInt(bits)) - 1n);
  let addr = formatIp({ family, value: v });
  if (family === 6 && g.chance(0.3)) {
    const groups: string[] = [];
    for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16).padStart(4, '0'));
    addr = groups.join(':');
    if (g.chance(0.5)) addr = addr.toUpperCase();
  }
  return `${addr}/${len}`;
}

/** Prefix texts: mostly valid network addresses (canonical or v6 zero-padded), some with host bits. */
export function prefixText(g: Gen): string {
  const mode = g.int(8);
  if (mode < 4) return networkPrefix(g, g.chance(0.6) ? 4 : 6, 0.15);
  if (mode < 6) return `${ipTextFrom(g)}/${g.chance(0.5) ? String(g.int(130)) : g.pick(LENS)}`;
  if (mode < 7) return mutate(g, prefixText(g));
  return g.pick([ipTextFrom(g), `${ipTextFrom(g)}/${g.pick(LENS)}/${g.pick(LENS)}`, `/${g.pick(LENS)}`]);
}

/** Runs `check` on every input and returns the first few inputs where live and reference differ. */
export function differences<T>(inputs: Iterable<T>, check: (x: T) => [unknown, unknown]): { input: T; live: unknown; ref: unknown }[] {
  const out: { input: T; live: unknown; ref: unknown }[] = [];
  for (const x of inputs) {
    const [l, r] = check(x);
    if (!isDeepStrictEqual(l, r) && out.length < 5) out.push({ input: x, live: l, ref: r });
  }
  return out;
}
