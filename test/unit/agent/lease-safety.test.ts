// Lease safety on the memory kernel + memory store (issue 14): a conflict between peer leases is
// won by the lease that was there first and never disturbs the incumbent's entries; a peer lease
// claiming this node's own VTEP MAC, public IP or subnet is never programmed; every invalid
// verdict is kept per store key, so a deleted or corrected key leaves the count, /status and the
// log's dedupe at once.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Writable } from 'node:stream';
import { RTPROT_TWILL } from '../../../lib/netlink/types.js';
import type { MemoryKernel } from '../../../lib/netlink/memory.js';
import { createLogger } from '../../../lib/log.js';
import { deriveVtepMac } from '../../../agent/backend/vxlan/device.js';
import type { Daemon } from '../../../agent/daemon.js';
import { NETCONF, peerAttrs, start, stopRigs, memoryStore } from './daemon-fixture.js';

afterEach(stopRigs);

const OWN_IP = '192.0.2.1';                        // the fixture's uplink address
const OWN_MAC = deriveVtepMac(OWN_IP, 1);
const WAIT = { timeout: 10_000, interval: 10 };

/** Everything twill owns in the kernel, as comparable text. */
async function kernelText(k: MemoryKernel): Promise<string[]> {
  const dev = (await k.listLinks()).find((l) => l.name === 'twill.1');
  return [
    ...(await k.listRoutes({ protocol: RTPROT_TWILL })).map((r) => `route ${JSON.stringify(r)}`),
    ...(await k.listNexthops()).map((n) => `nexthop ${JSON.stringify(n)}`),
    ...(await k.listNeighs({ family: 4, ifindex: dev?.index })).map((n) => `arp ${JSON.stringify(n)}`),
    ...(await k.listNeighs({ family: 'bridge', ifindex: dev?.index })).map((n) => `fdb ${JSON.stringify(n)}`),
  ].sort();
}

async function fdbFor(k: MemoryKernel, mac: string): Promise<string[]> {
  const dev = (await k.listLinks()).find((l) => l.name === 'twill.1');
  return (await k.listNeighs({ family: 'bridge', ifindex: dev?.index })).filter((n) => n.mac === mac && n.ip).map((n) => n.ip!);
}

const hasRoute = async (k: MemoryKernel, subnet: string) => (await k.listRoutes({ protocol: RTPROT_TWILL })).some((r) => r.dst === subnet);
const states = (d: Daemon) => Object.fromEntries(d.snapshot().peers.map((p) => [p.subnet || p.key, p.state]));

function logCapture() {
  const lines: { level: number; msg: string; key?: string; reason?: string }[] = [];
  const dest = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(JSON.parse(chunk.toString()) as typeof lines[number]); cb(); } });
  return { lines, logger: createLogger('info', 'twill', dest), ignoring: () => lines.filter((l) => l.msg.startsWith('ignoring peer lease')) };
}

