// The plugin's address text must match Go's net.IP/net.ParseCIDR (host-local names its
// reservation files that way): these cases pin that for the lib/ip functions the plugin uses.
import { describe, expect, it } from 'vitest';
import { formatIp, tryParseIp } from '../../../lib/ip/addr.js';
import { cidrNetwork, formatCidr, tryParseCidr } from '../../../lib/ip/cidr.js';
import { formatPrefix, lastAddr } from '../../../lib/ip/prefix.js';

describe('cni ip math', () => {
  it('round-trips IPv4 and rejects malformed input', () => {
    for (const s of ['0.0.0.0', '10.244.1.5', '255.255.255.255']) expect(formatIp({ family: 4, value: tryParseIp(s)!.value })).toBe(s);
    for (const s of ['010.1.1.1', '1.1.1', '256.1.1.1', '1.1.1.1.', ' 1.1.1.1', '', '1..1.1']) expect(tryParseIp(s), s).toBeUndefined();
  });
  it('formats IPv6 like Go (RFC 5952)', () => {
    const cases: [string, string][] = [
      ['fd00:0:0:0:0:0:0:1', 'fd00::1'], ['::', '::'], ['::1', '::1'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'], ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['fd00:10:244:1::a', 'fd00:10:244:1::a'],
    ];
    for (const [i, o] of cases) expect(formatIp({ family: 6, value: tryParseIp(i)!.value }), i).toBe(o);
    for (const s of [':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '1:2:3:4:5:6:7']) expect(tryParseIp(s), s).toBeUndefined();
    // Go: an embedded IPv4 address must be the last 32 bits.
    for (const s of ['10.244.1.1::4', '0.0.2.0::', '1:2:3:4:5:1.2.3.4::']) expect(tryParseIp(s), s).toBeUndefined();
  });
  it('parses prefixes and computes bounds', () => {
    const c = tryParseCidr('10.244.1.1/24')!;
    expect(formatIp({ family: 4, value: cidrNetwork(c).addr })).toBe('10.244.1.0');
    expect(formatIp({ family: 4, value: lastAddr(cidrNetwork(c)) })).toBe('10.244.1.255');
    expect(tryParseCidr('10.0.0.0/33')).toBeUndefined();
    expect(tryParseCidr('10.0.0.0')).toBeUndefined();
    expect(tryParseCidr('fd00::/129')).toBeUndefined();
  });
  it('keeps host bits and reads the length like Go net.ParseCIDR', () => {
    expect(formatCidr(tryParseCidr('10.244.1.1/24')!)).toBe('10.244.1.1/24');
    expect(formatCidr(tryParseCidr('FD00:10:244:1:0::1/64')!)).toBe('fd00:10:244:1::1/64');
    expect(formatPrefix(cidrNetwork(tryParseCidr('fd00:10:244:1::1/64')!))).toBe('fd00:10:244:1::/64');
    expect(tryParseCidr('10.244.1.1/024')).toEqual({ family: 4, value: 0x0af40101n, len: 24 });
    for (const s of ['10.244.1.1/', '10.244.1.1/-1', '10.244.1.1/2 4', '10.244.1.1/1000', '/24', '10.244.1/24']) expect(tryParseCidr(s), s).toBeUndefined();
  });
});
