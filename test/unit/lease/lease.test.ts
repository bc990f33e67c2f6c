import { describe, expect, it } from 'vitest';
import { decodeLease, decodeLeaseAttrs, encodeLeaseAttrs } from '../../../lib/lease/codec.js';
import { decodeSubnetKey, encodeSubnetKey, subnetKeyPath, subnetsDir } from '../../../lib/lease/key.js';
import { diffLeases } from '../../../lib/lease/diff.js';
import type { Lease, LeaseAttrs } from '../../../lib/subnet/types.js';

const attrs = (ip: string, mac = '0a:58:0a:f4:01:01'): LeaseAttrs => ({
  publicIP: ip, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac }, backendV6Data: null,
});

describe('subnet key codec (flannel form)', () => {
  it.each([
    ['10.244.3.0/24', undefined, '10.244.3.0-24'],
    ['10.0.0.0/8', undefined, '10.0.0.0-8'],
    ['10.244.3.0/24', 'fd00:10:244:3::/64', '10.244.3.0-24&fd00:10:244:3::-64'],
    ['', 'fd00:10:244:3::/64', 'fd00:10:244:3::-64'],
  ])('%s %s ↔ %s', (subnet, v6, key) => {
    expect(encodeSubnetKey(subnet, v6)).toBe(key);
    const want = v6 ? { subnet, ipv6Subnet: v6 } : { subnet };
    expect(decodeSubnetKey(key)).toEqual(want);
    expect(decodeSubnetKey(`/coreos.com/network/subnets/${key}`)).toEqual(want);
  });

  it.each([
    'config', '10.244.3.0', '10.244.3.0-', '10.244.3.0-33', '10.244.3.5-24', '10.244.3.0-24&', '10.244.3.0-24&fd00::1-64',
    'fd00::-64&10.244.3.0-24', '10.244.3.0/24', 'x-24', '', '10.244.3.0-24 ',
  ])('rejects %j', (key) => {
    expect(decodeSubnetKey(key)).toBeUndefined();
  });

  it('builds paths under the prefix', () => {
    expect(subnetsDir('/coreos.com/network')).toBe('/coreos.com/network/subnets/');
    expect(subnetsDir('/twill.io/network/')).toBe('/twill.io/network/subnets/');
    expect(subnetKeyPath('/twill.io/network', { subnet: '10.244.3.0/24' })).toBe('/twill.io/network/subnets/10.244.3.0-24');
  });
});

