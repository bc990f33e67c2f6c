import { describe, expect, it } from 'vitest';
import { formatPrefix, nthSubnet, parsePrefix } from '../../../lib/ip/prefix.js';
import { freeSubnetCount, pickFreeSubnet, randomBelow, takenIntervals, type PickRange } from '../../../lib/ip/pick.js';
import { seeded } from '../../util/rng.js';

const P = (s: string) => parsePrefix(s);

const net16: PickRange = { network: P('10.244.0.0/16'), subnetLen: 24, min: 1n, max: 255n };

describe('takenIntervals', () => {
  it('clips to [min,max], merges adjacent and overlapping, ignores outside prefixes', () => {
    const taken = ['10.244.0.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.16.0/20', '10.244.20.0/24', '10.245.0.0/24', 'fd00::/64'];
    expect(takenIntervals(net16, taken.map(P))).toEqual([[3n, 4n], [16n, 31n]]);
    expect(freeSubnetCount(net16, taken.map(P))).toBe(255n - 18n);
  });
});

describe('pickFreeSubnet', () => {
  it('never returns a taken subnet and covers every free one', () => {
    const taken = [3n, 4n, 7n, 200n, 255n].map((i) => nthSubnet(net16.network, 24, i));
    const seen = new Set<string>();
    const rnd = seeded(1);
    for (let i = 0; i < 5000; i++) {
      const p = pickFreeSubnet(net16, taken, rnd)!;
      seen.add(formatPrefix(p));
    }
    expect(seen.size).toBe(255 - 5);
    for (const t of taken) expect(seen.has(formatPrefix(t))).toBe(false);
    expect(seen.has('10.244.0.0/24')).toBe(false); // below SubnetMin
  });

  it('is uniform over the free subnets (chi-square sanity check)', () => {
    const range: PickRange = { network: P('10.244.0.0/24'), subnetLen: 28, min: 0n, max: 15n };
    const taken = [P('10.244.0.32/27')]; // indexes 2 and 3
    const counts = new Map<string, number>();
    const rnd = seeded(7);
    const n = 14_000;
    for (let i = 0; i < n; i++) {
      const k = formatPrefix(pickFreeSubnet(range, taken, rnd)!);
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(14);
    const expected = n / 14;
    const chi = [...counts.values()].reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi).toBeLessThan(40); // 13 d.o.f.: p < 0.001 at ≈34.5
  });

  it('returns undefined when exhausted, and finds the single free subnet', () => {
    const all = Array.from({ length: 255 }, (_, i) => nthSubnet(net16.network, 24, BigInt(i + 1)));
    expect(pickFreeSubnet(net16, all, seeded(2))).toBeUndefined();
    const oneFree = all.filter((p) => formatPrefix(p) !== '10.244.77.0/24');
    expect(formatPrefix(pickFreeSubnet(net16, oneFree, seeded(3))!)).toBe('10.244.77.0/24');
    expect(pickFreeSubnet(net16, [P('10.244.0.0/16')], seeded(4))).toBeUndefined();
  });

  it('handles a /8 of /24s with thousands taken, and huge v6 ranges', () => {
    const range: PickRange = { network: P('10.0.0.0/8'), subnetLen: 24, min: 1n, max: 65535n };
    const rnd = seeded(5);
    const taken = Array.from({ length: 20_000 }, (_, i) => nthSubnet(range.network, 24, BigInt(1 + i * 3)));
    const got = new Set<string>();
    for (let i = 0; i < 50; i++) got.add(formatPrefix(pickFreeSubnet(range, taken, rnd)!));
    const takenSet = new Set(taken.map(formatPrefix));
    for (const g of got) expect(takenSet.has(g)).toBe(false);
    const v6: PickRange = { network: P('fd00::/8'), subnetLen: 64, min: 1n, max: (1n << 56n) - 1n };
    const p = pickFreeSubnet(v6, [P('fd00::/16')], rnd)!;
    expect(p.len).toBe(64);
    expect(formatPrefix(p).startsWith('fd00:')).toBe(false);
  });
});

describe('randomBelow', () => {
  it('stays in range for small and very large bounds', () => {
    const rnd = seeded(9);
    for (const n of [1n, 2n, 10n, 1n << 52n, (1n << 53n) + 3n, 1n << 100n, (1n << 120n) - 1n]) {
      for (let i = 0; i < 200; i++) {
        const v = randomBelow(n, rnd);
        expect(v >= 0n && v < n).toBe(true);
      }
    }
    expect(() => randomBelow(0n)).toThrow(RangeError);
  });
});
