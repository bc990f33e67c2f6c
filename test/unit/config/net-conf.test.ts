import { describe, expect, it } from 'vitest';
import { parseNetConf } from '../../../lib/config/net-conf.js';
import { jsonErrorOffset } from '../../../lib/config/json.js';
import { isTwillError } from '../../../lib/errors.js';

function warnings(): { warn(obj: object, msg: string): void; msgs: string[] } {
  const msgs: string[] = [];
  return { msgs, warn: (_o, m) => { msgs.push(m); } };
}

const conf = (o: object) => JSON.stringify(o);

describe('parseNetConf: defaults (flannel-compatible)', () => {
  it('fills flannel defaults for a minimal config', () => {
    const c = parseNetConf(conf({ Network: '10.244.0.0/16' }));
    expect(c).toMatchObject({
      enableIPv4: true, enableIPv6: false, network: '10.244.0.0/16', subnetLen: 24,
      subnetMin: '10.244.1.0', subnetMax: '10.244.255.0', ipv6SubnetLen: 64,
      backend: { type: 'vxlan', vni: 1, port: 8472, gbp: false, directRouting: false },
    });
    expect(c.backend.mtu).toBeUndefined();
    expect(c.raw).toBe(conf({ Network: '10.244.0.0/16' }));
  });

  it.each([
    ['10.0.0.0/8', 24, '10.0.1.0', '10.255.255.0'],
    ['10.244.0.0/22', 24, '10.244.1.0', '10.244.3.0'],
    ['10.244.0.0/23', 25, '10.244.0.128', '10.244.1.128'],
    ['10.244.0.0/26', 28, '10.244.0.16', '10.244.0.48'],
    ['10.244.0.0/28', 30, '10.244.0.4', '10.244.0.12'],
  ])('Network %s → SubnetLen %i, range %s..%s', (network, len, min, max) => {
    expect(parseNetConf(conf({ Network: network }))).toMatchObject({ subnetLen: len, subnetMin: min, subnetMax: max });
  });

  it('accepts a full flannel config, case-insensitive names and the coreos example', () => {
    const c = parseNetConf(conf({
      Network: '10.5.0.0/16', SubnetLen: 26, SubnetMin: '10.5.1.0', SubnetMax: '10.5.20.192',
      Backend: { Type: 'vxlan', VNI: 4096, Port: 4789, MTU: 1400, GBP: true, DirectRouting: true },
    }));
    expect(c).toMatchObject({ subnetLen: 26, subnetMin: '10.5.1.0', subnetMax: '10.5.20.192', backend: { vni: 4096, port: 4789, mtu: 1400, gbp: true, directRouting: true } });
    expect(parseNetConf('{"network":"10.1.0.0/16","backend":{"type":"vxlan","vni":2}}')).toMatchObject({ network: '10.1.0.0/16', backend: { vni: 2 } });
    expect(parseNetConf('{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan", "Port": 0}}').backend.port).toBe(8472);
  });

  it('dual-stack and IPv6-only', () => {
    const d = parseNetConf(conf({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/48' }));
    expect(d).toMatchObject({ enableIPv4: true, enableIPv6: true, ipv6Network: 'fd00:10:244::/48', ipv6SubnetLen: 64, ipv6SubnetMin: 'fd00:10:244:1::', ipv6SubnetMax: 'fd00:10:244:ffff::' });
    const v6 = parseNetConf(conf({ EnableIPv6: true, IPv6Network: 'FD00:10:244::/120' }));
    expect(v6).toMatchObject({ enableIPv4: false, enableIPv6: true, ipv6Network: 'fd00:10:244::/120', ipv6SubnetLen: 122, ipv6SubnetMin: 'fd00:10:244::40', ipv6SubnetMax: 'fd00:10:244::c0' });
    expect(v6.network).toBeUndefined();
  });

  it('warns (does not fail) on unknown keys and ignored fields', () => {
    const log = warnings();
    parseNetConf(conf({ Network: '10.244.0.0/16', Networks: [], EnableNFTables: true, Backend: { Type: 'vxlan', Learning: true }, IPv6Network: 'fd00::/48' }), log);
    expect(log.msgs.join('\n')).toContain('"Networks"');
    expect(log.msgs.join('\n')).toContain('"EnableNFTables"');
    expect(log.msgs.join('\n')).toContain('"Backend.Learning"');
    expect(log.msgs.join('\n')).toContain('IPv6Network is ignored because EnableIPv6 is false');
  });
});

describe('parseNetConf: every error names field, value and rule', () => {
  it.each([
    // [description, json, field, value-substring, rule-substring]
    ['no Network', {}, 'Network', 'undefined', 'required'],
    ['Network not a string', { Network: 10 }, 'Network', '10', 'must be a string'],
    ['Network without length', { Network: '10.244.0.0' }, 'Network', '"10.244.0.0"', 'CIDR'],
    ['Network with host bits', { Network: '10.244.1.0/16' }, 'Network', '"10.244.1.0/16"', 'host bits'],
    ['Network IPv6', { Network: 'fd00::/48' }, 'Network', '"fd00::/48"', 'IPv4'],
    ['Network too small', { Network: '10.244.0.0/29' }, 'Network', '"10.244.0.0/29"', 'too small'],
    ['SubnetLen not int', { Network: '10.244.0.0/16', SubnetLen: 24.5 }, 'SubnetLen', '24.5', 'integer'],
    ['SubnetLen string', { Network: '10.244.0.0/16', SubnetLen: '24' }, 'SubnetLen', '"24"', 'integer'],
    ['SubnetLen 31', { Network: '10.244.0.0/16', SubnetLen: 31 }, 'SubnetLen', '31', 'at most 30'],
    ['SubnetLen too short', { Network: '10.244.0.0/16', SubnetLen: 17 }, 'SubnetLen', '17', 'at least Network prefix + 2'],
    ['SubnetLen equal', { Network: '10.244.0.0/16', SubnetLen: 16 }, 'SubnetLen', '16', 'at least'],
    ['SubnetLen 33', { Network: '10.244.0.0/16', SubnetLen: 33 }, 'SubnetLen', '33', '0..32'],
    ['SubnetMin outside', { Network: '10.244.0.0/16', SubnetMin: '10.245.0.0' }, 'SubnetMin', '"10.245.0.0"', 'inside Network 10.244.0.0/16'],
    ['SubnetMin unaligned', { Network: '10.244.0.0/16', SubnetMin: '10.244.1.5' }, 'SubnetMin', '"10.244.1.5"', '/24 (SubnetLen) boundary, e.g. 10.244.1.0'],
    ['SubnetMin garbage', { Network: '10.244.0.0/16', SubnetMin: 'ten' }, 'SubnetMin', '"ten"', 'IPv4 address'],
    ['SubnetMax outside', { Network: '10.244.0.0/16', SubnetMax: '10.0.0.0' }, 'SubnetMax', '"10.0.0.0"', 'inside'],
    ['SubnetMax unaligned', { Network: '10.244.0.0/16', SubnetMax: '10.244.9.1' }, 'SubnetMax', '"10.244.9.1"', 'boundary'],
    ['Min above Max', { Network: '10.244.0.0/16', SubnetMin: '10.244.9.0', SubnetMax: '10.244.3.0' }, 'SubnetMin', '"10.244.9.0"', 'not be above SubnetMax 10.244.3.0'],
    ['EnableIPv4 not bool', { Network: '10.244.0.0/16', EnableIPv4: 'yes' }, 'EnableIPv4', '"yes"', 'true or false'],
    ['both disabled', { Network: '10.244.0.0/16', EnableIPv4: false }, 'EnableIPv4', 'false', 'at least one'],
    ['IPv6 without network', { Network: '10.244.0.0/16', EnableIPv6: true }, 'IPv6Network', 'undefined', 'required when EnableIPv6'],
    ['IPv6Network v4', { EnableIPv6: true, IPv6Network: '10.0.0.0/8' }, 'IPv6Network', '"10.0.0.0/8"', 'IPv6'],
    ['IPv6Network too small', { EnableIPv6: true, IPv6Network: 'fd00::/125' }, 'IPv6Network', '"fd00::/125"', 'too small'],
    ['IPv6SubnetLen 127', { EnableIPv6: true, IPv6Network: 'fd00::/48', IPv6SubnetLen: 127 }, 'IPv6SubnetLen', '127', 'at most 126'],
    ['IPv6SubnetLen short', { EnableIPv6: true, IPv6Network: 'fd00::/48', IPv6SubnetLen: 49 }, 'IPv6SubnetLen', '49', 'at least'],
    ['IPv6SubnetMin unaligned', { EnableIPv6: true, IPv6Network: 'fd00::/48', IPv6SubnetMin: 'fd00:0:0:1::1' }, 'IPv6SubnetMin', '"fd00:0:0:1::1"', 'boundary'],
    ['IPv6SubnetMax outside', { EnableIPv6: true, IPv6Network: 'fd00::/48', IPv6SubnetMax: 'fd01::' }, 'IPv6SubnetMax', '"fd01::"', 'inside'],
    ['Backend type udp', { Network: '10.244.0.0/16', Backend: { Type: 'udp' } }, 'Backend.Type', '"udp"', 'only "vxlan"'],
    ['Backend type host-gw', { Network: '10.244.0.0/16', Backend: { Type: 'host-gw' } }, 'Backend.Type', '"host-gw"', 'only "vxlan"'],
    ['Backend not object', { Network: '10.244.0.0/16', Backend: 'vxlan' }, 'Backend', '"vxlan"', 'JSON object'],
    ['VNI too big', { Network: '10.244.0.0/16', Backend: { VNI: 16777216 } }, 'Backend.VNI', '16777216', '0..16777215'],
    ['VNI negative', { Network: '10.244.0.0/16', Backend: { VNI: -1 } }, 'Backend.VNI', '-1', '0..16777215'],
    ['Port too big', { Network: '10.244.0.0/16', Backend: { Port: 70000 } }, 'Backend.Port', '70000', '0..65535'],
    ['MTU tiny', { Network: '10.244.0.0/16', Backend: { MTU: 10 } }, 'Backend.MTU', '10', '68..65535'],
    ['MTU v6', { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00::/48', Backend: { MTU: 1000 } }, 'Backend.MTU', '1000', '1280'],
    ['GBP not bool', { Network: '10.244.0.0/16', Backend: { GBP: 1 } }, 'Backend.GBP', '1', 'true or false'],
    ['DirectRouting string', { Network: '10.244.0.0/16', Backend: { DirectRouting: 'true' } }, 'Backend.DirectRouting', '"true"', 'true or false'],
    ['duplicate case', '{"Network":"10.244.0.0/16","network":"10.1.0.0/16"}', 'network', '"10.1.0.0/16"', 'duplicate of "Network"'],
    ['array doc', '[1,2]', 'net-conf.json', '[1,2]', 'JSON object'],
    ['null doc', 'null', 'net-conf.json', 'null', 'JSON object'],
  ])('%s', (_d, input, field, value, rule) => {
    const json = typeof input === 'string' ? input : conf(input);
    let err: unknown;
    try { parseNetConf(json); } catch (e) { err = e; }
    expect(isTwillError(err, 'CONFIG_INVALID')).toBe(true);
    const msg = (err as Error).message;
    expect(msg.startsWith(`${field}: `)).toBe(true);
    expect(msg).toContain(value);
    expect(msg).toContain(rule);
  });
});

describe('malformed JSON reports a position', () => {
  it.each([
    ['{"Network": }', 'line 1 column 13'],
    ['{"Network": "10.244.0.0/16",}', 'line 1 column 29'],
    ['{\n  "Network": "10.244.0.0/16"\n  "SubnetLen": 24\n}', 'line 3 column 3'],
    ['{"Network": "10.244.0.0/16"', 'at the end'],
    ['', 'at the end'],
    ["{'Network': 1}", 'line 1 column 2'],
    ['{"Network": "10.244.0.0/16"} x', 'line 1 column 30'],
  ])('%j → %s', (json, where) => {
    expect(() => parseNetConf(json)).toThrow(where);
    expect(() => parseNetConf(json)).toThrow(/^net-conf\.json: .* is invalid: malformed JSON/);
  });

  it('the scanner agrees with JSON.parse on valid documents', () => {
    for (const s of ['{}', '[]', '{"a":[1,-2.5e3,true,false,null,"x\\u00e9\\n"]}', ' 1 ', '"s"']) {
      expect(jsonErrorOffset(s)).toBe(-1);
      expect(() => JSON.parse(s)).not.toThrow();
    }
    for (const s of ['{"a":01}', '{"a":"\\x"}', '[1,]', '{"a" 1}', 'tru', '"\t"']) {
      expect(jsonErrorOffset(s)).toBeGreaterThanOrEqual(0);
      expect(() => JSON.parse(s)).toThrow();
    }
  });
});
