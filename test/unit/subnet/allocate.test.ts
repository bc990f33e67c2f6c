import { describe, expect, it } from 'vitest';
import { canonicalAttrs, fitsConfig, freeSubnets, planAcquire, storedEntry, subnetProblem, type StoredEntry } from '../../../lib/subnet/allocate.js';
import { parseNetConf } from '../../../lib/config/net-conf.js';
import { encodeLeaseAttrs } from '../../../lib/lease/codec.js';
import { encodeSubnetKey } from '../../../lib/lease/key.js';
import { isTwillError } from '../../../lib/errors.js';
import type { LeaseAttrs } from '../../../lib/subnet/types.js';
import { seeded } from '../../util/rng.js';

const attrs = (ip: string): LeaseAttrs => ({ publicIP: ip, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:00:00:00:00:01' }, backendV6Data: null });
const conf16 = parseNetConf('{"Network":"10.244.0.0/16"}');
const small = parseNetConf('{"Network":"10.250.0.0/16","SubnetMin":"10.250.1.0","SubnetMax":"10.250.4.0"}'); // 4 subnets
const dual = parseNetConf('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/48"}');

function entry(subnet: string, ip: string, opts: { reservation?: boolean; v6?: string; value?: string } = {}): StoredEntry {
  const key = `/p/subnets/${encodeSubnetKey(subnet, opts.v6)}`;
  const meta = opts.reservation ? { expiration: null } : { expiration: 1, leaseId: '1' };
  return storedEntry(key, opts.value ?? encodeLeaseAttrs(attrs(ip)), meta)!;
}

describe('planAcquire', () => {
  it('reuses the entry carrying our public IP', () => {
    const d = planAcquire({ conf: conf16, entries: [entry('10.244.7.0/24', '192.0.2.2'), entry('10.244.9.0/24', '192.0.2.1')], attrs: attrs('192.0.2.1'), previousSubnet: '10.244.3.0/24' });
    expect(d.plan).toMatchObject({ kind: 'reuse', entry: { subnet: '10.244.9.0/24' } });
  });

  it('prefers our reservation over our leased entry', () => {
    const d = planAcquire({ conf: conf16, entries: [entry('10.244.9.0/24', '192.0.2.1'), entry('10.244.5.0/24', '192.0.2.1', { reservation: true })], attrs: attrs('192.0.2.1') });
    expect(d.plan).toMatchObject({ kind: 'reuse', entry: { subnet: '10.244.5.0/24', reservation: true } });
  });

  it('deletes our leased entry that no longer fits, but leaves an unfitting reservation alone', () => {
    const d = planAcquire({ conf: small, entries: [entry('10.250.9.0/24', '192.0.2.1'), entry('10.250.10.0/24', '192.0.2.1', { reservation: true })], attrs: attrs('192.0.2.1'), random: seeded(1) });
    expect(d.stale.map((s) => s.subnet)).toEqual(['10.250.9.0/24']);
    expect(d.plan.kind).toBe('create');
    expect(d.notes.join('\n')).toMatch(/reservation .* left alone/);
  });

  it('uses the previous subnet when free and fitting', () => {
    const d = planAcquire({ conf: conf16, entries: [entry('10.244.7.0/24', '192.0.2.2')], attrs: attrs('192.0.2.1'), previousSubnet: '10.244.3.0/24' });
    expect(d.plan).toEqual({ kind: 'create', subnet: '10.244.3.0/24', source: 'previous' });
  });

  it.each([
    ['taken by a lease', '10.244.7.0/24', 'is taken'],
    ['taken by a reservation of another node', '10.244.8.0/24', 'is taken'],
    ['covered by a larger reservation', '10.244.33.0/24', 'is taken (10.244.32.0/20'],
    ['outside the network', '10.245.3.0/24', 'outside the network'],
    ['wrong length', '10.244.3.0/25', 'not a /24'],
    ['below SubnetMin', '10.244.0.0/24', 'outside [10.244.1.0, 10.244.255.0]'],
    ['garbage', 'nope', 'not a prefix'],
  ])('ignores the previous subnet when %s', (_n, prev, note) => {
    const entries = [entry('10.244.7.0/24', '192.0.2.2'), entry('10.244.8.0/24', '192.0.2.3', { reservation: true }), entry('10.244.32.0/20', '192.0.2.4', { reservation: true })];
    const d = planAcquire({ conf: conf16, entries, attrs: attrs('192.0.2.1'), previousSubnet: prev, random: seeded(2) });
    expect(d.plan).toMatchObject({ kind: 'create', source: 'random' });
    expect(d.notes.join('\n')).toContain(note);
    if (d.plan.kind === 'create') {
      expect(['10.244.7.0/24', '10.244.8.0/24', prev]).not.toContain(d.plan.subnet);
    }
  });

  it('never picks a subnet held by anyone (lease, reservation, invalid value)', () => {
    const entries = [
      entry('10.250.1.0/24', '192.0.2.2'),
      entry('10.250.2.0/24', '192.0.2.3', { reservation: true }),
      entry('10.250.3.0/24', '', { value: '{broken' }),
    ];
    for (let i = 0; i < 50; i++) {
      const d = planAcquire({ conf: small, entries, attrs: attrs('192.0.2.1'), random: seeded(i) });
      expect(d.plan).toEqual({ kind: 'create', subnet: '10.250.4.0/24', source: 'random' });
    }
  });

  it('SUBNETS_EXHAUSTED names the network, the range and the count', () => {
    const entries = ['10.250.1.0/24', '10.250.2.0/24', '10.250.3.0/24', '10.250.4.0/24'].map((s, i) => entry(s, `192.0.2.${i + 10}`));
    let err: unknown;
    try { planAcquire({ conf: small, entries, attrs: attrs('192.0.2.1') }); } catch (e) { err = e; }
    expect(isTwillError(err, 'SUBNETS_EXHAUSTED')).toBe(true);
    expect((err as Error).message).toBe('out of subnets: no free /24 left in Network 10.250.0.0/16 between SubnetMin 10.250.1.0 and SubnetMax 10.250.4.0: all 4 subnets in the range are taken (4 leases and reservations stored); remove stale leases or widen the range');
  });

  it('dual-stack picks both families and reuses by public IP', () => {
    const d = planAcquire({ conf: dual, entries: [], attrs: attrs('192.0.2.1'), random: seeded(3) });
    expect(d.plan.kind).toBe('create');
    if (d.plan.kind === 'create') {
      expect(subnetProblem(dual, 4, d.plan.subnet, { inRange: true })).toBeUndefined();
      expect(subnetProblem(dual, 6, d.plan.ipv6Subnet, { inRange: true })).toBeUndefined();
    }
    const mine = entry('10.244.3.0/24', '192.0.2.1', { v6: 'fd00:10:244:3::/64' });
    expect(planAcquire({ conf: dual, entries: [mine], attrs: attrs('192.0.2.1') }).plan.kind).toBe('reuse');
    // a v4-only entry of ours does not fit a dual-stack config
    const v4only = entry('10.244.4.0/24', '192.0.2.1');
    expect(fitsConfig(dual, v4only)).toContain('no IPv6 subnet');
  });

  it('counts free subnets', () => {
    expect(freeSubnets(small, [entry('10.250.1.0/24', '192.0.2.2')])).toEqual({ v4: 3n });
  });
});

describe('canonicalAttrs', () => {
  it('canonicalises and validates our own attributes', () => {
    expect(canonicalAttrs({ ...attrs('192.0.2.1'), publicIPv6: '2001:DB8::0001', backendData: { VNI: 1, VtepMAC: '0A-00-00-00-00-01' } }))
      .toEqual({ ...attrs('192.0.2.1'), publicIPv6: '2001:db8::1' });
    expect(() => canonicalAttrs(attrs('nope'))).toThrow('publicIP: "nope" is invalid');
    expect(() => canonicalAttrs(attrs(''))).toThrow('a public IPv4 or IPv6 address is required');
    expect(() => canonicalAttrs({ ...attrs('192.0.2.1'), backendData: { VNI: 1, VtepMAC: 'x' } })).toThrow('backendData.VtepMAC');
  });
});
