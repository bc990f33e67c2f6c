import { describe, expect, it } from 'vitest';
import { MemorySubnetManager } from '../../../lib/subnet/memory.js';
import type { Lease, LeaseAttrs, LeaseEvent, SubnetManager } from '../../../lib/subnet/types.js';
import type { Clock } from '../../../lib/retry.js';
import { isTwillError } from '../../../lib/errors.js';

class ManualClock implements Clock {
  t = 1_000_000;
  now(): number { return this.t; }
  sleep(): Promise<void> { return Promise.resolve(); }
  advance(ms: number): void { this.t += ms; }
}

const attrs = (ip: string, mac = '0a:00:00:00:00:01'): LeaseAttrs => ({ publicIP: ip, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac }, backendV6Data: null });
const CONF = '{"Network":"10.250.0.0/16","SubnetMin":"10.250.1.0","SubnetMax":"10.250.4.0"}';
const sig = () => new AbortController().signal;

/** Collects watch events in the background. */
function watch(m: SubnetManager) {
  const ac = new AbortController();
  const events: LeaseEvent[] = [];
  const done = (async () => { for await (const ev of m.watchLeases(ac.signal)) events.push(ev); })();
  return {
    events,
    async until(pred: (evs: LeaseEvent[]) => boolean): Promise<void> {
      for (let i = 0; i < 100 && !pred(events); i++) await new Promise((r) => setImmediate(r));
      expect(pred(events)).toBe(true);
    },
    async stop() { ac.abort(); await done; },
  };
}

