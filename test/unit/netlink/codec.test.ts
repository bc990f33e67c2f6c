import { describe, expect, it } from 'vitest';
import * as C from '../../../lib/netlink/consts.js';
import {
  decodeAddr, decodeEvent, decodeLink, decodeNeigh, decodeNexthop, decodeRoute, describeChange, encodeChange,
  linkNeedsIndex, routeMatches,
} from '../../../lib/netlink/codec.js';
import { isTwillError } from '../../../lib/errors.js';
import type { NlChange, NlObject } from '../../../lib/netlink/types.js';
import { decodeError, errnoCode, NlWriter, parseAttrs, parseMessages } from '../../../lib/netlink/wire.js';
import { FIXTURES, fixture } from './fixtures.js';

/** Encodes one change and returns its messages. */
function encode(c: NlChange) {
  const w = new NlWriter(16);
  let seq = 100;
  const n = encodeChange(w, c, () => seq++);
  const msgs = parseMessages(Buffer.from(w.view()));
  expect(msgs).toHaveLength(n);
  return msgs;
}

describe('codec round trips (encode a change, decode the request payload)', () => {
  it('vxlan link with every attribute', () => {
    const [m] = encode({ verb: 'create', object: {
      kind: 'link', name: 'twill.1', type: 'vxlan', mtu: 1450, mac: '02:aa:bb:cc:dd:01', up: true, master: 7,
      vxlan: { vni: 4096, port: 8472, local: '192.0.2.10', learning: false, gbp: true, link: 3 },
    } });
    expect(m!.type).toBe(C.RTM_NEWLINK);
    expect(m!.flags).toBe(C.NLM_F_REQUEST | C.NLM_F_ACK | C.NLM_F_CREATE | C.NLM_F_EXCL);
    expect(decodeLink(m!.data)).toEqual({
      index: 0, name: 'twill.1', type: 'vxlan', kind: 'vxlan', mtu: 1450, mac: '02:aa:bb:cc:dd:01', up: true, master: 7,
      vxlan: { vni: 4096, port: 8472, local: '192.0.2.10', learning: false, gbp: true, link: 3 },
    });
  });

  it('vxlan port is big-endian on the wire and IPv6 local uses LOCAL6', () => {
    const [m] = encode({ verb: 'create', object: { kind: 'link', name: 'v6', type: 'vxlan', vxlan: { vni: 1, port: 8472, local: 'fd00::1', learning: true } } });
    const info = parseAttrs(parseAttrs(m!.data, C.IFINFOMSG_LEN).get(C.IFLA_LINKINFO)!);
    const data = parseAttrs(info.get(C.IFLA_INFO_DATA)!);
    expect([...data.get(C.IFLA_VXLAN_PORT)!]).toEqual([0x21, 0x18]);
    expect(data.get(C.IFLA_VXLAN_LOCAL6)!.length).toBe(16);
    expect(decodeLink(m!.data)!.vxlan).toEqual({ vni: 1, port: 8472, local: 'fd00::1', learning: true });
  });

  it('veth with its peer placed in another netns', () => {
    const [m] = encode({ verb: 'create', object: {
      kind: 'link', name: 'veth1234', type: 'veth', mtu: 1450,
      veth: { peerName: 'eth0', peerNetnsFd: 42, peerMtu: 1450, peerMac: '02:00:00:00:00:09' },
    } });
    const info = parseAttrs(parseAttrs(m!.data, C.IFINFOMSG_LEN).get(C.IFLA_LINKINFO)!);
    expect(info.get(C.IFLA_INFO_KIND)!.toString()).toBe('veth\0');
    const peer = parseAttrs(info.get(C.IFLA_INFO_DATA)!).get(C.VETH_INFO_PEER)!;
    const peerLink = decodeLink(peer)!; // VETH_INFO_PEER carries an ifinfomsg + attributes
    expect(peerLink).toMatchObject({ name: 'eth0', mtu: 1450, mac: '02:00:00:00:00:09' });
    expect(parseAttrs(peer, C.IFINFOMSG_LEN).get(C.IFLA_NET_NS_FD)!.readInt32LE(0)).toBe(42);
  });

  it('set by name without index, rename and hairpin need the index', () => {
    const [m] = encode({ verb: 'set', object: { kind: 'link', name: 'cni0', mtu: 1400, up: false, master: 0 } });
    expect(m!.flags).toBe(C.NLM_F_REQUEST | C.NLM_F_ACK);
    expect(decodeLink(m!.data)).toMatchObject({ index: 0, name: 'cni0', mtu: 1400, up: false });
    expect(m!.data.readUInt32LE(12)).toBe(C.IFF_UP); // ifi_change names IFF_UP: "down" is explicit
    expect(linkNeedsIndex('set', { name: 'x', newName: 'y' })).toBe(true);
    expect(linkNeedsIndex('set', { name: 'x', hairpin: true })).toBe(true);
    expect(linkNeedsIndex('set', { name: 'x', index: 3, hairpin: true })).toBe(false);
    expect(linkNeedsIndex('set', { name: 'x', mtu: 1400 })).toBe(false);
    expect(() => encode({ verb: 'set', object: { kind: 'link', name: 'x', newName: 'y' } })).toThrow(/index/);
  });

  it('hairpin travels as AF_BRIDGE RTM_SETLINK with nested IFLA_PROTINFO', () => {
    const msgs = encode({ verb: 'set', object: { kind: 'link', name: 'veth0', index: 9, master: 4, hairpin: true } });
    expect(msgs.map((m) => m.type)).toEqual([C.RTM_NEWLINK, C.RTM_SETLINK]);
    const hp = msgs[1]!;
    expect(hp.data[0]).toBe(C.AF_BRIDGE);
    expect(hp.data.readInt32LE(4)).toBe(9);
    expect(hp.data.readUInt16LE(C.IFINFOMSG_LEN + 2)).toBe(C.IFLA_PROTINFO | C.NLA_F_NESTED);
    expect(parseAttrs(parseAttrs(hp.data, C.IFINFOMSG_LEN).get(C.IFLA_PROTINFO)!).get(C.IFLA_BRPORT_MODE)![0]).toBe(1);
    // hairpin alone: only the AF_BRIDGE message
    expect(encode({ verb: 'set', object: { kind: 'link', name: 'veth0', index: 9, hairpin: false } }).map((m) => m.type)).toEqual([C.RTM_SETLINK]);
  });

  it('addresses v4 and v6', () => {
    for (const a of [
      { ifindex: 3, family: 4 as const, address: '10.244.0.0', prefixLen: 32, scope: 0 },
      { ifindex: 4, family: 6 as const, address: 'fd00:10:244::1', prefixLen: 64, scope: 0 },
    ]) {
      const [m] = encode({ verb: 'replace', object: { kind: 'addr', ...a } });
      expect(m!.flags & (C.NLM_F_CREATE | C.NLM_F_REPLACE)).toBe(C.NLM_F_CREATE | C.NLM_F_REPLACE);
      expect(decodeAddr(m!.data)).toEqual(a);
    }
  });

  it('routes: nhid, onlink gateway with metric/mtu/src, IPv6 default', () => {
    const cases = [
      { family: 4 as const, dst: '10.244.1.0/24', nhid: 183763200, protocol: 116, table: 254, scope: 0 },
      { family: 4 as const, dst: '10.244.2.0/24', gateway: '10.244.2.0', ifindex: 5, onlink: true, protocol: 116, table: 254, scope: 0, metric: 5, mtu: 1400, src: '10.244.0.0' },
      { family: 6 as const, dst: '::/0', gateway: 'fe80::1', ifindex: 2, protocol: 3, table: 254, scope: 0, metric: 1024 },
      { family: 4 as const, dst: '10.244.0.0/16', ifindex: 2, protocol: 3, table: 1000, scope: 253 },
    ];
    for (const r of cases) {
      const [m] = encode({ verb: 'replace', object: { kind: 'route', ...r } });
      expect(decodeRoute(m!.data)).toEqual(r);
    }
  });

  it('device routes default to link scope, gateway routes to universe', () => {
    const [dev] = encode({ verb: 'create', object: { kind: 'route', family: 4, dst: '10.0.0.0/8', ifindex: 2, protocol: 3 } });
    expect(decodeRoute(dev!.data)!.scope).toBe(C.RT_SCOPE_LINK);
    const [gw] = encode({ verb: 'create', object: { kind: 'route', family: 4, dst: '0.0.0.0/0', gateway: '10.0.0.1', protocol: 3 } });
    expect(decodeRoute(gw!.data)).toMatchObject({ dst: '0.0.0.0/0', scope: 0, gateway: '10.0.0.1' });
  });

  it('route delete matches any scope and only the given protocol', () => {
    const [m] = encode({ verb: 'delete', object: { kind: 'route', family: 4, dst: '10.244.1.0/24', nhid: 7, protocol: 116 } });
    expect(m!.type).toBe(C.RTM_DELROUTE);
    expect(m!.data[6]).toBe(C.RT_SCOPE_NOWHERE);
    expect(m!.data[5]).toBe(116);
    expect(parseAttrs(m!.data, C.RTMSG_LEN).has(C.RTA_NH_ID)).toBe(false); // EINVAL once the nexthop is gone
  });

  it('nexthops', () => {
    const n = { id: 183763200, family: 4 as const, gateway: '10.244.1.0', ifindex: 2, onlink: true, protocol: 116 };
    const [m] = encode({ verb: 'replace', object: { kind: 'nexthop', ...n } });
    expect(decodeNexthop(m!.data)).toEqual(n);
    const [d] = encode({ verb: 'delete', object: { kind: 'nexthop', ...n } });
    expect(d!.type).toBe(C.RTM_DELNEXTHOP);
    expect([...d!.data.subarray(0, 8)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0]); // strict header for delete
  });

  it('neighbours: ARP, NDP and FDB', () => {
    const cases = [
      { family: 4 as const, ifindex: 2, ip: '10.244.1.0', mac: '02:42:00:00:01:01', state: 0x80, flags: 0 },
      { family: 6 as const, ifindex: 2, ip: 'fd00::1', mac: '02:42:00:00:01:02', state: 0x80, flags: 0 },
      { family: 'bridge' as const, ifindex: 2, ip: '192.0.2.11', mac: '02:42:00:00:01:01', state: 0x80, flags: 2, vni: 7 },
    ];
    for (const n of cases) {
      const [m] = encode({ verb: 'replace', object: { kind: 'neigh', ...n } });
      expect(decodeNeigh(m!.data)).toEqual(n);
    }
  });
});

