import { describe, expect, it } from 'vitest';
import { parseSubnetEnv } from '../../../cni/subnet-env.js';
import { CniError } from '../../../cni/skel/errors.js';
import { formatIp } from '../../../lib/ip/addr.js';

const GOOD = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describe('subnet.env parsing', () => {
  it('reads flannel variables', () => {
    const s = parseSubnetEnv(GOOD);
    expect(s.mtu).toBe(1450);
    expect(s.ipMasq).toBe(true);
    expect(s.families).toHaveLength(1);
    expect(formatIp(s.families[0]!.subnet)).toBe('10.244.1.1');
    expect(s.families[0]!.subnet.len).toBe(24);
  });
  it('reads dual stack, comments and CRLF', () => {
    const s = parseSubnetEnv(`# written by twill\r\n${GOOD}FLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\n`);
    expect(s.families.map((f) => f.family)).toEqual([4, 6]);
  });
  it('rejects garbled files with code 6 naming the variable', () => {
    const bad: [string, RegExp][] = [
      [GOOD.replace('10.244.1.1/24', '10.245.1.1/24'), /FLANNEL_SUBNET.*inside/],
      [GOOD.replace('10.244.1.1/24', '10.244.1.0/24'), /FLANNEL_SUBNET.*gateway/],
      [GOOD.replace('10.244.1.1/24', 'banana'), /FLANNEL_SUBNET/],
      [GOOD.replace('1450', '14x0'), /FLANNEL_MTU/],
      [GOOD.replace('1450', '40'), /FLANNEL_MTU/],
      [GOOD.replace('true', 'yes'), /FLANNEL_IPMASQ/],
      [GOOD.replace('FLANNEL_NETWORK=10.244.0.0/16\n', ''), /FLANNEL_NETWORK/],
      [GOOD + 'FLANNEL_MTU=1400\n', /set twice/],
      [GOOD + 'garbage line\n', /line 5/],
      ['', /FLANNEL_SUBNET/],
      [GOOD.slice(0, 40), /FLANNEL_/],
      [GOOD.replace('/24', '/31'), /at most/],
    ];
    for (const [text, re] of bad) {
      let err: unknown;
      try { parseSubnetEnv(text); } catch (e) { err = e; }
      expect(err, text).toBeInstanceOf(CniError);
      expect((err as CniError).code, text).toBe(6);
      expect((err as CniError).message, text).toMatch(re);
    }
  });
});
