// watchOwnChanges: false — a watch skips the echoes of its own handle's apply() (dropped in the
// kernel by a socket filter) but still reports other writers, link changes and nexthop deletions.
import { afterEach, expect, it } from 'vitest';
import { openHandle } from '../../../lib/netlink/handle.js';
import { NetlinkSocket, ownEchoFilter } from '../../../lib/netlink/socket.js';
import { NTF_SELF, NUD_PERMANENT, RTPROT_TWILL, type NetlinkHandle, type NlChange, type NlEvent } from '../../../lib/netlink/types.js';
import { describeRoot } from '../../util/root.js';
import { netnsFixture } from './netns-fixture.js';

const peer = (dev: number, i: number): NlChange[] => [
  { verb: 'replace', object: { kind: 'neigh', family: 4, ifindex: dev, ip: `10.244.${i}.0`, mac: `02:42:00:00:00:${i.toString(16).padStart(2, '0')}`, state: NUD_PERMANENT, flags: 0 } },
  { verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: dev, ip: `192.0.2.${i}`, mac: `02:42:00:00:00:${i.toString(16).padStart(2, '0')}`, state: NUD_PERMANENT, flags: NTF_SELF } },
  { verb: 'replace', object: { kind: 'nexthop', id: 1000 + i, family: 4, gateway: `10.244.${i}.0`, ifindex: dev, onlink: true, protocol: RTPROT_TWILL } },
  { verb: 'replace', object: { kind: 'route', family: 4, dst: `10.244.${i}.0/24`, nhid: 1000 + i, protocol: RTPROT_TWILL } },
];

const describe = (e: NlEvent) => e.type === 'overflow' ? 'overflow' : `${e.type} ${e.object.kind}${e.object.kind === 'neigh' ? `/${e.object.family}` : ''}`;

describeRoot('netlink watch without own changes', () => {
  const fx = netnsFixture('tne');
  const handles: NetlinkHandle[] = [];
  const ctls: AbortController[] = [];
  afterEach(() => {
    for (const c of ctls.splice(0)) c.abort();
    for (const h of handles.splice(0)) h.close();
  });

  it('the filter program is 8 instructions and compares the byte-swapped port id', () => {
    const p = ownEchoFilter(0x01020304);
    expect(p.length).toBe(64);
    expect(p.readUInt32LE(5 * 8 + 4)).toBe(0x04030201);
  });

  it('a notification socket accepts the filter in the kernel', () => {
    const s = NetlinkSocket.open({ groups: [7], ignorePortId: 1234 });
    try { expect(s.echoFiltered).toBe(true); } finally { s.close(); }
  });

  it('own route/nexthop/ARP writes are not reported; another writer, nexthop deletions and link changes are', async () => {
    const ns = fx.make();
    const h = openHandle({ netnsPath: ns.path, watchOwnChanges: false });
    const other = openHandle({ netnsPath: ns.path });
    handles.push(h, other);
    await h.apply([{ verb: 'create', object: { kind: 'link', name: 'twill.1', type: 'vxlan', up: true, vxlan: { vni: 1, port: 8472, local: '127.0.0.1', learning: false } } }]);
    const dev = (await h.listLinks()).find((l) => l.name === 'twill.1')!.index;
    const ctl = new AbortController();
    ctls.push(ctl);
    const seen: NlEvent[] = [];
    const iterable = h.watch(['route', 'nexthop', 'neigh', 'link'], ctl.signal);
    void (async () => { for await (const e of iterable) seen.push(e); })();

    expect((await h.apply(peer(dev, 1))).every((r) => r.ok)).toBe(true);
    expect((await other.apply(peer(dev, 2))).every((r) => r.ok)).toBe(true);
    ns.ip('route', 'del', '10.244.2.0/24');
    await h.apply([{ verb: 'delete', object: { kind: 'route', family: 4, dst: '10.244.1.0/24', nhid: 1001, protocol: RTPROT_TWILL } }]);
    await h.apply([{ verb: 'delete', object: { kind: 'nexthop', id: 1001, family: 4, gateway: '10.244.1.0', ifindex: dev, onlink: true, protocol: RTPROT_TWILL } }]);
    await h.apply([{ verb: 'set', object: { kind: 'link', name: 'twill.1', index: dev, mtu: 1400 } }]);
    const deadline = Date.now() + 2000;
    while (Date.now() < deadline && !seen.some((e) => e.type !== 'overflow' && e.object.kind === 'link' && e.object.mtu === 1400)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const own = seen.filter((e) => e.type !== 'overflow' && (
      (e.object.kind === 'route' && e.object.dst === '10.244.1.0/24') || (e.object.kind === 'neigh' && e.object.family === 4 && e.object.ip === '10.244.1.0')
      || (e.type === 'new' && e.object.kind === 'nexthop' && e.object.id === 1001)));
    expect(own.map(describe)).toEqual([]);
    const names = seen.map(describe);
    // The other handle's four writes, ip(8)'s route deletion, our nexthop deletion, our MTU change.
    expect(seen.some((e) => e.type === 'new' && e.object.kind === 'route' && e.object.dst === '10.244.2.0/24')).toBe(true);
    expect(seen.some((e) => e.type === 'new' && e.object.kind === 'nexthop' && e.object.id === 1002)).toBe(true);
    expect(seen.some((e) => e.type === 'new' && e.object.kind === 'neigh' && e.object.family === 4 && e.object.ip === '10.244.2.0')).toBe(true);
    expect(seen.some((e) => e.type === 'del' && e.object.kind === 'route' && e.object.dst === '10.244.2.0/24')).toBe(true);
    expect(seen.some((e) => e.type === 'del' && e.object.kind === 'nexthop' && e.object.id === 1001), names.join(', ')).toBe(true);
    expect(seen.some((e) => e.type === 'new' && e.object.kind === 'link' && e.object.mtu === 1400), names.join(', ')).toBe(true);
  });
});
