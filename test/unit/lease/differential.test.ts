// Differential test: the live subnet-key and lease-value decoders against verbatim copies of
// the ones they replaced (reference-codec.ts), on generated keys and flannel-shaped JSON with
// every field varied: name case (including a Kelvin sign that lower-cases to "k"), duplicate
// names differing only in case, valid/invalid/odd values, missing and extra fields.
import { describe, expect, it } from 'vitest';
import * as codec from '../../../lib/lease/codec.js';
import * as key from '../../../lib/lease/key.js';

const live = { ...codec, ...key };
import * as ref from './reference-codec.js';
import { Gen, MAC_FIXED, differences, ipTextFrom, macText, mutate, networkPrefix, prefixText, v4Valid, v6Text } from '../ip/gen-inputs.js';

const DIRS = ['', '/twill.io/network/subnets/', '/coreos.com/network/subnets/', 'subnets/', '/a-b/c&d/'];

function keyText(g: Gen): string {
  const dash = (p: string) => { const slash = p.lastIndexOf('/'); return slash < 0 ? p : `${p.slice(0, slash)}-${p.slice(slash + 1)}`; };
  const dashed = () => dash(prefixText(g));
  let name: string;
  switch (g.int(7)) {
    case 0: case 1: name = dashed(); break;
    case 2: name = `${dashed()}&${dashed()}`; break;
    case 6: name = `${dash(networkPrefix(g, 4, 0.1))}&${dash(networkPrefix(g, 6, 0.1))}`; break;
    case 3: name = `${v4Valid(g)}-${g.int(34)}`; break;
    case 4: name = mutate(g, dashed()); break;
    default: name = g.pick(['config', '', '&', '-24', '10.0.0.0-24&', '&fd00::-64', '10.0.0.0--24', '10.0.0.0-24-24', dashed() + '&' + dashed() + '&' + dashed()]);
  }
  return g.pick(DIRS) + name;
}

/** Spellings Go's case-insensitive field matching (and ours) would map to `name`, and near misses. */
function spell(g: Gen, name: string, wild: boolean): string {
  const r = g.int(wild ? 20 : 17);
  if (r < 14) return name;
  if (r === 14) return name.toLowerCase();
  if (r === 15) return name.toUpperCase();
  if (r === 16 && /k/i.test(name)) return name.replace(/k/i, '\u212a');
  if (r === 17) return `${name} `;
  if (r === 18) return name.slice(1);
  return name[0]!.toLowerCase() + name.slice(1);
}

/** An accepted MAC text: canonical, upper case or '-'-separated. */
function goodMac(g: Gen): string {
  const groups = Array.from({ length: 6 }, () => g.int(256).toString(16).padStart(2, '0'));
  const s = groups.join(g.chance(0.8) ? ':' : '-');
  return g.chance(0.2) ? s.toUpperCase() : s;
}

function macValue(g: Gen, wild: boolean): unknown {
  if (!wild) return goodMac(g);
  if (g.chance(0.85)) return g.chance(0.8) ? macText(g) : g.pick(MAC_FIXED);
  return g.pick([null, 5, '', undefined, ['02:42:00:00:00:01'], mutate(g, macText(g))]);
}

function backendData(g: Gen, wild: boolean): unknown {
  if (wild && g.chance(0.08)) return g.pick([null, 'vxlan', [], 1, undefined, {}]);
  const o: Record<string, unknown> = {};
  const fields: [string, () => unknown][] = [
    ['VNI', () => !wild || g.chance(0.85) ? g.pick([0, 1, 1, 4096, 16_777_215]) : g.pick([-1, 16_777_216, 1.5, '1', null, true, 1e21])],
    ['VtepMAC', () => macValue(g, wild)],
  ];
  if (g.chance(0.5)) fields.reverse();
  for (const [name, value] of fields) if (!wild || g.chance(0.95)) o[spell(g, name, wild)] = value();
  if (g.chance(0.1)) o[spell(g, 'VtepMAC', wild)] = macValue(g, wild);
  if (g.chance(0.05)) o.Extra = 1;
  return o;
}

