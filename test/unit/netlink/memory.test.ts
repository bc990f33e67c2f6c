import { describe, expect, it } from 'vitest';
import { MemoryKernel } from '../../../lib/netlink/memory.js';
import { NTF_SELF, NUD_PERMANENT, RTPROT_TWILL, type NlChange, type NlEvent, type NlObject } from '../../../lib/netlink/types.js';

async function withVxlan(k = new MemoryKernel()) {
  const [r] = await k.apply([{ verb: 'create', object: { kind: 'link', name: 'twill.1', type: 'vxlan', up: true, vxlan: { vni: 1, port: 8472, learning: false } } }]);
  expect(r).toEqual({ ok: true });
  return { k, dev: k.linkByName('twill.1')!.index };
}

function peer(dev: number, i: number): NlChange[] {
  const gw = `10.244.${i}.0`;
  const mac = `02:42:00:00:00:${i.toString(16).padStart(2, '0')}`;
  return [
    { verb: 'replace', object: { kind: 'neigh', family: 4, ifindex: dev, ip: gw, mac, state: NUD_PERMANENT, flags: 0 } },
    { verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: dev, ip: `192.0.2.${i}`, mac, state: NUD_PERMANENT, flags: NTF_SELF } },
    { verb: 'replace', object: { kind: 'nexthop', id: i, family: 4, gateway: gw, ifindex: dev, onlink: true, protocol: RTPROT_TWILL } },
    { verb: 'replace', object: { kind: 'route', family: 4, dst: `${gw}/24`, nhid: i, protocol: RTPROT_TWILL } },
  ];
}

async function collect(it: AsyncIterable<NlEvent>, n: number): Promise<NlEvent[]> {
  const out: NlEvent[] = [];
  if (n === 0) return out;
  for await (const e of it) { out.push(e); if (out.length >= n) break; }
  return out;
}

