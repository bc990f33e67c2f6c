import { afterEach, expect, it } from 'vitest';
import { openHandle, type HandleOptions } from '../../../lib/netlink/handle.js';
import { NTF_SELF, NUD_PERMANENT, RTPROT_TWILL, type NetlinkHandle, type NlEvent, type NlEventGroup } from '../../../lib/netlink/types.js';
import { describeRoot } from '../../util/root.js';
import { netnsFixture } from './netns-fixture.js';

/** Consumes a watch in the background; `next(pred)` resolves with the first matching event. */
function consume(h: NetlinkHandle, groups: NlEventGroup[], signal: AbortSignal) {
  const seen: NlEvent[] = [];
  const waiters: { pred: (e: NlEvent) => boolean; resolve: (e: NlEvent) => void }[] = [];
  const iterable = h.watch(groups, signal); // subscribed now, before any iteration
  const done = (async () => {
    for await (const e of iterable) {
      seen.push(e);
      for (const w of waiters.splice(0)) {
        if (w.pred(e)) w.resolve(e); else waiters.push(w);
      }
    }
  })();
  const next = (pred: (e: NlEvent) => boolean, ms = 1000) => new Promise<NlEvent>((resolve, reject) => {
    const hit = seen.find(pred);
    if (hit) return resolve(hit);
    const t = setTimeout(() => reject(new Error(`no matching event within ${ms} ms; saw ${JSON.stringify(seen.slice(-5))}`)), ms);
    waiters.push({ pred, resolve: (e) => { clearTimeout(t); resolve(e); } });
  });
  return { seen, next, done };
}

describeRoot('netlink watch', () => {
  const fx = netnsFixture('tnw');
  const handles: NetlinkHandle[] = [];
  const ctls: AbortController[] = [];
  afterEach(() => {
    for (const c of ctls.splice(0)) c.abort();
    for (const h of handles.splice(0)) h.close();
  });

  async function setup(opts: HandleOptions = {}) {
    const ns = fx.make();
    const h = openHandle({ netnsPath: ns.path, ...opts });
    handles.push(h);
    await h.apply([{ verb: 'create', object: { kind: 'link', name: 'twill.1', type: 'vxlan', up: true, vxlan: { vni: 1, port: 8472, local: '127.0.0.1', learning: false } } }]);
    const dev = (await h.listLinks()).find((l) => l.name === 'twill.1')!.index;
    const ctl = new AbortController();
    ctls.push(ctl);
    return { ns, h, dev, ctl };
  }

  it.each(['thread', 'timer'] as const)('entries deleted by ip(8) arrive as del events within 1 s (%s wait)', async (mode) => {
    const { ns, h, dev, ctl } = await setup({ watchWait: mode });
    const w = consume(h, ['route', 'nexthop', 'neigh', 'link'], ctl.signal);
    const res = await h.apply([
      { verb: 'replace', object: { kind: 'neigh', family: 4, ifindex: dev, ip: '10.244.1.0', mac: '02:42:00:00:00:01', state: NUD_PERMANENT, flags: 0 } },
      { verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: dev, ip: '192.0.2.1', mac: '02:42:00:00:00:01', state: NUD_PERMANENT, flags: NTF_SELF } },
      { verb: 'replace', object: { kind: 'nexthop', id: 7, family: 4, gateway: '10.244.1.0', ifindex: dev, onlink: true, protocol: RTPROT_TWILL } },
      { verb: 'replace', object: { kind: 'route', family: 4, dst: '10.244.1.0/24', nhid: 7, protocol: RTPROT_TWILL } },
    ]);
    expect(res.every((r) => r.ok)).toBe(true);
    await w.next((e) => e.type === 'new' && e.object.kind === 'route');

    ns.ip('route', 'del', '10.244.1.0/24');
    const delRoute = await w.next((e) => e.type === 'del' && e.object.kind === 'route');
    expect(delRoute).toEqual({ type: 'del', object: { kind: 'route', family: 4, dst: '10.244.1.0/24', nhid: 7, protocol: 116, table: 254, scope: 0 } });

    ns.ip('neigh', 'del', '10.244.1.0', 'dev', 'twill.1');
    expect(await w.next((e) => e.type === 'del' && e.object.kind === 'neigh' && e.object.family === 4))
      .toMatchObject({ object: { ip: '10.244.1.0', ifindex: dev, mac: '' } }); // the kernel drops the lladdr before notifying

    ns.ip('nexthop', 'del', 'id', '7');
    expect(await w.next((e) => e.type === 'del' && e.object.kind === 'nexthop')).toMatchObject({ object: { id: 7, protocol: 116 } });

    ns.ip('link', 'del', 'twill.1'); // takes the FDB entry with it
    expect(await w.next((e) => e.type === 'del' && e.object.kind === 'link')).toMatchObject({ object: { name: 'twill.1', index: dev, type: 'vxlan' } });
    expect(await w.next((e) => e.type === 'del' && e.object.kind === 'neigh' && e.object.family === 'bridge')).toMatchObject({ object: { mac: '02:42:00:00:00:01' } });
    ctl.abort();
    await w.done;
  });

  it('only the requested groups are delivered', async () => {
    const { ns, h, dev, ctl } = await setup();
    const w = consume(h, ['addr'], ctl.signal);
    ns.ip('route', 'add', '10.9.0.0/16', 'dev', 'twill.1');
    ns.ip('addr', 'add', '10.244.0.0/32', 'dev', 'twill.1');
    expect(await w.next((e) => e.type === 'new')).toEqual({ type: 'new', object: { kind: 'addr', ifindex: dev, family: 4, address: '10.244.0.0', prefixLen: 32, scope: 0 } });
    expect(w.seen.every((e) => e.type !== 'overflow' && e.object.kind === 'addr')).toBe(true);
  });

  it('abort ends an idle watch promptly and closes its socket', async () => {
    const { h, ctl } = await setup();
    const w = consume(h, ['link', 'addr', 'route', 'nexthop', 'neigh'], ctl.signal);
    await new Promise((r) => setTimeout(r, 100));
    const t0 = performance.now();
    ctl.abort();
    await w.done;
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('closing the handle ends its watches', async () => {
    const { h } = await setup();
    const w = consume(h, ['route'], new AbortController().signal);
    await new Promise((r) => setTimeout(r, 50));
    h.close();
    await w.done;
  });

  it('a notification overflow yields {type: overflow} and the watch continues', async () => {
    const { ns, h, dev, ctl } = await setup({ watchBufferBytes: 4096 });
    const iterable = h.watch(['route'], ctl.signal);
    // Flood while nobody reads: far more notifications than a 4 KiB buffer holds.
    const flood = Array.from({ length: 2000 }, (_, i) => ({
      verb: 'replace' as const,
      object: { kind: 'route' as const, family: 4 as const, dst: `10.${50 + (i >> 8)}.${i & 255}.0/24`, gateway: '10.1.1.1', ifindex: dev, onlink: true, protocol: RTPROT_TWILL },
    }));
    expect((await h.apply(flood)).every((r) => r.ok)).toBe(true);
    const got: NlEvent[] = [];
    let afterOverflow = false;
    for await (const e of iterable) {
      got.push(e);
      if (e.type === 'overflow') {
        afterOverflow = true;
        ns.ip('route', 'del', '10.50.0.0/24');
        continue;
      }
      if (afterOverflow && e.type === 'del' && e.object.kind === 'route' && e.object.dst === '10.50.0.0/24') break;
    }
    expect(got.some((e) => e.type === 'overflow')).toBe(true);
    expect(got.filter((e) => e.type === 'new').length).toBeLessThan(2000);
  });
});
