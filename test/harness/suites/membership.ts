// Peers come and go: a lease written to the store is programmed everywhere; a node that leaves
// (agent stopped, lease deleted) and a lease that expires disappear from every peer; invalid
// peer leases are never programmed; an agent that was down when a peer left removes the stale
// entries at start; a node that comes back gets its subnet again and reappears everywhere.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStore } from './describe.js';
import { checkPeerEntries, waitPeerEntries } from '../checks.js';
import { startCluster, type Cluster } from '../cluster.js';
import { waitFor } from '../exec.js';
import { nthAddress } from '../ipv4.js';
import type { StoreMode, StoredLease, SyntheticLease } from '../store.js';

const CONVERGE_MS = 10_000;

/** Routes / ARP / FDB for `subnet` on `node`, as "kind:entry" strings (empty = none). */
async function entriesFor(c: Cluster, node: number, subnet: string): Promise<string[]> {
  const k = await c.kernelState(node);
  const gw = nthAddress(subnet, 0);
  return [
    ...k.routes.filter((r) => r.dst === subnet).map((r) => `route:${r.dst}`),
    ...k.nexthops.filter((n) => n.gateway === gw).map((n) => `nexthop:${n.gateway}`),
    ...k.arp.filter((a) => a.dst === gw).map((a) => `arp:${a.dst}`),
  ];
}