describe('MemoryKernel', () => {
  it('starts like a fresh netns: lo only, down', async () => {
    const k = new MemoryKernel();
    expect(await k.listLinks()).toEqual([{ index: 1, name: 'lo', type: 'loopback', mtu: 65536, up: false, mac: '00:00:00:00:00:00' }]);
    expect(await k.supportsNexthops()).toBe(true);
    expect(await new MemoryKernel({ nexthops: false }).supportsNexthops()).toBe(false);
  });

  it('programs a peer and lists it normalised like the kernel decoder', async () => {
    const { k, dev } = await withVxlan();
    expect((await k.apply(peer(dev, 1))).every((r) => r.ok)).toBe(true);
    expect(await k.listRoutes({ protocol: RTPROT_TWILL })).toEqual([{ family: 4, dst: '10.244.1.0/24', nhid: 1, protocol: 116, table: 254, scope: 0 }]);
    expect(await k.listRoutes({ ifindex: dev })).toHaveLength(1); // a nhid route is "on" its nexthop's device
    expect(await k.listNexthops()).toEqual([{ id: 1, family: 4, gateway: '10.244.1.0', ifindex: dev, onlink: true, protocol: 116 }]);
    expect(await k.listNeighs({ family: 'bridge', ifindex: dev })).toEqual([{ family: 'bridge', ifindex: dev, ip: '192.0.2.1', mac: '02:42:00:00:00:01', state: 0x80, flags: 2 }]);
    expect(await k.listNeighs({ family: 4 })).toHaveLength(1);
  });

  it('create vs replace vs delete semantics', async () => {
    const { k, dev } = await withVxlan();
    const nh: NlObject = { kind: 'nexthop', id: 9, family: 4, gateway: '10.1.0.0', ifindex: dev, onlink: true, protocol: 116 };
    expect(await k.apply([{ verb: 'create', object: nh }])).toEqual([{ ok: true }]);
    const [dup] = await k.apply([{ verb: 'create', object: nh }]);
    expect(dup).toMatchObject({ ok: false, errno: 17, code: 'EEXIST' });
    expect(await k.apply([{ verb: 'replace', object: { ...nh, gateway: '10.1.0.1' } }])).toEqual([{ ok: true }]);
    expect((await k.listNexthops())[0]!.gateway).toBe('10.1.0.1');
    expect(await k.apply([{ verb: 'delete', object: nh }, { verb: 'delete', object: nh }])).toEqual([{ ok: true }, { ok: true }]);
    const [setMissing] = await k.apply([{ verb: 'set', object: { kind: 'link', name: 'nope', mtu: 1400 } }]);
    expect(setMissing).toMatchObject({ ok: false, code: 'ENODEV' });
    expect(await k.apply([{ verb: 'delete', object: { kind: 'link', name: 'nope' } }])).toEqual([{ ok: true }]);
    expect(await k.apply([{ verb: 'delete', object: { kind: 'addr', ifindex: dev, family: 4, address: '10.9.9.9', prefixLen: 32 } }])).toEqual([{ ok: true }]);
  });

  it('routes need an existing nexthop, a reachable gateway or onlink, and an up device', async () => {
    const { k, dev } = await withVxlan();
    const r = await k.apply([
      { verb: 'replace', object: { kind: 'route', family: 4, dst: '10.5.0.0/16', nhid: 77, protocol: 116 } },
      { verb: 'replace', object: { kind: 'route', family: 4, dst: '10.6.0.0/16', gateway: '10.6.0.1', ifindex: dev, protocol: 116 } },
      { verb: 'replace', object: { kind: 'route', family: 4, dst: '10.7.0.0/16', gateway: '10.7.0.1', ifindex: dev, onlink: true, protocol: 116 } },
      { verb: 'replace', object: { kind: 'route', family: 4, dst: '10.8.0.0/16', ifindex: 1, protocol: 3 } }, // lo is down
    ]);
    expect(r.map((x) => (x.ok ? 'ok' : x.code))).toEqual(['EINVAL', 'ENETUNREACH', 'ok', 'ENETDOWN']);
  });

  it('an address on an up link adds its connected route; a gateway in it becomes reachable', async () => {
    const { k, dev } = await withVxlan();
    await k.apply([{ verb: 'create', object: { kind: 'addr', ifindex: dev, family: 4, address: '10.6.0.5', prefixLen: 24 } }]);
    expect(await k.listRoutes({ protocol: 2 })).toEqual([{ family: 4, dst: '10.6.0.0/24', ifindex: dev, protocol: 2, table: 254, scope: 253, src: '10.6.0.5' }]);
    const [r] = await k.apply([{ verb: 'replace', object: { kind: 'route', family: 4, dst: '10.60.0.0/16', gateway: '10.6.0.1', ifindex: dev, protocol: 116 } }]);
    expect(r).toEqual({ ok: true });
  });

  it('deleting a link removes its addresses, neighbours, nexthops, routes and veth peer', async () => {
    const { k, dev } = await withVxlan();
    await k.apply([...peer(dev, 1), ...peer(dev, 2), { verb: 'create', object: { kind: 'addr', ifindex: dev, family: 4, address: '10.244.0.0', prefixLen: 32 } }]);
    await k.apply([{ verb: 'create', object: { kind: 'link', name: 'veth0', type: 'veth', veth: { peerName: 'veth1' } } }]);
    expect(k.remove({ kind: 'link', name: 'twill.1' })).toEqual({ ok: true });
    expect([await k.listRoutes({ table: 0 }), await k.listNexthops(), await k.listNeighs({ family: 4 }), await k.listNeighs({ family: 'bridge' }), await k.listAddrs()])
      .toEqual([[], [], [], [], []]);
    k.remove({ kind: 'link', name: 'veth1' });
    expect((await k.listLinks()).map((l) => l.name)).toEqual(['lo']);
  });

  it('deleting a nexthop removes the routes through it', async () => {
    const { k, dev } = await withVxlan();
    await k.apply(peer(dev, 3));
    k.remove({ kind: 'nexthop', id: 3, family: 4, gateway: '', ifindex: 0, onlink: false, protocol: 116 });
    expect(await k.listRoutes()).toEqual([]);
  });

  it('links: bridge ports, hairpin, rename, mtu, up/down', async () => {
    const k = new MemoryKernel();
    await k.apply([
      { verb: 'create', object: { kind: 'link', name: 'cni0', type: 'bridge', up: true } },
      { verb: 'create', object: { kind: 'link', name: 'veth0', type: 'veth', veth: { peerName: 'eth0', peerMtu: 1400 }, mtu: 1400 } },
    ]);
    const br = k.linkByName('cni0')!.index;
    const [noPort] = await k.apply([{ verb: 'set', object: { kind: 'link', name: 'veth0', hairpin: true } }]);
    expect(noPort).toMatchObject({ ok: false, code: 'EOPNOTSUPP' });
    expect(await k.apply([
      { verb: 'set', object: { kind: 'link', name: 'veth0', master: br, up: true, hairpin: true } },
      { verb: 'set', object: { kind: 'link', name: 'eth0', newName: 'eth1', mtu: 1350 } },
    ])).toEqual([{ ok: true }, { ok: true }]);
    expect(k.linkByName('veth0')).toMatchObject({ master: br, hairpin: true, up: true, mtu: 1400, type: 'veth' });
    expect(k.linkByName('eth1')).toMatchObject({ mtu: 1350 });
    const [clash] = await k.apply([{ verb: 'set', object: { kind: 'link', name: 'eth1', newName: 'veth0' } }]);
    expect(clash).toMatchObject({ ok: false, code: 'EEXIST' });
    const [badMaster] = await k.apply([{ verb: 'set', object: { kind: 'link', name: 'eth1', master: k.linkByName('veth0')!.index } }]);
    expect(badMaster).toMatchObject({ ok: false, code: 'EOPNOTSUPP' });
  });

  it('veth peers can be created in another (memory) netns', async () => {
    const host = new MemoryKernel({ netns: 'host' });
    const pod = new MemoryKernel({ netns: 'pod' });
    host.bindNetnsFd(40, pod);
    expect(await host.apply([{ verb: 'create', object: { kind: 'link', name: 'vethabc', type: 'veth', veth: { peerName: 'eth0', peerNetnsFd: 40 } } }])).toEqual([{ ok: true }]);
    expect(host.linkByName('eth0')).toBeUndefined();
    expect(pod.linkByName('eth0')).toMatchObject({ type: 'veth' });
    host.remove({ kind: 'link', name: 'vethabc' });
    expect(pod.linkByName('eth0')).toBeUndefined();
    const [badFd] = await host.apply([{ verb: 'create', object: { kind: 'link', name: 'v2', type: 'veth', veth: { peerName: 'e', peerNetnsFd: 99 } } }]);
    expect(badFd).toMatchObject({ ok: false, code: 'EBADF' });
  });

  it('failNext injects per-entry errors; the rest of the batch still applies', async () => {
    const { k, dev } = await withVxlan();
    k.failNext((c) => c.object.kind === 'nexthop', 22);
    const res = await k.apply(peer(dev, 4));
    expect(res.map((r) => (r.ok ? 'ok' : r.code))).toEqual(['ok', 'ok', 'EINVAL', 'EINVAL']); // the route then lacks its nexthop
    expect(res[2]).toMatchObject({ message: expect.stringContaining('injected') });
    expect((await k.apply(peer(dev, 4))).every((r) => r.ok)).toBe(true); // one-shot
    expect(k.applyCalls).toBe(3);
    expect(k.lastBatch).toHaveLength(4);
  });

  it('watch sees every change, including cascades and external edits, until aborted', async () => {
    const { k, dev } = await withVxlan();
    const ctl = new AbortController();
    const events = collect(k.watch(['route', 'nexthop'], ctl.signal), 4);
    await k.apply(peer(dev, 5));
    k.remove({ kind: 'nexthop', id: 5, family: 4, gateway: '', ifindex: 0, onlink: false, protocol: 116 });
    const got = (await events).map((e) => (e.type === 'overflow' ? 'overflow' : `${e.type} ${e.object.kind}`));
    expect(got).toEqual(['new nexthop', 'new route', 'del route', 'del nexthop']);
    const after = k.watch(['link'], ctl.signal);
    ctl.abort();
    expect(await collect(after, 1)).toEqual([]);
  });

  it('overflow() reaches watchers', async () => {
    const k = new MemoryKernel();
    const ctl = new AbortController();
    const ev = collect(k.watch(['neigh'], ctl.signal), 1);
    k.overflow();
    expect(await ev).toEqual([{ type: 'overflow' }]);
    ctl.abort();
  });
});