describe('decoding real kernel messages (fixtures)', () => {
  it('vxlan link', () => {
    const f = fixture(FIXTURES.vxlanLink);
    expect(f.type).toBe(C.RTM_NEWLINK);
    expect(decodeLink(f.data)).toEqual({
      index: 2, name: 'twill.1', type: 'vxlan', kind: 'vxlan', mtu: 1450, mac: '02:aa:bb:cc:dd:01', up: true,
      vxlan: { vni: 1, port: 8472, local: '192.0.2.10', learning: false, udpCsum: true },
    });
  });

  it('bridge port with hairpin', () => {
    const l = decodeLink(fixture(FIXTURES.bridgePortVeth).data)!;
    expect(l).toMatchObject({ name: 'veth0', type: 'veth', mac: '02:aa:bb:cc:dd:03', hairpin: true, up: false });
    expect(l.master).toBeGreaterThan(0);
  });

  it('addresses', () => {
    expect(decodeAddr(fixture(FIXTURES.addr4).data)).toEqual({ ifindex: 2, family: 4, address: '10.244.0.0', prefixLen: 32, scope: 0 });
    expect(decodeAddr(fixture(FIXTURES.addr6).data)).toMatchObject({ family: 6, address: 'fd00:10:244::1', prefixLen: 64 });
  });

  it('a route through a nexthop is normalised to its nhid', () => {
    expect(decodeRoute(fixture(FIXTURES.routeNhid).data)).toEqual({ family: 4, dst: '10.244.1.0/24', nhid: 183763200, protocol: 116, table: 254, scope: 0 });
  });

  it('an onlink gateway route with metric and mtu', () => {
    expect(decodeRoute(fixture(FIXTURES.routeOnlink).data)).toEqual({
      family: 4, dst: '10.244.2.0/24', gateway: '10.244.2.0', ifindex: 2, onlink: true, protocol: 116, table: 254, scope: 0, metric: 5, mtu: 1400,
    });
  });

  it('nexthop, ARP and FDB entries', () => {
    expect(decodeNexthop(fixture(FIXTURES.nexthop).data)).toEqual({ id: 183763200, family: 4, gateway: '10.244.1.0', ifindex: 2, onlink: true, protocol: 116 });
    expect(decodeNeigh(fixture(FIXTURES.arp).data)).toEqual({ family: 4, ifindex: 2, ip: '10.244.1.0', mac: '02:42:00:00:01:01', state: 0x80, flags: 0 });
    // `bridge fdb ... permanent` requests NUD_NOARP|NUD_PERMANENT; the kernel reports what was asked
    expect(decodeNeigh(fixture(FIXTURES.fdb).data)).toMatchObject({ family: 'bridge', ifindex: 2, ip: '192.0.2.11', mac: '02:42:00:00:01:01', state: 0xc0, flags: 2 });
  });

  it('an error ack carries errno, the request seq and the extended-ack text', () => {
    const buf = Buffer.from(FIXTURES.errorExtack, 'hex');
    const [m] = parseMessages(buf);
    expect(m!.type).toBe(C.NLMSG_ERROR);
    expect(m!.flags & (C.NLM_F_CAPPED | C.NLM_F_ACK_TLVS)).toBe(C.NLM_F_CAPPED | C.NLM_F_ACK_TLVS);
    const e = decodeError(m!);
    expect(e).toMatchObject({ errno: C.EINVAL, seq: m!.seq, extack: 'Nexthop id does not exist' });
    expect(errnoCode(e.errno)).toBe('EINVAL');
  });

  it('notifications decode to events', () => {
    const f = fixture(FIXTURES.routeNhid);
    const e = decodeEvent({ type: C.RTM_DELROUTE, flags: 0, seq: 0, pid: 0, data: f.data });
    expect(e).toEqual({ type: 'del', object: { kind: 'route', family: 4, dst: '10.244.1.0/24', nhid: 183763200, protocol: 116, table: 254, scope: 0 } });
    const l = decodeEvent({ type: C.RTM_NEWLINK, flags: 0, seq: 0, pid: 0, data: fixture(FIXTURES.vxlanLink).data });
    expect(l).toMatchObject({ type: 'new', object: { kind: 'link', name: 'twill.1', type: 'vxlan', index: 2 } });
    expect(decodeEvent({ type: 999, flags: 0, seq: 0, pid: 0, data: Buffer.alloc(0) })).toBeUndefined();
  });
});

