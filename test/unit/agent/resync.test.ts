// The periodic resync reads the kernel in the background (Reconciler.resync): lease work goes on
// while the dump is in progress, and the dump, merged with what changed meanwhile, still repairs
// drift that came without a notification.
import { describe, expect, it } from 'vitest';
import { Reconciler } from '../../../agent/reconcile/loop.js';
import type { DesiredState, Entry, EntrySource } from '../../../agent/reconcile/state.js';
import { peerEntries, type DeviceInfo } from '../../../agent/backend/vxlan/desired.js';
import { MemoryKernel } from '../../../lib/netlink/memory.js';
import type { Neigh, NetlinkHandle, Route } from '../../../lib/netlink/types.js';
import { parsePrefix } from '../../../lib/ip/prefix.js';
import { silentLogger } from '../../../lib/log.js';
import { systemClock } from '../../../lib/retry.js';

const peer = (n: number) => ({ key: `10.244.${n}.0-24`, subnet: parsePrefix(`10.244.${n}.0/24`), publicIP: `192.0.2.${n}`, vtepMAC: `02:00:00:00:00:${n.toString(16).padStart(2, '0')}` });

const until = async (cond: () => boolean, what: string) => {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((res) => setTimeout(res, 5));
  if (!cond()) throw new Error(`timed out waiting for ${what}`);
};

/** A memory kernel with a VXLAN-ish device, whose route dumps wait for `release()` while gated. */
function rig(withHolds = false) {
  const k = new MemoryKernel();
  k.external([{ verb: 'create', object: { kind: 'link', name: 'twill.1', type: 'bridge', mtu: 1450, up: true } }]);
  const dev: DeviceInfo = { index: k.linkByName('twill.1')!.index, name: 'twill.1', mtu: 1450, vni: 1, nexthops: true };
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let dumping = false;
  const handle = new Proxy(k, {
    get(target, prop, receiver) {
      if (prop === 'listRoutes') {
        // Like a real dump, a snapshot of the moment it was asked for, delivered later.
        return async (...a: Parameters<MemoryKernel['listRoutes']>) => {
          const snapshot = await target.listRoutes(...a);
          dumping = true;
          await gate;
          dumping = false;
          return snapshot;
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...x: unknown[]) => unknown).bind(target) : v;
    },
  }) as NetlinkHandle;
  const map = new Map<string, Entry>();
  const sources = new Map<string, EntrySource>();
  // With holds(), as the PeerTable's view has: the resync's scan then tests cached sources.
  const desired: DesiredState = withHolds
    ? { get: (k) => map.get(k), has: (k) => map.has(k), values: () => map.values(), get size() { return map.size; }, holds: (src) => sources.get(src.owner) === src }
    : map;
  const add = (n: number) => {
    const es = peerEntries(peer(n), dev);
    for (const e of es) map.set(e.key, e);
    sources.set(es[0]!.source!.owner, es[0]!.source!);
    return es.map((e) => e.key);
  };
  const drop = (n: number) => {
    const keys = peerEntries(peer(n), dev).map((e) => e.key);
    for (const key of keys) map.delete(key);
    sources.delete(peer(n).key);
    return keys;
  };
  const repaired: Record<string, number> = {};
  const triggers: string[] = [];
  const r = new Reconciler({
    handle, logger: silentLogger(), clock: systemClock, desired: () => desired, device: () => ({ index: dev.index, nexthops: true }),
    hooks: { repaired: (kind, n) => { repaired[kind] = (repaired[kind] ?? 0) + n; }, reconciled: (s) => { triggers.push(s.trigger); } },
  });
  const routeOf = (n: number) => k.routes().find((x: Route) => x.dst === `10.244.${n}.0/24`);
  /** Runs the loop with these peers programmed by its start-up pass; returns what stops it. */
  const start = async (...peers: number[]): Promise<() => Promise<void>> => {
    const ctl = new AbortController();
    const running = r.run(ctl.signal);
    for (const n of peers) add(n);
    r.request('all', 'start');
    await until(() => peers.every((n) => routeOf(n) !== undefined), 'the start-up pass');
    return async () => { ctl.abort(); await running; };
  };
  return {
    k, r, add, drop, repaired, triggers, start, routeOf,
    gateDumps: () => { gate = new Promise<void>((res) => { open = res; }); },
    release: () => { open?.(); gate = undefined; },
    dumping: () => dumping,
    fdbOf: (n: number) => k.neighs().find((x: Neigh) => x.family === 'bridge' && x.mac === peer(n).vtepMAC),
  };
}

