import { describe, expect, it } from 'vitest';
import { formatIp, formatMac, parseIp, parseMac, parsePrefix } from '../../../lib/netlink/ipaddr.js';

describe('ipaddr', () => {
  it.each([
    ['10.244.1.0', '10.244.1.0'],
    ['0.0.0.0', '0.0.0.0'],
    ['255.255.255.255', '255.255.255.255'],
    ['fd00:10:244:0:0:0:0:1', 'fd00:10:244::1'],
    ['FD00::1', 'fd00::1'],
    ['::', '::'],
    ['::1', '::1'],
    ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],          // longest zero run compressed
    ['1:0:0:2:3:4:5:6', '1::2:3:4:5:6'],
    ['1:2:3:4:5:6:0:8', '1:2:3:4:5:6:0:8'],      // a single zero group is not compressed
    ['::ffff:192.0.2.1', '::ffff:c000:201'],
  ])('%s → %s', (input, canonical) => {
    const ip = parseIp(input)!;
    expect(formatIp(ip.bytes)).toBe(canonical);
  });

  it.each(['1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', 'a.b.c.d', '1:2:3:4:5:6:7:8:9', '1::2::3', 'gg::1', '', '1.2.3.4 '])('rejects %j', (s) => {
    expect(parseIp(s)).toBeUndefined();
  });

  it('prefixes', () => {
    expect(parsePrefix('10.0.0.0/8')).toMatchObject({ family: 4, len: 8 });
    expect(parsePrefix('fd00::/64')).toMatchObject({ family: 6, len: 64 });
    expect(parsePrefix('10.0.0.1')).toMatchObject({ len: 32 });
    expect(parsePrefix('10.0.0.0/33')).toBeUndefined();
    expect(parsePrefix('10.0.0.0/x')).toBeUndefined();
  });

  it('MACs', () => {
    expect(formatMac(parseMac('02:AA:bb:0c:DD:ef')!)).toBe('02:aa:bb:0c:dd:ef');
    for (const bad of ['02:aa:bb:cc:dd', '02-aa-bb-cc-dd-ee', '02:aa:bb:cc:dd:eg', '2:aa:bb:cc:dd:ee:']) expect(parseMac(bad)).toBeUndefined();
  });
});