describe('lease value codec (flannel JSON)', () => {
  it('encodes exactly flannel\'s shape', () => {
    expect(encodeLeaseAttrs(attrs('192.0.2.10'))).toBe('{"PublicIP":"192.0.2.10","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}}');
    const dual: LeaseAttrs = { ...attrs('192.0.2.10'), publicIPv6: '2001:db8::10', backendV6Data: { VNI: 1, VtepMAC: '0a:58:0a:f4:01:02' } };
    expect(JSON.parse(encodeLeaseAttrs(dual))).toEqual({
      PublicIP: '192.0.2.10', PublicIPv6: '2001:db8::10', BackendType: 'vxlan',
      BackendData: { VNI: 1, VtepMAC: '0a:58:0a:f4:01:01' }, BackendV6Data: { VNI: 1, VtepMAC: '0a:58:0a:f4:01:02' },
    });
    const v6only: LeaseAttrs = { ...attrs(''), publicIPv6: '2001:db8::10' };
    expect(JSON.parse(encodeLeaseAttrs(v6only)).PublicIP).toBe('0.0.0.0');
  });

  it('round-trips', () => {
    for (const a of [attrs('192.0.2.10'), { ...attrs(''), publicIPv6: '2001:db8::10' },
      { ...attrs('10.0.0.1'), publicIPv6: '2001:db8::1', backendV6Data: { VNI: 7, VtepMAC: '0a:00:00:00:00:07' } }]) {
      const d = decodeLeaseAttrs(encodeLeaseAttrs(a));
      expect(d).toEqual({ ok: true, value: a });
    }
  });

  it('decodes a value written by flannel (case-insensitive, canonicalised)', () => {
    const d = decodeLeaseAttrs('{"PublicIP":"192.0.2.10","BackendType":"vxlan","BackendData":{"vtepMAC":"0A:58:0A:F4:01:01","VNI":1}}');
    expect(d).toEqual({ ok: true, value: attrs('192.0.2.10') });
  });

  it.each([
    ['not json', 'not JSON'],
    ['[]', 'JSON object'],
    ['{}', 'PublicIP'],
    ['{"PublicIP":"300.1.1.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}}', 'PublicIP "300.1.1.1"'],
    ['{"PublicIP":"::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}}', 'PublicIP "::1" is not an IPv4'],
    ['{"PublicIP":"192.0.2.1","PublicIPv6":"1.2.3.4","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}}', 'PublicIPv6 "1.2.3.4"'],
    ['{"PublicIP":"192.0.2.1","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"}}', 'BackendType missing'],
    ['{"PublicIP":"192.0.2.1","BackendType":"host-gw"}', 'BackendData must be an object'],
    ['{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":"1","VtepMAC":"0a:58:0a:f4:01:01"}}', 'BackendData.VNI "1"'],
    ['{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":16777216,"VtepMAC":"0a:58:0a:f4:01:01"}}', 'BackendData.VNI 16777216'],
    ['{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"zz"}}', 'BackendData.VtepMAC "zz"'],
    ['{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":1}}', 'VtepMAC missing'],
    ['{"PublicIP":"192.0.2.1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:01"},"BackendV6Data":{"VNI":1}}', 'BackendV6Data.VtepMAC'],
  ])('reports %s', (json, reason) => {
    const d = decodeLeaseAttrs(json);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toContain(reason);
  });

  it('decodes a whole entry', () => {
    const v = encodeLeaseAttrs(attrs('192.0.2.10'));
    expect(decodeLease('/p/subnets/10.244.3.0-24', v, { expiration: 5, leaseId: '77' })).toEqual({
      ok: true, value: { subnet: '10.244.3.0/24', attrs: attrs('192.0.2.10'), expiration: 5, leaseId: '77', key: '/p/subnets/10.244.3.0-24' },
    });
    const bad = decodeLease('/p/subnets/garbage', v, { expiration: null });
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.reason).toContain('"/p/subnets/garbage" is not a subnet key');
  });
});

describe('diffLeases', () => {
  const L = (key: string, ip: string, exp = 1): Lease => ({ key, subnet: key, attrs: attrs(ip), expiration: exp });
  it.each([
    ['nothing to nothing', [], [], [], [], []],
    ['all added', [], [L('a', '1.1.1.1')], ['a'], [], []],
    ['all removed', [L('a', '1.1.1.1')], [], [], [], ['a']],
    ['expiry change is not a change', [L('a', '1.1.1.1', 1)], [L('a', '1.1.1.1', 99)], [], [], []],
    ['attr change', [L('a', '1.1.1.1')], [L('a', '1.1.1.2')], [], ['a'], []],
    ['mixed', [L('a', '1.1.1.1'), L('b', '2.2.2.2'), L('c', '3.3.3.3')], [L('b', '2.2.2.2'), L('c', '3.3.3.9'), L('d', '4.4.4.4')], ['d'], ['c'], ['a']],
  ])('%s', (_n, prev, next, added, changed, removed) => {
    const d = diffLeases(prev, next);
    expect(d.added.map((l) => l.key)).toEqual(added);
    expect(d.changed.map((l) => l.key)).toEqual(changed);
    expect(d.removed.map((l) => l.key)).toEqual(removed);
  });

  it('a MAC case difference is not a change; a subnet difference is', () => {
    const a: Lease = { key: 'k', subnet: '10.0.1.0/24', attrs: attrs('1.1.1.1', '0a:58:0a:f4:01:01'), expiration: 1 };
    const b: Lease = { ...a, attrs: attrs('1.1.1.1', '0A:58:0A:F4:01:01') };
    expect(diffLeases([a], [b]).changed).toEqual([]);
    expect(diffLeases([a], [{ ...a, ipv6Subnet: 'fd00::/64' }]).changed).toHaveLength(1);
  });
});
