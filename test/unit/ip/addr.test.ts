import { describe, expect, it } from 'vitest';
import { canonicalIp, formatIp, parseIp, tryParseIp } from '../../../lib/ip/addr.js';

describe('parse/format IPv4', () => {
  it.each([
    ['0.0.0.0', 0n],
    ['10.244.1.0', 0x0af40100n],
    ['255.255.255.255', 0xffffffffn],
    ['192.0.2.10', 0xc000020an],
  ])('%s', (s, v) => {
    expect(parseIp(s)).toEqual({ family: 4, value: v });
    expect(formatIp({ family: 4, value: v })).toBe(s);
  });

  it.each(['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.-1', '1..2.3', 'a.b.c.d', ' 1.2.3.4', '1.2.3.4 '])(
    'rejects %j', (s) => {
      expect(tryParseIp(s)).toBeUndefined();
      expect(() => parseIp(s, 'PublicIP')).toThrow(/PublicIP/);
    });
});

describe('parse/format IPv6 (RFC 5952 output)', () => {
  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],           // longest run wins
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],     // first of equal runs wins
    ['fd00:10:244:3::', 'fd00:10:244:3::'],
    ['fe80::', 'fe80::'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
    ['64:ff9b::1.2.3.4', '64:ff9b::102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('%s → %s', (input, out) => {
    expect(canonicalIp(input)).toBe(out);
    expect(parseIp(out)).toEqual(parseIp(input));
  });

  it.each([':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', '1:2:3:4:5:6:7:8::',
    '::1.2.3', '::256.1.1.1', 'fe80::1%eth0', '[::1]', '1:2:3:4:5:6:7:1.2.3.4'])('rejects %j', (s) => {
    expect(tryParseIp(s)).toBeUndefined();
  });

  it('names the field, value and rule, and respects the family restriction', () => {
    expect(() => parseIp('::1', 'PublicIP', 4)).toThrow('PublicIP: "::1" is invalid: must be an IPv4 address');
    expect(() => parseIp('x', 'PublicIPv6', 6)).toThrow('PublicIPv6: "x" is invalid: must be an IPv6 address');
  });
});
