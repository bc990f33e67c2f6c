// etcd mode: peers joining, leaving (agent stopped + lease deleted), expiring (etcd TTL),
// invalid leases ignored, stale entries removed at start, nodes coming back with their subnets.
// Plus the default lease TTL: an agent's own subnet key hangs on a 24 h etcd lease.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../util/root.js';
import { membershipSuite } from '../harness/suites/membership.js';
import { startCluster, type Cluster } from '../harness/cluster.js';
import { subnetKey } from '../harness/store.js';
import { waitFor } from '../harness/exec.js';
import { waitPeerEntries } from '../harness/checks.js';
import type { EtcdStore } from '../harness/store-etcd.js';

membershipSuite('etcd');

describeRoot('e2e etcd: the lease an agent holds', () => {
  const DEFAULT_TTL_SEC = 86_400;
  let c: Cluster;
  let grantedBefore = 0;     // the agent granted its lease after this (ms since epoch)
  beforeAll(async () => {
    grantedBefore = Date.now();
    c = await startCluster({ nodes: 1, podsPerNode: 0 });
  });
  afterAll(async () => { await c?.destroy(); });

  it('has a 24 h TTL by default (86400 s granted, the rest of it left)', async () => {
    const store = c.store as EtcdStore;
    const subnet = c.node(0).subnet!;
    const key = `${store.prefix}/subnets/${subnetKey(subnet)}`;
    // The etcd lease the key is attached to. IDs are int64: read them as text, not as JS numbers.
    const raw = await store.etcd.ctl(['get', key, '-w', 'json']);
    const id = /"lease":\s*(\d+)/.exec(raw)?.[1];
    expect(id, `${key} must be attached to an etcd lease: ${raw}`).toBeDefined();
    const ttl = await store.etcd.ctl(['lease', 'timetolive', BigInt(id!).toString(16)]);
    const m = /granted with TTL\((\d+)s\), remaining\((-?\d+)s\)/.exec(ttl);
    expect(m, `etcdctl lease timetolive: ${ttl}`).not.toBeNull();
    const granted = Number(m![1]);
    const remaining = Number(m![2]);
    const elapsedSec = Math.ceil((Date.now() - grantedBefore) / 1000);
    expect(granted, 'granted TTL').toBe(DEFAULT_TTL_SEC);
    expect(remaining, `remaining TTL (lease granted at most ${elapsedSec} s ago)`).toBeGreaterThanOrEqual(DEFAULT_TTL_SEC - elapsedSec - 1);
    expect(remaining).toBeLessThanOrEqual(DEFAULT_TTL_SEC);
    // The agent reports the same expiry (ms since epoch) in /status.
    const exp = (await c.status(0)).lease.expiration!;
    expect(Math.abs(exp - (Date.now() + remaining * 1000)), '/status lease.expiration ≈ now + remaining TTL').toBeLessThan(5000);
  });
});

describeRoot('e2e etcd: an agent whose own lease vanishes', () => {
  let c: Cluster;
  beforeAll(async () => { c = await startCluster({ nodes: 2, podsPerNode: 0 }); });
  afterAll(async () => { await c?.destroy(); });

  it('takes its subnet again when it is free, keeping the device and every peer entry', async () => {
    const subnet = c.node(0).subnet!;
    expect(await waitPeerEntries(c, 10_000)).toEqual([]);   // both nodes ready does not mean each has the other yet
    const before = await c.kernelState(0);
    await c.store.deleteLease(subnet);
    await waitFor('the lease back in etcd', async () => (await c.store.leases()).some((l) => l.subnet === subnet && l.publicIP === c.node(0).underlayIP), 10_000, 100);
    const log = () => c.logTail(0, 20);
    expect(c.node(0).agent.running, log()).toBe(true);
    const after = await c.kernelState(0);
    expect(after.device?.ifindex, `device not recreated; ${log()}`).toBe(before.device?.ifindex);
    expect(after.routes.map((r) => r.dst).sort(), log()).toEqual(before.routes.map((r) => r.dst).sort());
    expect((await c.status(0)).lease.subnet, log()).toBe(subnet);
  });

  it('exits non-zero, naming the other node, when another node now holds its subnet (its key overwritten)', async () => {
    const subnet = c.node(1).subnet!;
    const exited = c.node(1).agent.exited!;
    await c.store.putLease({ subnet, publicIP: '10.213.0.99', vtepMAC: '02:cc:00:00:00:99' });
    const info = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 15_000))]);
    expect(info, `agent still running; log:\n${c.logTail(1, 60)}`).toBeDefined();
    expect(info!.code, c.logTail(1, 30)).not.toBe(0);
    expect(c.logTail(1, 30)).toMatch(/10\.213\.0\.99/);
  });
});
