// Observed state: only what twill owns — everything on the twill device (its addresses, ARP and
// FDB entries) plus nexthops and main-table routes tagged with twill's protocol number. The
// reconciler may delete only this, and must delete whatever of it is no longer wanted.
//
// An observed entry equal to the desired one is recorded as the desired Entry (whose source the
// cache keeps): a full dump at 20k peers parses 80k kernel objects, and keeping them would hold
// a second copy of every entry (≈20 MB) until the next dump.
import { MAIN_TABLE, RTPROT_TWILL, type NetlinkHandle, type NlObject, type Route } from '../../lib/netlink/types.js';
import { entryKey, sameEntry, type DesiredState, type Entry, type EntryKind, type KernelState } from './state.js';

/** Entries handled between two yields of a stepwise observation or scan. */
export const SLICE = 2000;

/**
 * `between`, when given, runs before each of the five dumps, which are then taken one at a time:
 * a dump is one synchronous read (lib/netlink/socket.ts), ≈5–20 ms at 5k peers each, and the
 * background resync (Reconciler.resync) yields to lease events between them. `timings` gets
 * each dump's milliseconds (routes, nexthops, addresses, ARP, FDB) when given.
 */

export async function observeOwned(h: NetlinkHandle, devIndex: number | undefined, nexthops: boolean, desired?: DesiredState, between?: () => Promise<void>, timings?: number[]): Promise<KernelState> {
  const state: KernelState = new Map();
  const put = (kind: EntryKind, object: NlObject) => {
    const key = entryKey(kind, object);
    const seen: Entry = { kind, key, object };
    const want = desired?.get(key);
    if (want && sameEntry(want, seen)) state.set(want.key, want); else state.set(key, seen);
  };
  const reads = [
    () => h.listRoutes({ family: 4, table: MAIN_TABLE }),
    () => nexthops ? h.listNexthops() : Promise.resolve([]),
    () => devIndex === undefined ? Promise.resolve([]) : h.listAddrs(4),
    () => devIndex === undefined ? Promise.resolve([]) : h.listNeighs({ family: 4, ifindex: devIndex }),
    () => devIndex === undefined ? Promise.resolve([]) : h.listNeighs({ family: 'bridge', ifindex: devIndex }),
  ] as const;
  type Lists = [Awaited<ReturnType<typeof reads[0]>>, Awaited<ReturnType<typeof reads[1]>>, Awaited<ReturnType<typeof reads[2]>>, Awaited<ReturnType<typeof reads[3]>>, Awaited<ReturnType<typeof reads[4]>>];
  let lists: Lists;
  if (!between) lists = await Promise.all(reads.map((r) => r())) as Lists;
  else {
    const out: unknown[] = [];
    for (const r of reads) {
      await between();
      const t = performance.now();
      out.push(await r());
      timings?.push(Math.round((performance.now() - t) * 10) / 10);
    }
    lists = out as Lists;
  }
  const [routes, nhs, addrs, arps, fdbs] = lists;
  // Sorting 20k objects into entries is a few ms more: with `between`, in slices.
  let n = 0;
  const tick = async () => { if (between && ++n % SLICE === 0) await between(); };
  for (const r of routes) { if (ownsRoute(r, devIndex)) put('route', { kind: 'route', ...r }); await tick(); }
  for (const x of nhs) { if (x.protocol === RTPROT_TWILL) put('nexthop', { kind: 'nexthop', ...x }); await tick(); }
  for (const a of addrs) if (a.ifindex === devIndex) put('addr', { kind: 'addr', ...a });
  for (const x of arps) { if (x.ifindex === devIndex && x.ip) put('arp', { kind: 'neigh', ...x }); await tick(); }
  for (const x of fdbs) { if (x.ifindex === devIndex && x.ip) put('fdb', { kind: 'neigh', ...x }); await tick(); }
  return state;
}

/** Ours: main-table routes tagged with our protocol, and every main-table route on our device. */
export function ownsRoute(r: Route, devIndex: number | undefined): boolean {
  if ((r.table ?? MAIN_TABLE) !== MAIN_TABLE) return false;
  return r.protocol === RTPROT_TWILL || (devIndex !== undefined && r.ifindex === devIndex);
}

/** Classifies a kernel object from a notification as one of our entry kinds (or undefined). */
export function ownedEntry(o: NlObject, devIndex: number | undefined): Entry | undefined {
  let kind: EntryKind | undefined;
  switch (o.kind) {
    case 'route':
      if (o.family === 4 && ownsRoute(o, devIndex)) kind = 'route';
      break;
    case 'nexthop':
      if (o.protocol === RTPROT_TWILL) kind = 'nexthop';
      break;
    case 'addr':
      if (o.ifindex === devIndex && o.family === 4) kind = 'addr';
      break;
    case 'neigh':
      if (o.ifindex === devIndex && o.ip) kind = o.family === 'bridge' ? 'fdb' : o.family === 4 ? 'arp' : undefined;
      break;
    default:
      break;
  }
  if (!kind) return undefined;
  const key = entryKey(kind, o);
  return { kind, key, object: o };
}

/**
 * The entry kind a NOT-owned object would have if it carried the key of one of ours: a
 * main-table IPv4 route (keyed by destination) or a nexthop (keyed by id). ownedEntry() said no,
 * so such an object under one of our keys has replaced ours (the reconciler repairs it).
 */
export function foreignKind(o: NlObject): 'route' | 'nexthop' | undefined {
  if (o.kind === 'route') return o.family === 4 && (o.table ?? MAIN_TABLE) === MAIN_TABLE ? 'route' : undefined;
  return o.kind === 'nexthop' ? 'nexthop' : undefined;
}