export function membershipSuite(mode: StoreMode): void {
  describeStore(mode, `e2e ${mode}: peers joining, leaving, expiring, invalid`, () => {
    let c: Cluster;
    beforeAll(async () => { c = await startCluster({ nodes: 3, mode, podsPerNode: 0 }); });
    afterAll(async () => { await c?.destroy(); });

    it('programs a peer lease written to the store on every node', async () => {
      await c.store.putLease({ subnet: '10.244.200.0/24', publicIP: '10.213.0.200', vtepMAC: '02:aa:00:00:02:00' });
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
      for (const n of c.nodes) expect(await entriesFor(c, n.index, '10.244.200.0/24'), n.name).toHaveLength(3);
      await c.store.deleteLease('10.244.200.0/24');
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
      for (const n of c.nodes) expect(await entriesFor(c, n.index, '10.244.200.0/24'), n.name).toEqual([]);
    });

    if (mode === 'etcd') {
      it('removes a peer whose lease expires (etcd TTL) from every node', async () => {
        const subnet = '10.244.201.0/24';
        await c.store.putLease({ subnet, publicIP: '10.213.0.201', vtepMAC: '02:aa:00:00:02:01', ttlSec: 3 });
        expect(await waitPeerEntries(c, 2500)).toEqual([]);     // programmed before it expires
        for (const n of c.nodes) expect(await entriesFor(c, n.index, subnet), `${n.name} before expiry`).toHaveLength(3);
        // etcd's lessor expires it ~TTL after the grant (checked every 500 ms).
        await waitFor(`etcd to expire ${subnet}`, async () => !(await c.store.leases()).some((l) => l.subnet === subnet), 10_000, 100);
        expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
        for (const n of c.nodes) expect(await entriesFor(c, n.index, subnet), `${n.name} after expiry`).toEqual([]);
      });
    }

    it('never programs invalid peer leases, and reports them as invalid', async () => {
      const bad: SyntheticLease[] = [
        { subnet: '10.99.0.0/24', publicIP: '10.213.0.210', vtepMAC: '02:bb:00:00:00:01' },        // outside Network
        { subnet: '10.244.210.0/25', publicIP: '10.213.0.211', vtepMAC: '02:bb:00:00:00:02' },     // wrong length
        { subnet: '10.244.211.0/24', publicIP: '224.0.0.9', vtepMAC: '02:bb:00:00:00:03' },        // multicast public IP
        { subnet: '10.244.212.0/24', publicIP: '10.213.0.213', vtepMAC: '01:00:5e:00:00:04' },     // multicast MAC
        { subnet: '10.244.213.0/24', publicIP: '10.213.0.214', vtepMAC: 'zz:00' },                  // malformed MAC
        { subnet: '10.244.214.0/24', publicIP: '10.213.0.215', vtepMAC: '02:bb:00:00:00:06', backendType: 'udp' }, // unknown backend
      ];
      for (const l of bad) await c.store.putLease(l);
      const sentinel = { subnet: '10.244.220.0/24', publicIP: '10.213.0.220', vtepMAC: '02:bb:00:00:00:20' };
      await c.store.putLease(sentinel);
      try {
        const isValid = (l: StoredLease): boolean => !bad.some((b) => b.subnet === l.subnet);
        // Once the sentinel (written last) is programmed, every invalid lease has been seen.
        expect(await waitPeerEntries(c, CONVERGE_MS, undefined, isValid)).toEqual([]);
        for (const n of c.nodes) {
          const k = await c.kernelState(n.index);
          for (const b of bad) {
            const gw = nthAddress(b.subnet.replace('/25', '/24'), 0);
            expect(k.routes.filter((r) => r.dst.startsWith(gw)).map((r) => r.dst), `${n.name}: route for invalid ${b.subnet}`).toEqual([]);
            expect(k.fdb.filter((f) => f.mac === b.vtepMAC.toLowerCase()), `${n.name}: FDB for invalid ${b.subnet}`).toEqual([]);
          }
          // Reported to a person: each one is listed in /status as invalid, with a reason.
          const s = await c.status(n.index);
          for (const b of bad) {
            const key = b.subnet.replace('/', '-');
            const p = s.peers.find((x) => x.key.endsWith(key) || x.key.endsWith(`peer-${b.subnet.replace(/[./]/g, '-')}`));
            expect(p?.state, `${n.name}: ${b.subnet} (${JSON.stringify(b)}) in /status peers ${JSON.stringify(s.peers.map((x) => [x.key, x.state]))}`).toBe('invalid');
            expect(p?.reason, `${n.name}: invalid ${b.subnet} without a reason`).toBeTruthy();
          }
        }
      } finally {
        for (const l of [...bad, sentinel]) await c.store.deleteLease(l.subnet);
      }
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
    });

    it('removes a node that leaves (agent stopped, lease deleted) from every peer; SIGTERM leaves its own datapath', async () => {
      const gone = c.node(2);
      const before = await c.kernelState(gone.index);
      const exit = await c.stopAgent(gone.index, 'SIGTERM');
      expect(exit?.code, `SIGTERM exit; log:\n${c.logTail(gone.index)}`).toBe(0);
      const after = await c.kernelState(gone.index);
      expect(after.device?.ifindex, 'SIGTERM must not touch the kernel (device)').toBe(before.device?.ifindex);
      expect(after.routes, 'SIGTERM must not touch the kernel (routes)').toEqual(before.routes);
      await c.store.deleteLease(gone.subnet!);
      expect(await waitPeerEntries(c, CONVERGE_MS, [0, 1])).toEqual([]);
      for (const i of [0, 1]) expect(await entriesFor(c, i, gone.subnet!), c.node(i).name).toEqual([]);
    });

    it('at start, removes entries of peers that left while the agent was down', async () => {
      const left = c.node(1);
      await c.stopAgent(0);
      expect(await entriesFor(c, 0, left.subnet!)).toHaveLength(3);
      await c.stopAgent(1);
      await c.store.deleteLease(left.subnet!);
      const subnetBefore = c.node(0).subnet;
      await c.startAgent(0);
      await c.waitReady(30_000, [0]);
      expect(c.node(0).subnet, 'node0 keeps its subnet across a restart').toBe(subnetBefore);
      expect(await entriesFor(c, 0, left.subnet!), 'stale entries of a peer that left while node0 was down').toEqual([]);
      expect(await checkPeerEntries(c, [0])).toEqual([]);
    });

    it('lets nodes that left come back with their subnets, reprogrammed on every peer', async () => {
      const subnets = c.nodes.map((n) => n.subnet);
      // kube: the kubelet registers the Node again (etcd: nothing to do).
      for (const i of [1, 2]) await c.store.prepareNode({ index: i, name: c.node(i).name, underlayIP: c.node(i).underlayIP });
      await Promise.all([c.startAgent(1), c.startAgent(2)]);
      await c.waitReady(30_000);
      expect(c.nodes.map((n) => n.subnet)).toEqual(subnets);
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
    });
  });
}