describe('framing: padding and batching', () => {
  it('every message and attribute is 4-byte aligned and batches split back', () => {
    const w = new NlWriter(8); // forces growth while writing
    const changes: NlChange[] = [
      { verb: 'create', object: { kind: 'link', name: 'abc', type: 'bridge' } },           // odd-length name
      { verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: 2, mac: '02:00:00:00:00:01', ip: '192.0.2.1', state: 0x80, flags: 2 } },
      { verb: 'delete', object: { kind: 'route', family: 6, dst: 'fd00::/64', protocol: 116 } },
    ];
    for (const c of changes) encodeChange(w, c);
    expect(w.starts).toHaveLength(3);
    for (const s of w.starts) expect(s % 4).toBe(0);
    expect(w.off % 4).toBe(0);
    const msgs = parseMessages(Buffer.from(w.view()));
    expect(msgs.map((m) => m.type)).toEqual([C.RTM_NEWLINK, C.RTM_NEWNEIGH, C.RTM_DELROUTE]);
    const name = parseAttrs(msgs[0]!.data, C.IFINFOMSG_LEN).get(C.IFLA_IFNAME)!;
    expect(name.toString()).toBe('abc\0');
  });

  it('parseMessages stops at a truncated message', () => {
    const w = new NlWriter();
    encodeChange(w, { verb: 'delete', object: { kind: 'nexthop', id: 1, family: 4, gateway: '1.1.1.1', ifindex: 1, onlink: true, protocol: 116 } });
    const full = Buffer.from(w.view());
    expect(parseMessages(full)).toHaveLength(1);
    expect(parseMessages(full.subarray(0, full.length - 4))).toHaveLength(0);
  });
});