describe('Lease conflicts: the incumbent wins', () => {
  it('a duplicate VTEP MAC arriving later is ignored, logged once with both keys, counted, and the incumbent is not touched', async () => {
    const sm = memoryStore({ config: NETCONF });
    const incumbent = sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const log = logCapture();
    const { k, d } = await start({ sm, logger: log.logger });
    await vi.waitFor(async () => expect(await hasRoute(k, '10.244.5.0/24')).toBe(true), WAIT);
    const before = await kernelText(k);
    const calls = k.applyCalls;

    // A newcomer: a free subnet, another public IP, the incumbent's MAC.
    const newcomer = sm.putLease({ subnet: '10.244.6.0/24', attrs: { ...peerAttrs(6), backendData: { VNI: 1, VtepMAC: peerAttrs(5).backendData.VtepMAC } } });
    await vi.waitFor(() => expect(states(d)['10.244.6.0/24']).toBe('invalid'), WAIT);
    expect(states(d)['10.244.5.0/24']).toBe('programmed');
    expect(await kernelText(k), 'the incumbent keeps every entry exactly as it was').toEqual(before);
    expect(k.applyCalls, 'not a single kernel change').toBe(calls);
    expect(await fdbFor(k, peerAttrs(5).backendData.VtepMAC)).toEqual(['192.0.2.5']);
    const reason = d.snapshot().peers.find((p) => p.key === newcomer.key)?.reason;
    expect(reason).toContain(incumbent.key);
    expect(reason).toContain('was there first');
    const logged = log.ignoring().filter((l) => l.key === newcomer.key);
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ reason: 'duplicate-mac' });
    expect(logged[0]!.msg).toContain(incumbent.key);

    // The same conflict written again is not logged again.
    sm.putLease({ subnet: '10.244.7.0/24', attrs: peerAttrs(7) });   // a marker: once it is programmed, the rewrite below was seen
    sm.putRaw('10.244.6.0-24', JSON.stringify({ PublicIP: '192.0.2.6', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: peerAttrs(5).backendData.VtepMAC.toUpperCase() } }));
    sm.putLease({ subnet: '10.244.8.0/24', attrs: peerAttrs(8) });
    await vi.waitFor(async () => expect(await hasRoute(k, '10.244.8.0/24')).toBe(true), WAIT);
    expect(log.ignoring().filter((l) => l.key === newcomer.key)).toHaveLength(1);

    // The incumbent leaves: the loser takes over on the next reconcile.
    sm.removeLease(incumbent.key);
    await vi.waitFor(async () => expect(await fdbFor(k, peerAttrs(5).backendData.VtepMAC)).toEqual(['192.0.2.6']), WAIT);
    await vi.waitFor(async () => expect(await hasRoute(k, '10.244.6.0/24')).toBe(true), WAIT);
    expect(await hasRoute(k, '10.244.5.0/24')).toBe(false);
    expect(states(d)['10.244.6.0/24']).toBe('programmed');
  });

  it('after a restart, the same lease wins (the store keeps the order, not the agent)', async () => {
    const sm = memoryStore({ config: NETCONF });
    const shared = { VNI: 1, VtepMAC: '02:00:00:00:00:aa' };
    // Written in this order: .9 first, so it is the incumbent, though its key sorts last.
    sm.putLease({ subnet: '10.244.9.0/24', attrs: { ...peerAttrs(9), backendData: shared } });
    sm.putLease({ subnet: '10.244.3.0/24', attrs: { ...peerAttrs(3), backendData: shared } });
    for (let round = 0; round < 2; round++) {
      const r = await start({ sm });
      await vi.waitFor(async () => expect(await fdbFor(r.k, shared.VtepMAC)).toEqual(['192.0.2.9']), WAIT);
      expect(states(r.d)).toMatchObject({ '10.244.9.0/24': 'programmed', '10.244.3.0/24': 'invalid' });
      expect(await hasRoute(r.k, '10.244.3.0/24')).toBe(false);
      await r.stop();
    }
  });

  it("never programs a peer lease claiming this node's own VTEP MAC, public IP or subnet", async () => {
    const sm = memoryStore({ config: NETCONF });
    const { k, d } = await start({ sm });
    const own = d.status.lease.subnet!;
    sm.putLease({ subnet: '10.244.20.0/24', attrs: { ...peerAttrs(20), backendData: { VNI: 1, VtepMAC: OWN_MAC } } });
    sm.putLease({ subnet: '10.244.21.0/24', attrs: { ...peerAttrs(21), publicIP: OWN_IP } });
    // Our subnet under another key (a dual-stack key names the same IPv4 subnet).
    const twin = sm.putLease({ subnet: own, ipv6Subnet: 'fd00:1::/64', attrs: peerAttrs(22) });
    sm.putLease({ subnet: '10.244.23.0/24', attrs: peerAttrs(23) });        // a valid marker
    await vi.waitFor(async () => expect(await hasRoute(k, '10.244.23.0/24')).toBe(true), WAIT);
    const peers = d.snapshot().peers;
    const reasonOf = (pred: (p: typeof peers[number]) => boolean) => peers.find(pred)?.reason;
    expect(reasonOf((p) => p.subnet === '10.244.20.0/24')).toBe(`VtepMAC ${OWN_MAC} is this node's own VTEP MAC`);
    expect(reasonOf((p) => p.subnet === '10.244.21.0/24')).toBe(`PublicIP ${OWN_IP} is this node's own public IP`);
    expect(reasonOf((p) => p.key === twin.key)).toBe(`subnet ${own} is our own subnet`);
    expect(await fdbFor(k, OWN_MAC), 'no FDB entry for our own MAC').toEqual([]);
    const fdb = (await kernelText(k)).filter((l) => l.startsWith('fdb'));
    expect(fdb.some((l) => l.includes(`"ip":"${OWN_IP}"`)), 'no FDB entry pointing at our own IP').toBe(false);
    expect(await hasRoute(k, '10.244.20.0/24')).toBe(false);
    expect(await hasRoute(k, '10.244.21.0/24')).toBe(false);
    expect(d.status.lease.subnet, 'our own lease is unaffected').toBe(own);
  });
});

