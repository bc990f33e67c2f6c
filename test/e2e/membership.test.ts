// etcd mode: peers joining, leaving (agent stopped + lease deleted), expiring (etcd TTL),
// invalid leases ignored, stale entries removed at start, nodes coming back with their subnets.
// Plus the default lease TTL: an agent's own subnet key hangs on a 24 h etcd lease.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../util/root.js';
import { membershipSuite } from '../harness/suites/membership.js';
import { startCluster, type Cluster } from '../harness/cluster.js';
import { subnetKey } from '../harness/store.js';
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