describe('validation: per-entry errors name field, value and rule', () => {
  const bad: [NlObject, RegExp][] = [
    [{ kind: 'route', family: 4, dst: '10.0.0.0', protocol: 116 }, /^dst: "10\.0\.0\.0" is invalid/],
    [{ kind: 'route', family: 4, dst: 'fd00::/64', protocol: 116 }, /dst/],
    [{ kind: 'route', family: 4, dst: '10.0.0.0/33', protocol: 116 }, /dst/],
    [{ kind: 'route', family: 4, dst: '10.0.0.0/8', gateway: 'fe80::1', protocol: 116 }, /gateway: "fe80::1" is invalid: must be an IPv4 address/],
    [{ kind: 'neigh', family: 4, ifindex: 2, ip: '10.0.0.1', mac: '02:00:00:00:00', state: 0x80, flags: 0 }, /^mac: /],
    [{ kind: 'nexthop', id: 0, family: 4, gateway: '10.0.0.1', ifindex: 2, onlink: true, protocol: 116 }, /^id: 0 is invalid/],
    [{ kind: 'link', name: 'this-name-is-too-long', type: 'bridge' }, /^name: /],
    [{ kind: 'link', name: 'vx', type: 'vxlan', vxlan: { vni: 1 << 24, port: 8472, learning: false } }, /vxlan\.vni/],
    [{ kind: 'addr', ifindex: 2, family: 4, address: '10.0.0.1', prefixLen: 40 }, /prefixLen/],
  ];
  it.each(bad)('%j', (object, re) => {
    const verb = object.kind === 'link' ? 'create' : 'replace';
    let caught: unknown;
    try { encodeChange(new NlWriter(), { verb, object }); } catch (err) { caught = err; }
    expect(isTwillError(caught)).toBe(true);
    expect((caught as Error).message).toMatch(re);
  });

  it('set is refused for routes', () => {
    expect(() => encodeChange(new NlWriter(), { verb: 'set', object: { kind: 'route', family: 4, dst: '10.0.0.0/8', protocol: 3 } })).toThrow(/verb/);
  });
});