/** A lease value: half of them well-formed but for spelling, half with anything going wrong. */
function leaseValue(g: Gen): string {
  if (g.chance(0.03)) return g.pick(['', 'null', '[]', '"x"', '1', '{', '{"PublicIP":', 'not json', '{}']);
  const wild = g.chance(0.5);
  const o: Record<string, unknown> = {};
  const ipOrOdd = (v6: boolean) => !wild ? (v6 ? goodV6Text(g) : v4Valid(g))
    : g.chance(0.8) ? (v6 ? (g.chance(0.7) ? v6Text(g) : ipTextFrom(g)) : (g.chance(0.7) ? v4Valid(g) : ipTextFrom(g)))
      : g.pick([null, '', '0.0.0.0', 5, undefined, ['1.2.3.4'], '::']);
  const fields: [string, () => unknown][] = [
    ['PublicIP', () => !wild && g.chance(0.1) ? g.pick(['0.0.0.0', '']) : ipOrOdd(false)],
    ['PublicIPv6', () => g.chance(0.6) ? null : ipOrOdd(true)],
    ['BackendType', () => !wild || g.chance(0.9) ? 'vxlan' : g.pick(['', 'host-gw', 5, null])],
    ['BackendData', () => backendData(g, wild)],
    ['BackendV6Data', () => g.chance(0.6) ? null : backendData(g, wild)],
  ];
  for (const [name, value] of fields) {
    if (name === 'BackendV6Data' && g.chance(0.5)) continue;
    if (!wild || g.chance(0.96)) o[spell(g, name, wild)] = value();
  }
  if (g.chance(0.1)) o[spell(g, g.pick(fields)[0], wild)] = g.pick(fields)[1]();
  if (g.chance(0.03)) o['__proto__'] = { PublicIP: '1.2.3.4' };
  const json = JSON.stringify(o);
  return g.chance(0.05) ? mutate(g, json) : json;
}

/** An IPv6 address text the parser accepts: RFC 5952, zero-padded or upper case. */
function goodV6Text(g: Gen): string {
  const groups = Array.from({ length: 8 }, () => (g.chance(0.4) ? 0 : g.int(0x10000)).toString(16));
  if (g.chance(0.3)) return groups.map((x) => x.padStart(4, '0')).join(':').toUpperCase();
  return g.chance(0.5) ? groups.join(':') : `${groups.slice(0, 3).join(':')}::${groups.slice(6).join(':')}`;
}

describe('lease decoding: live vs reference', () => {
  const g = new Gen(11);
  const keys = Array.from({ length: 15_000 }, () => keyText(g));
  const values = Array.from({ length: 15_000 }, () => leaseValue(g));

  it('covers v4, dual-stack, v6-only and rejected keys, and accepted and rejected values', () => {
    const kinds = keys.map((k) => { const p = ref.decodeSubnetKey(k); return !p ? 'bad' : p.ipv6Subnet ? (p.subnet ? 'dual' : 'v6') : 'v4'; });
    for (const k of ['bad', 'dual', 'v6', 'v4']) expect(kinds.filter((x) => x === k).length).toBeGreaterThan(300);
    const ok = values.filter((v) => ref.decodeLeaseAttrs(v).ok).length;
    expect(ok).toBeGreaterThan(2000);
    expect(values.length - ok).toBeGreaterThan(2000);
  });

  it('decodeSubnetKey, decodeLeaseAttrs and decodeLease agree', () => {
    expect(differences(keys, (k) => [live.decodeSubnetKey(k), ref.decodeSubnetKey(k)])).toEqual([]);
    expect(differences(values, (v) => [live.decodeLeaseAttrs(v), ref.decodeLeaseAttrs(v)])).toEqual([]);
    const metas = [{ expiration: null }, { expiration: 5, leaseId: '77' }];
    expect(differences(keys.map((k, i) => [k, values[i]!, metas[i % 2]!] as const),
      ([k, v, m]) => [live.decodeLease(k, v, m), ref.decodeLease(k, v, m)])).toEqual([]);
  });

  it('agrees on typical flannel leases', () => {
    const typical = Array.from({ length: 2000 }, (_, i) => [
      `/twill.io/network/subnets/10.${i >> 8}.${i & 255}.0-24`,
      `{"PublicIP":"172.16.${i >> 8}.${i & 255}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"02:42:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:01"}}`,
    ] as const);
    expect(differences(typical, ([k, v]) => [live.decodeLease(k, v, { expiration: 1 }), ref.decodeLease(k, v, { expiration: 1 })])).toEqual([]);
    expect(typical.every(([k, v]) => live.decodeLease(k, v, { expiration: 1 }).ok)).toBe(true);
  });
});