describe('MemorySubnetManager', () => {
  it('conforms to SubnetManager', () => {
    const m = new MemorySubnetManager() satisfies SubnetManager;
    expect(m.name).toBe('memory');
  });

  it('reports a missing and an invalid config with the right codes', async () => {
    const m = new MemorySubnetManager();
    await expect(m.getNetworkConfig(sig())).rejects.toSatisfy((e) => isTwillError(e, 'CONFIG_MISSING'));
    m.setConfig('{"Network":"10.0.0.0"}');
    await expect(m.getNetworkConfig(sig())).rejects.toThrow('Network: "10.0.0.0" is invalid');
    m.setConfig(CONF);
    expect((await m.getNetworkConfig(sig())).subnetMax).toBe('10.250.4.0');
  });

  it('acquires, reuses by public IP, honours the previous subnet and expires', async () => {
    const clock = new ManualClock();
    const m = new MemorySubnetManager({ config: CONF, clock, leaseTtlMs: 60_000 });
    const a = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: '10.250.3.0/24', signal: sig() });
    expect(a).toMatchObject({ subnet: '10.250.3.0/24', key: '/twill.io/network/subnets/10.250.3.0-24', expiration: clock.t + 60_000 });
    expect(a.leaseId).toBeDefined();
    // restart with a new MAC: same key and subnet, attributes updated
    const again = await m.acquireLease(attrs('192.0.2.1', '0a:00:00:00:00:02'), { signal: sig() });
    expect(again.key).toBe(a.key);
    expect(again.attrs.backendData.VtepMAC).toBe('0a:00:00:00:00:02');
    // renew pushes the expiration
    clock.advance(30_000);
    expect((await m.renewLease(again, sig())).expiration).toBe(clock.t + 60_000);
    // expiry: renew fails with LEASE_LOST, re-acquire with the previous subnet gets it back
    clock.advance(61_000);
    expect(m.expireDue().map((l) => l.subnet)).toEqual(['10.250.3.0/24']);
    await expect(m.renewLease(again, sig())).rejects.toSatisfy((e) => isTwillError(e, 'LEASE_LOST'));
    const back = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: again.subnet, signal: sig() });
    expect(back.subnet).toBe('10.250.3.0/24');
  });

  it('LEASE_LOST when another node took the subnet; re-acquire yields a different subnet', async () => {
    const clock = new ManualClock();
    const m = new MemorySubnetManager({ config: CONF, clock });
    const mine = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: '10.250.2.0/24', signal: sig() });
    m.removeLease(mine.key);
    m.putLease({ subnet: '10.250.2.0/24', attrs: attrs('192.0.2.9') });
    await expect(m.renewLease(mine, sig())).rejects.toThrow(/lease for 10\.250\.2\.0\/24 lost/);
    const next = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: mine.subnet, signal: sig() });
    expect(next.subnet).not.toBe('10.250.2.0/24');
  });

  it('reservations: kept by their owner without expiry, never taken by others', async () => {
    const m = new MemorySubnetManager({ config: CONF, random: () => 0 });
    m.putLease({ subnet: '10.250.1.0/24', attrs: attrs('192.0.2.7'), reservation: true });
    const other = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: '10.250.1.0/24', signal: sig() });
    expect(other.subnet).not.toBe('10.250.1.0/24');
    const owner = await m.acquireLease(attrs('192.0.2.7'), { signal: sig() });
    expect(owner).toMatchObject({ subnet: '10.250.1.0/24', expiration: null });
    expect(owner.leaseId).toBeUndefined();
    expect(await m.renewLease(owner, sig())).toMatchObject({ subnet: '10.250.1.0/24', expiration: null });
    await m.releaseLease(owner, sig()); // a reservation is not ours to delete
    expect(m.leases().map((l) => l.subnet)).toContain('10.250.1.0/24');
  });

  it('SUBNETS_EXHAUSTED when the range is full', async () => {
    const m = new MemorySubnetManager({ config: CONF });
    for (let i = 0; i < 4; i++) await m.acquireLease(attrs(`192.0.2.${i + 1}`), { signal: sig() });
    await expect(m.acquireLease(attrs('192.0.2.99'), { signal: sig() })).rejects.toThrow(/out of subnets: .* all 4 subnets in the range are taken/);
    expect(new Set(m.leases().map((l) => l.subnet)).size).toBe(4);
  });

  it('watch: snapshot, added, removed, invalid, expiry and relist', async () => {
    const clock = new ManualClock();
    const m = new MemorySubnetManager({ config: CONF, clock, leaseTtlMs: 10_000 });
    const peer = m.putLease({ subnet: '10.250.2.0/24', attrs: attrs('192.0.2.2') });
    m.putRaw('10.250.4.0-24', '{not json');
    const w = watch(m);
    await w.until((e) => e.length >= 1);
    expect(w.events[0]).toEqual({ type: 'snapshot', leases: [peer], invalid: [{ key: '/twill.io/network/subnets/10.250.4.0-24', reason: expect.stringContaining('JSON') }] });
    expect(peer.created, 'a create counter, as etcd\'s create revision').toBe(1);
    const mine = await m.acquireLease(attrs('192.0.2.1'), { signal: sig() });
    await w.until((e) => e.some((x) => x.type === 'added' && x.lease.key === mine.key));
    // a valid lease overwritten with garbage → removed + invalid
    m.putRaw('10.250.2.0-24', '[]');
    await w.until((e) => e.some((x) => x.type === 'removed' && x.lease.key === peer.key));
    expect(w.events.at(-1)).toMatchObject({ type: 'invalid', key: peer.key, reason: expect.stringContaining('JSON object') });
    // the undecodable key deleted → 'deleted' (its verdict is forgotten)
    m.removeLease('/twill.io/network/subnets/10.250.4.0-24');
    await w.until((e) => e.some((x) => x.type === 'deleted'));
    expect(w.events.at(-1)).toEqual({ type: 'deleted', key: '/twill.io/network/subnets/10.250.4.0-24' });
    // expiry
    clock.advance(10_001);
    const gone = m.expireDue();
    expect(gone.map((l: Lease) => l.key)).toEqual([mine.key]);
    await w.until((e) => e.some((x) => x.type === 'removed' && x.lease.key === mine.key));
    // relist → a fresh snapshot (nothing left: the garbage expired with its lease too)
    m.relist();
    await w.until((e) => e.filter((x) => x.type === 'snapshot').length === 2);
    expect(w.events.filter((x) => x.type === 'snapshot').at(-1)).toEqual({ type: 'snapshot', leases: [], invalid: [] });
    await w.stop();
    expect(m.watcherCount).toBe(0);
  });

  it('failNext injects failures once per call; abort is honoured', async () => {
    const m = new MemorySubnetManager({ config: CONF });
    m.failNext('acquireLease');
    await expect(m.acquireLease(attrs('192.0.2.1'), { signal: sig() })).rejects.toSatisfy((e) => isTwillError(e, 'ETCD'));
    const l = await m.acquireLease(attrs('192.0.2.1'), { signal: sig() });
    m.failNext('renewLease', new Error('boom'));
    await expect(m.renewLease(l, sig())).rejects.toThrow('boom');
    const ac = new AbortController();
    ac.abort();
    await expect(m.getNetworkConfig(ac.signal)).rejects.toSatisfy((e) => isTwillError(e, 'ABORTED'));
  });

  it('close ends open watches', async () => {
    const m = new MemorySubnetManager({ config: CONF });
    const w = watch(m);
    await w.until((e) => e.length === 1);
    await m.close();
    await w.stop();
    expect(m.watcherCount).toBe(0);
  });
});