describe.each([['a Map', false], ['a view with holds()', true]])('Reconciler.resync (background full resync), desired as %s', (_, holds) => {
  it('programs a lease change while the resync\'s kernel dump is still in progress', async () => {
    const x = rig(holds);
    const stop = await x.start(1);

    x.gateDumps();
    x.r.resync();
    await until(x.dumping, 'the resync to start its dump');
    x.r.request(x.add(2), 'lease');
    x.r.request(x.drop(1), 'lease');
    // Behind a blocking full pass these wait for the dump; here they are done before it ends.
    await until(() => x.routeOf(2) !== undefined && x.fdbOf(2) !== undefined && x.routeOf(1) === undefined, 'peers 2 and 1 during the dump');
    expect(x.dumping()).toBe(true);
    const writes = x.k.applyCalls;
    x.release();
    await until(() => x.triggers.at(-1) === 'resync', 'the resync to finish');
    // The dump predates both changes; merged with what changed meanwhile, it finds nothing to
    // do: no write, nothing counted as a repair.
    expect(x.k.applyCalls).toBe(writes);
    expect(x.repaired).toEqual({});
    expect(x.routeOf(1)).toBeUndefined();
    expect(x.routeOf(2)).toBeDefined();
    await stop();
  });

  it('repairs drift that came without a notification, and counts it as a resync repair', async () => {
    const x = rig(holds);
    const stop = await x.start(1, 3);
    // No watch runs here: the cache still believes these are present.
    x.k.remove({ kind: 'route', ...x.routeOf(1)! });
    x.k.remove({ kind: 'neigh', ...x.fdbOf(3)! });
    x.gateDumps();
    x.r.resync();
    await until(x.dumping, 'the dump');
    x.r.request(x.add(4), 'lease');
    await until(() => x.routeOf(4) !== undefined, 'peer 4 during the dump');
    expect(x.routeOf(1)).toBeUndefined();   // not repaired before the dump is read
    x.release();
    await until(() => x.routeOf(1) !== undefined && x.fdbOf(3) !== undefined, 'the repairs');
    expect(x.repaired).toEqual({ route: 1, fdb: 1 });
    expect(x.triggers.at(-1)).toMatch(/resync/);
    await stop();
  });

  it('deletes an entry of ours that nobody wants, found only by the dump', async () => {
    const x = rig(holds);
    const stop = await x.start(1);
    // Someone else writes a neighbour on our device: ours by ownership, wanted by no peer.
    const dev = x.k.linkByName('twill.1')!.index;
    x.k.external([{ verb: 'replace', object: { kind: 'neigh', family: 'bridge', ifindex: dev, mac: '02:00:00:00:00:99', ip: '192.0.2.99', state: 128, flags: 0 } as Neigh & { kind: 'neigh' } }]);
    expect(x.k.neighs().some((n) => n.mac === '02:00:00:00:00:99')).toBe(true);
    x.r.resync();
    await until(() => !x.k.neighs().some((n) => n.mac === '02:00:00:00:00:99'), 'the stray FDB entry to go');
    expect(x.repaired).toEqual({ fdb: 1 });
    await stop();
  });

  it('falls back to the blocking full pass when there is no cache yet', async () => {
    const x = rig(holds);
    x.add(1);
    x.r.resync();
    const s = await x.r.runOnce();
    expect(s.trigger).toBe('resync');
    expect(x.routeOf(1)).toBeDefined();
  });
});
