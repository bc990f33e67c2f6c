import { describe, expect, it } from 'vitest';
import { broadcast, contains, firstHost, formatPrefix, gateway, lastHost, nthSubnet, overlaps, parsePrefix, prefixSize, subnetCount, subnetIndexRange, tryParsePrefix } from '../../../lib/ip/prefix.js';
import { formatIp, parseIp } from '../../../lib/ip/addr.js';

const P = (s: string) => parsePrefix(s);

describe('parsePrefix', () => {
  it.each([
    ['10.244.1.0/24', 4, 24],
    ['0.0.0.0/0', 4, 0],
    ['192.0.2.10/32', 4, 32],
    ['fd00:10:244:3::/64', 6, 64],
    ['::/0', 6, 0],
    ['2001:db8::1/128', 6, 128],
  ])('%s', (s, family, len) => {
    const p = P(s);
    expect(p.family).toBe(family);
    expect(p.len).toBe(len);
    expect(formatPrefix(p)).toBe(s);
  });

  it.each([
    ['10.244.1.0', 'CIDR form'],
    ['10.244.1.0/33', 'prefix length must be an integer 0..32'],
    ['10.244.1.0/-1', 'prefix length'],
    ['10.244.1.0/024', 'prefix length'],
    ['10.244.1.0/', 'prefix length'],
    ['10.244.1/24', 'is not an IP address'],
    ['fd00::/129', '0..128'],
    ['10.244.1.7/16', 'host bits are set; the network address is 10.244.0.0/16'],
    ['fd00::1/64', 'host bits are set; the network address is fd00::/64'],
  ])('rejects %j with a message naming field, value and rule', (s, rule) => {
    expect(() => parsePrefix(s, { field: 'Network' })).toThrow(`Network: ${JSON.stringify(s)} is invalid: `);
    expect(() => parsePrefix(s, { field: 'Network' })).toThrow(rule);
    expect(tryParsePrefix(s)).toBeUndefined();
  });

  it('normalises host bits when asked', () => {
    expect(formatPrefix(parsePrefix('10.244.1.7/16', { normalize: true }))).toBe('10.244.0.0/16');
    expect(formatPrefix(parsePrefix('FD00::1/64', { normalize: true }))).toBe('fd00::/64');
  });

  it('enforces the family', () => {
    expect(() => parsePrefix('fd00::/64', { field: 'Network', family: 4 })).toThrow('must be an IPv4 prefix');
    expect(() => parsePrefix('10.0.0.0/8', { field: 'IPv6Network', family: 6 })).toThrow('must be an IPv6 prefix');
  });
});

describe('containment and overlap', () => {
  it.each([
    ['10.244.0.0/16', '10.244.3.0/24', true, true],
    ['10.244.3.0/24', '10.244.0.0/16', false, true],
    ['10.244.0.0/16', '10.245.0.0/24', false, false],
    ['10.244.3.0/24', '10.244.3.0/24', true, true],
    ['10.244.3.0/24', '10.244.4.0/24', false, false],
    ['0.0.0.0/0', '192.0.2.0/24', true, true],
    ['fd00::/48', 'fd00:0:0:5::/64', true, true],
    ['fd00::/48', 'fd01::/64', false, false],
    ['10.0.0.0/8', '::/0', false, false],
  ])('%s ⊇ %s: %s, overlap: %s', (a, b, c, o) => {
    expect(contains(P(a), P(b))).toBe(c);
    expect(overlaps(P(a), P(b))).toBe(o);
    expect(overlaps(P(b), P(a))).toBe(o);
  });

  it.each([
    ['10.244.3.0/24', '10.244.3.0', true],
    ['10.244.3.0/24', '10.244.3.255', true],
    ['10.244.3.0/24', '10.244.4.0', false],
    ['fd00::/64', 'fd00::ffff:ffff:ffff:ffff', true],
    ['fd00::/64', '10.0.0.1', false],
  ])('%s contains address %s: %s', (p, ip, want) => {
    expect(contains(P(p), parseIp(ip))).toBe(want);
  });
});

describe('host addresses', () => {
  it.each([
    ['10.244.3.0/24', '10.244.3.1', '10.244.3.255', '10.244.3.254', 256n],
    ['10.244.3.0/30', '10.244.3.1', '10.244.3.3', '10.244.3.2', 4n],
    ['10.244.3.4/31', '10.244.3.5', '10.244.3.5', '10.244.3.5', 2n],
    ['10.244.3.4/32', '10.244.3.4', '10.244.3.4', '10.244.3.4', 1n],
    ['fd00:10:244:3::/64', 'fd00:10:244:3::1', 'fd00:10:244:3:ffff:ffff:ffff:ffff', 'fd00:10:244:3:ffff:ffff:ffff:ffff', 1n << 64n],
  ])('%s: first %s, broadcast %s, last host %s', (p, first, bc, last, size) => {
    expect(formatIp(firstHost(P(p)))).toBe(first);
    expect(formatIp(gateway(P(p)))).toBe(first);
    expect(formatIp(broadcast(P(p)))).toBe(bc);
    expect(formatIp(lastHost(P(p)))).toBe(last);
    expect(prefixSize(P(p))).toBe(size);
  });
});

describe('subnets of a network', () => {
  it.each([
    ['10.244.0.0/16', 24, 0n, '10.244.0.0/24'],
    ['10.244.0.0/16', 24, 1n, '10.244.1.0/24'],
    ['10.244.0.0/16', 24, 255n, '10.244.255.0/24'],
    ['10.0.0.0/8', 24, 65535n, '10.255.255.0/24'],
    ['10.244.0.0/22', 24, 3n, '10.244.3.0/24'],
    ['10.244.0.0/24', 26, 2n, '10.244.0.128/26'],
    ['fd00:10:244::/48', 64, 3n, 'fd00:10:244:3::/64'],
    ['fd00::/8', 64, (1n << 56n) - 1n, 'fdff:ffff:ffff:ffff::/64'],
  ])('%s /%i #%s = %s', (n, len, i, want) => {
    expect(formatPrefix(nthSubnet(P(n), len, i))).toBe(want);
  });

  it('counts and rejects out-of-range indexes', () => {
    expect(subnetCount(P('10.244.0.0/16'), 24)).toBe(256n);
    expect(subnetCount(P('fd00::/48'), 64)).toBe(65536n);
    expect(() => nthSubnet(P('10.244.0.0/16'), 24, 256n)).toThrow(RangeError);
    expect(() => nthSubnet(P('10.244.0.0/16'), 24, -1n)).toThrow(RangeError);
    expect(() => subnetCount(P('10.244.0.0/16'), 15)).toThrow(RangeError);
  });

  it.each([
    ['10.244.3.0/24', [3n, 3n]],
    ['10.244.16.0/20', [16n, 31n]],
    ['10.244.3.128/25', [3n, 3n]],
    ['10.0.0.0/8', [0n, 255n]],
    ['10.245.0.0/24', undefined],
    ['fd00::/64', undefined],
  ])('index range of %s in 10.244.0.0/16 by /24', (p, want) => {
    expect(subnetIndexRange(P('10.244.0.0/16'), 24, P(p))).toEqual(want);
  });
});
