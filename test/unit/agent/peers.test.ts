import { describe, expect, it } from 'vitest';
import { PeerTable, checkLease } from '../../../agent/peers.js';
import type { DeviceInfo } from '../../../agent/backend/vxlan/desired.js';
import type { Lease } from '../../../lib/subnet/types.js';
import { parsePrefix } from '../../../lib/ip/prefix.js';

const ctx = { network: parsePrefix('10.244.0.0/16'), subnetLen: 24, vni: 1 };
const dev: DeviceInfo = { index: 5, name: 'twill.1', mtu: 1450, vni: 1, nexthops: true };
const lease = (subnet: string, over: Partial<Lease['attrs']> = {}, key = subnet.replace('/', '-'), created?: number): Lease => ({
  key, subnet, expiration: null, ...(created === undefined ? {} : { created }),
  attrs: { publicIP: '192.0.2.7', backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:55' }, ...over },
});

describe('checkLease', () => {
  const bad: [string, Lease, string, RegExp][] = [
    ['outside the network', lease('10.245.1.0/24'), 'outside-network', /10\.245\.1\.0\/24.*outside.*10\.244\.0\.0\/16/],
    ['wrong length', lease('10.244.1.0/25'), 'subnet-length', /not a \/24/],
    ['garbage subnet', lease('banana'), 'subnet', /"banana"/],
    ['multicast public IP', lease('10.244.1.0/24', { publicIP: '224.0.0.1' }), 'public-ip', /^PublicIP "224\.0\.0\.1" is a multicast address$/],
    ['loopback public IP', lease('10.244.1.0/24', { publicIP: '127.0.0.1' }), 'public-ip', /^PublicIP "127\.0\.0\.1" is a loopback address$/],
    ['missing public IP', lease('10.244.1.0/24', { publicIP: undefined as unknown as string }), 'public-ip', /^PublicIP undefined is missing$/],
    ['multicast MAC', lease('10.244.1.0/24', { backendData: { VNI: 1, VtepMAC: '01:00:5e:00:00:01' } }), 'vtep-mac', /01:00:5e/],
    ['malformed MAC', lease('10.244.1.0/24', { backendData: { VNI: 1, VtepMAC: 'zz' } }), 'vtep-mac', /"zz"/],
    ['unknown backend', lease('10.244.1.0/24', { backendType: 'udp' }), 'backend', /"udp"/],
    ['other VNI', lease('10.244.1.0/24', { backendData: { VNI: 2, VtepMAC: '02:11:22:33:44:55' } }), 'vni', /2.*ours \(1\)/],
  ];
  for (const [name, l, reason, msg] of bad) {
    it(`rejects ${name}`, () => {
      const r = checkLease(l, ctx);
      expect(r).toMatchObject({ reason });
      expect('message' in r && r.message).toMatch(msg);
    });
  }
  it('accepts a good lease and canonicalises the MAC', () => {
    const r = checkLease(lease('10.244.1.0/24', { backendData: { VNI: 1, VtepMAC: '02:AA:bb:cc:dd:ee' } }), ctx);
    expect(r).toMatchObject({ spec: { vtepMAC: '02:aa:bb:cc:dd:ee', publicIP: '192.0.2.7' } });
  });
});

describe('PeerTable', () => {
  const table = () => {
    const invalid: string[] = [];
    const t = new PeerTable(ctx, (k, r) => invalid.push(`${k}:${r}`));
    t.setDevice(dev);
    t.setLocal('10.244.9.0-24', parsePrefix('10.244.9.0/24'));
    return { t, invalid };
  };

  it('builds four entries per valid peer plus the local /32', () => {
    const { t } = table();
    t.upsert(lease('10.244.1.0/24'));
    t.upsert(lease('10.244.2.0/24', { publicIP: '192.0.2.8', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:66' } }));
    expect(t.desired().size).toBe(9);
    expect(t.counts()).toEqual({ valid: 2, invalid: 0 });
  });

  it('gives a contested subnet to the lease created first; the other takes over when it leaves', () => {
    const { t, invalid } = table();
    t.upsert(lease('10.244.1.0/24', {}, 'a', 5));
    t.upsert(lease('10.244.1.0/24', { publicIP: '192.0.2.8', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:66' } }, 'b', 9));
    expect(t.counts()).toEqual({ valid: 1, invalid: 1 });
    expect(invalid).toEqual(['b:overlaps-peer']);
    expect(t.views().find((v) => v.key === 'b')?.invalid?.message).toBe('subnet 10.244.1.0/24 is held by a, which was there first (created 5, b 9); ignored while it holds it');
    expect(t.desired().get('fdb|5|02:11:22:33:44:55'), "the incumbent's FDB entry").toBeDefined();
    const dirty = t.remove('a');
    expect(t.counts()).toEqual({ valid: 1, invalid: 0 });
    expect(dirty.size).toBe(5);     // a's four entries out, b's four in; route, ARP and nexthop keys are the same
    expect(t.desired().get('fdb|5|02:11:22:33:44:66'), "b's FDB entry after the takeover").toBeDefined();
    expect(t.desired().size).toBe(5);
  });

  it('reports a lease that fails its own checks once per distinct problem (log line and metric)', () => {
    const { t, invalid } = table();
    t.upsert(lease('10.244.1.0/24', { publicIP: '224.0.0.1' }, 'a'));
    t.upsert(lease('10.244.2.0/24', { backendType: 'udp' }, 'b'));
    expect(invalid).toEqual(['a:public-ip', 'b:backend']);
    t.upsert(lease('10.244.1.0/24', { publicIP: '224.0.0.1' }, 'a'));   // the same problem again: said already
    expect(invalid).toHaveLength(2);
    t.upsert(lease('10.244.1.0/24', { publicIP: '239.1.1.1' }, 'a'));   // another value: said again
    expect(invalid).toEqual(['a:public-ip', 'b:backend', 'a:public-ip']);
    expect(t.counts()).toEqual({ valid: 0, invalid: 2 });
  });

  it('gives a contested VTEP MAC to the incumbent, whichever order the leases arrive in, and reports the newcomer once', () => {
    const incumbent = lease('10.244.1.0/24', {}, 'a', 3);
    const newcomer = lease('10.244.2.0/24', { publicIP: '192.0.2.66' }, 'b', 8);
    for (const order of [[incumbent, newcomer], [newcomer, incumbent]]) {
      const { t, invalid } = table();
      const before = order[0] === incumbent ? (t.upsert(incumbent), new Map([...t.desired().values()].map((e) => [e.key, e]))) : undefined;
      const dirty = order[0] === incumbent ? t.upsert(newcomer) : (t.upsert(newcomer), t.upsert(incumbent));
      expect(t.views().map((v) => `${v.key}:${v.valid ? 'valid' : v.invalid?.reason}`).sort()).toEqual(['a:valid', 'b:duplicate-mac']);
      expect(invalid).toEqual(['b:duplicate-mac']);
      if (before) {
        // The incumbent's entries are not touched: nothing of it is dirty, every entry unchanged.
        expect([...dirty].filter((k) => before.has(k))).toEqual([]);
        for (const [k, e] of before) expect(t.desired().get(k), k).toEqual(e);
      }
      expect(t.desired().get('fdb|5|02:11:22:33:44:55')?.object).toMatchObject({ ip: '192.0.2.7' });
      t.upsert(newcomer);                                    // the same conflict again: said already
      expect(invalid).toHaveLength(1);
      t.remove('a');                                         // the winner leaves: the loser takes over
      expect(t.counts()).toEqual({ valid: 1, invalid: 0 });
      expect(t.desired().get('fdb|5|02:11:22:33:44:55')?.object).toMatchObject({ ip: '192.0.2.66' });
    }
  });

  it('breaks a tie of creation by key, and treats an unknown creation as the newest', () => {
    const { t } = table();
    t.upsert(lease('10.244.1.0/24', {}, 'z', 4));
    t.upsert(lease('10.244.2.0/24', { publicIP: '192.0.2.66' }, 'y', 4));
    t.upsert(lease('10.244.3.0/24', { publicIP: '192.0.2.67' }, 'x'));
    expect(t.views().filter((v) => v.valid).map((v) => v.key)).toEqual(['y']);
  });

  it('the winner is the same after a relist in any order (as after a restart)', () => {
    const leases = [lease('10.244.1.0/24', {}, 'a', 7), lease('10.244.2.0/24', { publicIP: '192.0.2.66' }, 'b', 2), lease('10.244.2.0/24', { publicIP: '192.0.2.68', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:99' } }, 'c', 1)];
    for (const relist of [leases, [...leases].reverse(), [leases[1]!, leases[0]!, leases[2]!]]) {
      const { t } = table();
      t.replaceAll(relist, false);
      // c holds 10.244.2.0/24 (created 1), so b loses it; a and b share a MAC: b is older, but
      // each contest is decided on its own, so a loses the MAC to b.
      expect(t.views().map((v) => `${v.key}:${v.valid ? 'valid' : v.invalid?.reason}`).sort()).toEqual(['a:duplicate-mac', 'b:overlaps-peer', 'c:valid']);
    }
  });

  it("never programs a peer claiming this node's own VTEP MAC or public IP", () => {
    const invalid: string[] = [];
    const t = new PeerTable({ ...ctx, ownMac: '02:00:00:00:00:01', ownPublicIP: '192.0.2.1' }, (k, r) => invalid.push(`${k}:${r}`));
    t.setDevice(dev);
    t.setLocal('10.244.9.0-24', parsePrefix('10.244.9.0/24'));
    t.upsert(lease('10.244.1.0/24', { backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:01' } }, 'mac', 1));
    t.upsert(lease('10.244.2.0/24', { publicIP: '192.0.2.1', backendData: { VNI: 1, VtepMAC: '02:00:00:00:00:02' } }, 'ip', 1));
    expect(invalid).toEqual(['mac:own-vtep-mac', 'ip:own-public-ip']);
    expect(t.views().map((v) => v.invalid?.message)).toEqual(["VtepMAC 02:00:00:00:00:01 is this node's own VTEP MAC", "PublicIP 192.0.2.1 is this node's own public IP"]);
    expect(t.desired().size).toBe(1);          // our own /32 only
  });

  it('never programs a peer that claims our subnet', () => {
    const { t, invalid } = table();
    t.upsert(lease('10.244.9.0/24', {}, 'intruder'));
    expect(invalid).toEqual(['intruder:overlaps-local']);
    expect(t.desired().size).toBe(1);
  });

  it('replaceAll removes peers missing from a relist and keeps unchanged ones untouched', () => {
    const { t } = table();
    t.upsert(lease('10.244.1.0/24'));
    t.upsert(lease('10.244.2.0/24', { backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:66' } }));
    const dirty = t.replaceAll([lease('10.244.1.0/24')]);
    expect(dirty.size).toBe(4);
    expect(t.counts().valid).toBe(1);
  });

  it('replaceAll without dirty keys reaches the same table and entry count', () => {
    const relist = [lease('10.244.1.0/24'), lease('10.244.3.0/24', { backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:77' } }), lease('10.244.300.0/24')];
    const a = table().t, b = table().t;
    for (const t of [a, b]) t.upsert(lease('10.244.2.0/24', { backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:66' } }));
    expect(a.replaceAll(relist).size).toBe(12);
    expect(b.replaceAll(relist, false).size).toBe(0);
    expect(b.desired().size).toBe(a.desired().size);
    expect(b.desired().size).toBe([...b.desired().values()].length);
    expect(b.counts()).toEqual(a.counts());
  });

  it("a source's size is the number of entries it builds, with and without nexthops or direct routing", () => {
    for (const nexthops of [true, false]) {
      for (const direct of [undefined, { ifindex: 2, prefix: parsePrefix('192.0.2.0/24') }]) {
        const t = new PeerTable(ctx);
        t.setDevice({ ...dev, nexthops, ...(direct ? { direct } : {}) });
        t.upsert(lease('10.244.1.0/24'));
        expect(t.desired().size, `nexthops ${nexthops}, direct ${!!direct}`).toBe([...t.desired().values()].length);
        expect(t.desired().size).toBe((nexthops ? 2 : 1) + (direct ? 0 : 2));
      }
    }
  });

  it('recomputes every entry when the device is recreated with a new index', () => {
    const { t } = table();
    t.upsert(lease('10.244.1.0/24'));
    t.setDevice({ ...dev, index: 42 });
    const arp = [...t.desired().values()].find((e) => e.kind === 'arp');
    expect(arp?.key).toBe('arp|42|10.244.1.0');
  });

  it('keeps an undecodable entry visible as invalid', () => {
    const { t } = table();
    t.markUndecodable('10.244.3.0-24', 'bad JSON');
    expect(t.views()).toMatchObject([{ key: '10.244.3.0-24', valid: false, invalid: { reason: 'decode' } }]);
  });

  it('keys every verdict by store key: a deleted or corrected key leaves the count at once, and a new problem is reported again', () => {
    const { t, invalid } = table();
    t.upsert(lease('10.244.1.0/24', {}, 'a', 1));
    const base = t.counts();
    t.markUndecodable('/p/subnets/10.244.3.0-24', 'value is not JSON');
    t.markUndecodable('/p/subnets/garbage', 'key is not a subnet key');
    t.upsert(lease('10.244.4.0/24', { publicIP: '127.0.0.1' }, 'lo', 2));
    t.upsert(lease('10.244.5.0/24', { publicIP: '192.0.2.70' }, 'dup', 3));
    expect(t.counts()).toEqual({ valid: 1, invalid: 4 });
    t.markUndecodable('/p/subnets/10.244.3.0-24', 'value is not JSON');    // the same again (a relist): said already
    t.replaceAll([lease('10.244.1.0/24', {}, 'a', 1), lease('10.244.4.0/24', { publicIP: '127.0.0.1' }, 'lo', 2), lease('10.244.5.0/24', { publicIP: '192.0.2.70' }, 'dup', 3)],
      true, [{ key: '/p/subnets/10.244.3.0-24', reason: 'value is not JSON' }, { key: '/p/subnets/garbage', reason: 'key is not a subnet key' }]);
    expect(invalid).toEqual(['/p/subnets/10.244.3.0-24:decode', '/p/subnets/garbage:decode', 'lo:public-ip', 'dup:duplicate-mac']);
    t.remove('/p/subnets/10.244.3.0-24');
    t.remove('/p/subnets/garbage');
    t.upsert(lease('10.244.4.0/24', { publicIP: '192.0.2.71', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:71' } }, 'lo', 2));   // corrected
    t.remove('dup');
    expect(t.counts()).toEqual({ valid: base.valid + 1, invalid: base.invalid });   // + the corrected one
    expect(t.views().filter((v) => !v.valid)).toEqual([]);
    t.markUndecodable('/p/subnets/10.244.3.0-24', 'value is not JSON');    // back again: a new problem of the key, said again
    expect(invalid.at(-1)).toBe('/p/subnets/10.244.3.0-24:decode');
    expect(invalid).toHaveLength(5);
    // A relist without the undecodable key forgets it too.
    t.replaceAll([lease('10.244.1.0/24', {}, 'a', 1)]);
    expect(t.counts()).toEqual(base);
  });
});

describe('PeerTable desired view', () => {
  const build = (d: DeviceInfo = dev) => {
    const t = new PeerTable(ctx);
    t.setDevice(d);
    t.setLocal('10.244.9.0-24', parsePrefix('10.244.9.0/24'));
    t.upsert(lease('10.244.1.0/24'));
    t.upsert(lease('10.244.2.0/24', { publicIP: '192.0.2.8', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:66' } }));
    return t;
  };

  it('finds every entry by key (route, nexthop, ARP, FDB, local address) and nothing else', () => {
    const t = build();
    const all = [...t.desired().values()];
    expect(all.map((e) => e.kind).sort()).toEqual(['addr', 'arp', 'arp', 'fdb', 'fdb', 'nexthop', 'nexthop', 'route', 'route']);
    for (const e of all) {
      expect(t.desired().get(e.key)).toEqual(e);
      expect(t.desired().has(e.key)).toBe(true);
    }
    for (const k of ['route|254|10.244.3.0/24', 'arp|5|10.244.3.0', 'fdb|5|02:00:00:00:00:99', 'nexthop|999', 'arp|6|10.244.1.0', 'route|255|10.244.1.0/24', 'bogus', 'nexthop|x']) {
      expect(t.desired().get(k)).toBeUndefined();
      expect(t.desired().has(k)).toBe(false);
    }
  });

  it('forgets a removed peer and keeps the incumbent of an overlap (and only it) programmed', () => {
    const t = build();
    const before = t.desired().get('route|254|10.244.1.0/24');
    t.upsert(lease('10.244.1.0/24', { publicIP: '192.0.2.9', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:77' } }, 'dup'));
    expect(t.desired().get('route|254|10.244.1.0/24')).toEqual(before);
    expect(t.desired().get('fdb|5|02:11:22:33:44:77')).toBeUndefined();
    expect(t.desired().size).toBe(9);
    t.remove('dup');
    expect(t.desired().get('route|254|10.244.1.0/24')?.object).toMatchObject({ dst: '10.244.1.0/24' });
    t.remove('10.244.2.0-24');
    expect(t.desired().get('fdb|5|02:11:22:33:44:66')).toBeUndefined();
    expect(t.desired().size).toBe(5);
  });

  it('keeps the same source (no dirty keys) when a revalidation changes nothing', () => {
    const t = build();
    const before = t.desired().get('route|254|10.244.1.0/24')!.source;
    t.upsert(lease('10.244.7.0/24', { publicIP: '192.0.2.10', backendData: { VNI: 1, VtepMAC: '02:11:22:33:44:88' } }));
    expect(t.desired().get('route|254|10.244.1.0/24')!.source).toBe(before);
  });
});

describe('ObservedState stores in-sync entries as their source', () => {
  it('rebuilds an equal entry on get and recognises the desired one by identity', async () => {
    const { ObservedState } = await import('../../../agent/reconcile/state.js');
    const t = new PeerTable(ctx);
    t.setDevice(dev);
    t.upsert(lease('10.244.1.0/24'));
    const o = new ObservedState();
    for (const e of t.desired().values()) o.set(e.key, e);
    for (const e of t.desired().values()) {
      expect(o.recorded(e.key, e)).toBe(true);
      expect(o.get(e.key)).toEqual(e);
    }
    const foreign = { kind: 'arp' as const, key: 'arp|5|10.244.1.0', object: { kind: 'neigh' as const, family: 4 as const, ifindex: 5, ip: '10.244.1.0', mac: '02:00:00:00:00:01', state: 0x80, flags: 0 } };
    const arpKey = 'arp|5|10.244.1.0';
    expect(o.matches(arpKey, t.desired().get(arpKey)!)).toBe(true);
    const kernelEcho = { kind: 'arp' as const, key: arpKey, object: { ...t.desired().get(arpKey)!.object, flags: 0x40 } };
    expect(o.matches(arpKey, kernelEcho)).toBe(true);      // kernel extras do not matter
    o.set(foreign.key, foreign);
    expect(o.matches(arpKey, kernelEcho)).toBe(false);     // the cache now holds another MAC
    expect(o.matches('arp|5|10.244.200.0', kernelEcho)).toBe(false);
    expect(o.get(foreign.key)).toBe(foreign);
    expect(o.recorded(foreign.key, t.desired().get(foreign.key)!)).toBe(false);
  });
});
