import { describe, expect, it } from 'vitest';
import { diffState } from '../../../agent/reconcile/diff.js';
import { peerEntries, localEntries, type DeviceInfo } from '../../../agent/backend/vxlan/desired.js';
import type { Entry, KernelState } from '../../../agent/reconcile/state.js';
import { parsePrefix } from '../../../lib/ip/prefix.js';

const dev: DeviceInfo = { index: 7, name: 'twill.1', mtu: 1450, vni: 1, nexthops: true };
const peer = (n: number, mac = `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`) =>
  ({ key: `10.244.${n}.0-24`, subnet: parsePrefix(`10.244.${n}.0/24`), publicIP: `192.0.2.${n}`, vtepMAC: mac });
const state = (...entries: ReturnType<typeof peerEntries>[]): KernelState => new Map(entries.flat().map((e) => [e.key, e]));

describe('diffState', () => {
  it('writes ARP → FDB → nexthop → route, with replace semantics', () => {
    const plan = diffState(state(peerEntries(peer(1), dev)), new Map());
    expect(plan.steps.map((s) => s.entry.kind)).toEqual(['arp', 'fdb', 'nexthop', 'route']);
    expect(plan.steps.every((s) => s.change.verb === 'replace')).toBe(true);
    expect(plan.writes).toBe(4);
  });

  it('deletes in reverse order: route → nexthop → FDB → ARP', () => {
    const plan = diffState(new Map(), state(peerEntries(peer(1), dev)));
    expect(plan.steps.map((s) => `${s.change.verb}:${s.entry.kind}`)).toEqual(['delete:route', 'delete:nexthop', 'delete:fdb', 'delete:arp']);
  });

  it('is empty when desired equals observed', () => {
    const s = state(peerEntries(peer(1), dev), peerEntries(peer(2), dev), localEntries(parsePrefix('10.244.9.0/24'), dev));
    expect(diffState(s, new Map(s)).steps).toEqual([]);
  });

  it('replaces drifted entries (a peer changed its VTEP MAC)', () => {
    const plan = diffState(state(peerEntries(peer(1, '02:00:00:00:00:aa'), dev)), state(peerEntries(peer(1), dev)));
    const kinds = plan.steps.map((s) => `${s.change.verb}:${s.entry.kind}:${s.reason}`);
    expect(kinds).toContain('replace:arp:drifted');
    expect(kinds).toContain('delete:fdb:unwanted');   // FDB is keyed by MAC: old one goes
    expect(kinds).toContain('replace:fdb:missing');
    expect(kinds.indexOf('delete:fdb:unwanted')).toBeLessThan(kinds.indexOf('replace:arp:drifted'));
  });

  it('plans more steps of one kind than fit in a call\'s arguments (260k overflowed the stack)', () => {
    const n = 260_000;
    const many = new Map(Array.from({ length: n }, (_, i) => {
      const e = { key: `arp|7|10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, kind: 'arp', object: { kind: 'neigh' } };
      return [e.key, e] as [string, Entry];
    }));
    const plan = diffState(many, new Map());
    expect(plan.writes).toBe(n);
    expect(plan.steps.length).toBe(n);
    expect(diffState(new Map(), many).deletes).toBe(n);
  });

  it('limits the diff to the scope when given', () => {
    const desired = state(peerEntries(peer(1), dev), peerEntries(peer(2), dev));
    const scope = peerEntries(peer(2), dev).map((e) => e.key);
    const plan = diffState(desired, new Map(), scope);
    expect(plan.steps).toHaveLength(4);
    expect(plan.steps.every((s) => s.entry.source?.owner === '10.244.2.0-24')).toBe(true);
  });

  it('uses onlink gateway routes when the kernel has no nexthop objects', () => {
    const [, , route] = peerEntries(peer(3), { ...dev, nexthops: false });
    expect(route?.object).toMatchObject({ kind: 'route', dst: '10.244.3.0/24', gateway: '10.244.3.0', onlink: true, ifindex: 7, protocol: 116 });
  });

  it('routes peers on the underlay segment directly with DirectRouting', () => {
    const e = peerEntries(peer(4), { ...dev, direct: { ifindex: 2, prefix: parsePrefix('192.0.2.0/24') } });
    expect(e.map((x) => x.kind)).toEqual(['nexthop', 'route']);
    expect(e[0]?.object).toMatchObject({ gateway: '192.0.2.4', ifindex: 2, onlink: false });
  });
});

describe('ObservedState', () => {
  it('indexes routes by nexthop through set, replace and delete', async () => {
    const { ObservedState } = await import('../../../agent/reconcile/state.js');
    const o = new ObservedState(state(peerEntries(peer(1), dev), peerEntries(peer(2), dev)));
    const [, , nh1, r1] = peerEntries(peer(1), dev);
    const id = (nh1!.object as { id: number }).id;
    expect(o.routesVia(id)).toEqual([r1!.key]);
    o.delete(r1!.key);
    expect(o.routesVia(id)).toEqual([]);
    o.set(r1!.key, r1!);
    o.set(r1!.key, { ...r1!, object: { ...r1!.object, nhid: 99 } as NonNullable<typeof r1>["object"] });
    expect(o.routesVia(id)).toEqual([]);
    expect(o.routesVia(99)).toEqual([r1!.key]);
  });

  it('keeps every route that shares a nexthop (someone else routes through ours)', async () => {
    const { ObservedState } = await import('../../../agent/reconcile/state.js');
    const o = new ObservedState(state(peerEntries(peer(1), dev)));
    const [, , nh1, r1] = peerEntries(peer(1), dev);
    const id = (nh1!.object as { id: number }).id;
    const extra = { kind: 'route' as const, key: 'route|254|10.9.0.0/16', object: { ...r1!.object, dst: '10.9.0.0/16' } as NonNullable<typeof r1>['object'] };
    o.set(extra.key, extra);
    expect(o.routesVia(id).sort()).toEqual([extra.key, r1!.key].sort());
    o.delete(r1!.key);
    expect(o.routesVia(id)).toEqual([extra.key]);
    o.delete(extra.key);
    expect(o.routesVia(id)).toEqual([]);
  });
});
