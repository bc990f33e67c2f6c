import { describe, expect, it } from 'vitest';
import { parseIp, formatIp, parseCidr, networkOf, lastOf } from '../../../cni/ipam/ip.js';

describe('cni ip math', () => {
  it('round-trips IPv4 and rejects malformed input', () => {
    for (const s of ['0.0.0.0', '10.244.1.5', '255.255.255.255']) expect(formatIp(4, parseIp(s)!.value)).toBe(s);
    for (const s of ['010.1.1.1', '1.1.1', '256.1.1.1', '1.1.1.1.', ' 1.1.1.1', '', '1..1.1']) expect(parseIp(s), s).toBeUndefined();
  });
  it('formats IPv6 like Go (RFC 5952)', () => {
    const cases: [string, string][] = [
      ['fd00:0:0:0:0:0:0:1', 'fd00::1'], ['::', '::'], ['::1', '::1'], ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0000:ff00:0042:8329', '2001:db8::ff00:42:8329'], ['1:0:1:0:1:0:1:0', '1:0:1:0:1:0:1:0'],
      ['fd00:10:244:1::a', 'fd00:10:244:1::a'],
    ];
    for (const [i, o] of cases) expect(formatIp(6, parseIp(i)!.value), i).toBe(o);
    for (const s of [':::', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '1:2:3:4:5:6:7']) expect(parseIp(s), s).toBeUndefined();
  });
  it('parses prefixes and computes bounds', () => {
    const c = parseCidr('10.244.1.1/24')!;
    expect(formatIp(4, networkOf(c))).toBe('10.244.1.0');
    expect(formatIp(4, lastOf(c))).toBe('10.244.1.255');
    expect(parseCidr('10.0.0.0/33')).toBeUndefined();
    expect(parseCidr('10.0.0.0')).toBeUndefined();
    expect(parseCidr('fd00::/129')).toBeUndefined();
  });
});
