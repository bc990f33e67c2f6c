import { describe, expect, it } from 'vitest';
import { canonicalMac, isValidUnicastMac, macProblem } from '../../../lib/ip/mac.js';
import { isUnicastHost, unicastHostProblem } from '../../../lib/ip/host.js';

describe('isUnicastHost', () => {
  it.each(['192.0.2.10', '10.0.0.1', '172.16.5.4', '8.8.8.8', '100.64.0.1', '223.255.255.254', '2001:db8::10', 'fd00::1', '::2'])(
    'accepts %s', (ip) => { expect(isUnicastHost(ip)).toBe(true); });

  it.each([
    ['0.0.0.0', 'this network'],
    ['0.1.2.3', 'this network'],
    ['::', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.0.9', 'loopback'],
    ['::1', 'loopback'],
    ['224.0.0.1', 'multicast'],
    ['239.1.1.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['169.254.1.1', 'link-local'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['::ffff:10.0.0.1', 'IPv4-mapped'],
    ['not-an-ip', 'not an IP address'],
    ['', 'not an IP address'],
  ])('rejects %s (%s)', (ip, why) => {
    expect(isUnicastHost(ip)).toBe(false);
    expect(unicastHostProblem(ip)).toContain(why);
  });
});

describe('MAC addresses', () => {
  it.each(['0a:58:0a:f4:01:01', '02:42:AC:11:00:02', '00:00:00:00:00:01', 'fe-ff-ff-ff-ff-ff'])('accepts %s', (m) => {
    expect(isValidUnicastMac(m)).toBe(true);
  });

  it.each([
    ['', '6 hex octets'],
    ['0a:58:0a:f4:01', '6 hex octets'],
    ['0a:58:0a:f4:01:01:02', '6 hex octets'],
    ['0a:58:0a:f4:01:1', '6 hex octets'],
    ['0a:58:0a:f4:01:zz', '6 hex octets'],
    ['0a58.0af4.0101', '6 hex octets'],
    ['0a:58-0a:f4:01:01', '6 hex octets'],
    ['01:00:5e:00:00:01', 'multicast'],
    ['ff:ff:ff:ff:ff:ff', 'multicast'],
    ['33:33:00:00:00:01', 'multicast'],
    ['00:00:00:00:00:00', 'all-zero'],
  ])('rejects %j (%s)', (m, why) => {
    expect(isValidUnicastMac(m)).toBe(false);
    expect(macProblem(m)).toContain(why);
  });

  it('canonicalises', () => {
    expect(canonicalMac('02-42-AC-11-00-02')).toBe('02:42:ac:11:00:02');
    expect(canonicalMac('nope')).toBeUndefined();
  });
});