describe('helpers', () => {
  it('routeMatches applies table (main by default, 0 = all), protocol, family and oif', () => {
    const r = { family: 4 as const, dst: '10.0.0.0/8', protocol: 116, table: 254, nhid: 3 };
    expect(routeMatches(r, {})).toBe(true);
    expect(routeMatches({ ...r, table: 255 }, {})).toBe(false);
    expect(routeMatches({ ...r, table: 255 }, { table: 0 })).toBe(true);
    expect(routeMatches(r, { protocol: 2 })).toBe(false);
    expect(routeMatches(r, { family: 6 })).toBe(false);
    expect(routeMatches(r, { ifindex: 5 }, 5)).toBe(true);
    expect(routeMatches(r, { ifindex: 5 }, 4)).toBe(false);
  });

  it('describeChange says what', () => {
    expect(describeChange({ verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: 2, mac: '02:00:00:00:00:01', state: 0x80, flags: 2 } })).toBe('replace fdb 02:00:00:00:00:01 on #2');
    expect(describeChange({ verb: 'delete', object: { kind: 'route', family: 4, dst: '10.0.0.0/8', protocol: 3, table: 100 } })).toBe('delete route 10.0.0.0/8 table 100');
  });

  it('errnoCode names errnos', () => {
    expect(errnoCode(17)).toBe('EEXIST');
    expect(errnoCode(95)).toBe('EOPNOTSUPP');
    expect(errnoCode(11)).toBe('EAGAIN');
    expect(errnoCode(9999)).toBe('E9999');
  });
});