describe('Invalid-lease accounting is keyed by store key', () => {
  it('undecodable, malformed-key, failed-check and conflicting entries all leave the count, /status and the log dedupe when deleted', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const log = logCapture();
    const { k, d } = await start({ sm, logger: log.logger });
    await vi.waitFor(async () => expect(await hasRoute(k, '10.244.5.0/24')).toBe(true), WAIT);
    // twill_peers{state="invalid"}, as /metrics serves it.
    const invalidCount = () => d.metrics.text().then((t) => Number(/^twill_peers\{state="invalid"\} (\d+)$/m.exec(t)?.[1]));
    const base = { invalid: await invalidCount(), peers: d.snapshot().peers.map((p) => p.key) };
    expect(base.invalid).toBe(0);

    const dir = '/twill.io/network/subnets/';
    const bad = {
      notJson: `${dir}10.244.30.0-24`, badKey: `${dir}garbage`, loopback: `${dir}10.244.31.0-24`, dupMac: `${dir}10.244.32.0-24`,
    };
    sm.putRaw('10.244.30.0-24', 'not json');
    sm.putRaw('garbage', JSON.stringify({ PublicIP: '192.0.2.40', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '02:00:00:00:00:40' } }));
    sm.putLease({ subnet: '10.244.31.0/24', attrs: { ...peerAttrs(31), publicIP: '127.0.0.1' } });
    sm.putLease({ subnet: '10.244.32.0/24', attrs: { ...peerAttrs(32), backendData: peerAttrs(5).backendData } });
    await vi.waitFor(async () => expect(await invalidCount()).toBe(4), WAIT);
    expect(d.snapshot().peers.filter((p) => p.state === 'invalid').map((p) => p.key).sort()).toEqual(Object.values(bad).sort());
    expect(log.ignoring().map((l) => l.key).sort()).toEqual(Object.values(bad).sort());

    for (const key of Object.values(bad)) sm.removeLease(key);
    await vi.waitFor(async () => expect(await invalidCount()).toBe(base.invalid), WAIT);
    expect(d.snapshot().peers.map((p) => p.key)).toEqual(base.peers);
    expect(states(d)['10.244.5.0/24']).toBe('programmed');

    // Written again, each is a new problem of its key: logged again (the dedupe forgot them).
    sm.putRaw('10.244.30.0-24', 'not json');
    sm.putRaw('garbage', '{}');
    await vi.waitFor(async () => expect(await invalidCount()).toBe(2), WAIT);
    expect(log.ignoring().filter((l) => l.key === bad.notJson)).toHaveLength(2);
    expect(log.ignoring().filter((l) => l.key === bad.badKey)).toHaveLength(2);

    // Corrected in place: the undecodable key now holds a valid lease.
    sm.putLease({ subnet: '10.244.30.0/24', attrs: peerAttrs(30) });
    sm.removeLease(bad.badKey);
    await vi.waitFor(async () => expect(await invalidCount()).toBe(0), WAIT);
    await vi.waitFor(async () => expect(await hasRoute(k, '10.244.30.0/24')).toBe(true), WAIT);
  });

  it('a relist (watch restart) carries the undecodable entries in the snapshot: counted once, logged once, dropped when gone', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putRaw('10.244.30.0-24', 'not json');
    const log = logCapture();
    const { d } = await start({ sm, logger: log.logger });
    const count = (state: string) => d.snapshot().peers.filter((p) => p.state === state).length;
    await vi.waitFor(() => expect(count('invalid')).toBe(1), WAIT);
    sm.relist();
    sm.relist();
    sm.putLease({ subnet: '10.244.6.0/24', attrs: peerAttrs(6) });   // a marker after the relists
    await vi.waitFor(() => expect(count('programmed')).toBe(1), WAIT);
    expect(count('invalid')).toBe(1);
    expect(log.ignoring()).toHaveLength(1);
    // Deleted while the watch is down: the next relist's snapshot no longer has it.
    sm.removeLease('/twill.io/network/subnets/10.244.30.0-24');
    sm.relist();
    await vi.waitFor(() => expect(count('invalid')).toBe(0), WAIT);
  });
});
