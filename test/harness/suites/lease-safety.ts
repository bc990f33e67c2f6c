// Lease safety (issue 14), as an operator would try it: a lease reusing a healthy node's VTEP
// MAC (the incumbent keeps every packet; the same winner after every agent restarts; the
// newcomer takes over when the incumbent leaves), leases claiming a node's own MAC, public IP or
// subnet, undecodable / malformed / failing leases written then deleted (every count back to its
// earlier value), and readiness naming only the real cause when the store is down or the config
// is invalid. etcd: the winner is the key created first (create revision); kube: the Node created
// first (metadata.creationTimestamp, then the name).
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStore } from './describe.js';
import { checkPeerEntries, waitPeerEntries } from '../checks.js';
import { startCluster, type Cluster } from '../cluster.js';
import { sleep, waitFor } from '../exec.js';
import { httpGet } from '../http.js';
import { HEALTHZ_PORT } from '../agent.js';
import { encodeLease, subnetKey, type StoreMode, type StoredLease, type SyntheticLease } from '../store.js';
import type { EtcdStore } from '../store-etcd.js';

const CONVERGE_MS = 15_000;

/** Deletes a Node by name, whichever kube store the cluster runs (the fake API server's control
 *  channel, or kubectl against a real apiserver); deleteLease finds Nodes by podCIDR, which is
 *  ambiguous for a Node claiming another's podCIDR. */
async function deleteNode(store: unknown, name: string): Promise<void> {
  const s = store as { call?: (cmd: string, args: object) => Promise<unknown>; controlPlane?: { kubectl(args: string[]): Promise<unknown> } };
  if (typeof s.call === 'function') await s.call('deleteNode', { name });
  else if (s.controlPlane) await s.controlPlane.kubectl(['delete', 'node', name]);
  else throw new Error(`cannot delete Node ${name}: the kube store offers neither call() nor controlPlane.kubectl()`);
}
const NETCONF = { Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1 } };

export function leaseSafetySuite(mode: StoreMode): void {
  describeStore(mode, `e2e ${mode}: lease safety (conflicts, own claims, invalid-lease accounting, readiness reasons)`, () => {
    let c: Cluster;
    beforeAll(async () => { c = await startCluster({ nodes: 3, mode, netConf: NETCONF }); });
    afterAll(async () => { await c?.destroy(); });

    const leaseOf = async (i: number): Promise<StoredLease> => {
      const l = (await c.store.leases()).find((x) => x.publicIP === c.node(i).underlayIP);
      if (!l) throw new Error(`${c.node(i).name}: no stored lease carries ${c.node(i).underlayIP}`);
      return l;
    };
    /** The remote IPs node i's FDB holds for `mac`. */
    const fdbFor = async (i: number, mac: string) => (await c.kernelState(i)).fdb.filter((f) => f.mac === mac.toLowerCase() && f.dst).map((f) => f.dst!);
    /** The /status peer entry on node i for a stored key (etcd key, kube: the Node's name). */
    const peerOn = async (i: number, key: string) => (await c.status(i)).peers.find((p) => p.key === key);
    /** The store key a synthetic lease gets. */
    const keyOf = (l: SyntheticLease): string => mode === 'etcd' ? `${(c.store as EtcdStore).prefix}/subnets/${subnetKey(l.subnet)}` : `peer-${l.subnet.replace(/[./]/g, '-')}`;
    /** twill_peers{state="invalid"} as node i's /metrics serves it. */
    const invalidCount = async (i: number): Promise<number> => {
      const r = await httpGet(c.node(i).netns, `http://127.0.0.1:${HEALTHZ_PORT}/metrics`);
      const m = /^twill_peers\{state="invalid"\} (\d+)$/m.exec(r.body);
      if (!m) throw new Error(`${c.node(i).name}: no twill_peers{state="invalid"} in /metrics (HTTP ${r.status})`);
      return Number(m[1]);
    };
    const logLines = (i: number, pred: (l: string) => boolean) => readFileSync(c.node(i).logFile, 'utf8').split('\n').filter(pred);
    /** Pings every 10 ms into node i's pod from the others and out of it; the returned function
     *  stops them and asserts that not one packet was lost. */
    const flowsThrough = async (i: number): Promise<() => Promise<void>> => {
      const pod = c.pods[i]!, others = c.pods.filter((p) => p !== pod);
      const flows = await Promise.all([...others.map((o) => c.pingFlow(o.netns, pod.ip)), c.pingFlow(pod.netns, others[0]!.ip)]);
      await sleep(500);
      return async () => {
        for (const [n, r] of (await Promise.all(flows.map((f) => f.stop()))).entries()) {
          expect(r.sent, `flow ${n}: ${r.output.slice(-300)}`).toBeGreaterThan(100);
          expect(r.sent - r.received, `flow ${n} lost packets: ${r.output.split('\n').slice(-3).join(' ')}`).toBe(0);
        }
      };
    };

    const newcomer = (mac: string): SyntheticLease => ({ subnet: '10.244.150.0/24', publicIP: '10.213.0.150', vtepMAC: mac });
    const notNewcomer = (l: StoredLease) => l.subnet !== '10.244.150.0/24';

    it("a lease reusing node1's VTEP MAC arrives: node1 keeps every packet (zero loss), every node ignores the newcomer and logs it once", async () => {
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
      const inc = await leaseOf(1);
      const stopFlows = await flowsThrough(1);
      const dup = newcomer(inc.vtepMAC!);
      await c.store.putLease(dup);
      const key = keyOf(dup);
      await waitFor('every node to report the newcomer invalid', async () => {
        for (const i of [0, 1, 2]) if ((await peerOn(i, key))?.state !== 'invalid') return false;
        return true;
      }, CONVERGE_MS, 100);
      await sleep(1500);                               // anything the newcomer might have disturbed would show now
      await stopFlows();
      for (const i of [0, 2]) {
        const p = await peerOn(i, key);
        expect(p?.reason, `${c.node(i).name}`).toContain(inc.key);
        expect(p?.reason, `${c.node(i).name}`).toContain('was there first');
        expect(await fdbFor(i, inc.vtepMAC!), `${c.node(i).name}: FDB for node1's MAC`).toEqual([c.node(1).underlayIP]);
        expect((await peerOn(i, inc.key))?.state, `${c.node(i).name}: node1`).toBe('programmed');
      }
      expect((await peerOn(1, key))?.reason, 'node1 about a lease carrying its own MAC').toMatch(/this node's own VTEP MAC/);
      expect(await fdbFor(1, inc.vtepMAC!), 'node1: no FDB entry for its own MAC').toEqual([]);
      expect(await checkPeerEntries(c, undefined, notNewcomer)).toEqual([]);
      // Logged once, with both keys (pino writes asynchronously: wait for the line, then count).
      const ignoring = (i: number) => logLines(i, (l) => l.includes('ignoring peer lease') && l.includes(key));
      await waitFor('the warning in node0\'s log', async () => ignoring(0).length > 0, 5000, 100);
      expect(ignoring(0)).toHaveLength(1);
      expect(ignoring(0)[0]).toContain(inc.key);
    });

    it('the same winner after every agent restarts with the duplicate already there', async () => {
      const inc = await leaseOf(1);
      for (const i of [0, 1, 2]) await c.stopAgent(i);
      for (const i of [0, 1, 2]) await c.startAgent(i);
      await c.waitReady(60_000);
      expect(await waitPeerEntries(c, CONVERGE_MS, undefined, notNewcomer)).toEqual([]);
      const key = keyOf(newcomer(inc.vtepMAC!));
      for (const i of [0, 2]) {
        expect((await peerOn(i, key))?.state, `${c.node(i).name}: the newcomer`).toBe('invalid');
        expect(await fdbFor(i, inc.vtepMAC!), `${c.node(i).name}: FDB for node1's MAC`).toEqual([c.node(1).underlayIP]);
      }
    });

    it('the incumbent leaves: the newcomer takes over on every other node; node1 comes back once it is gone', async () => {
      const inc = await leaseOf(1);
      const dup = newcomer(inc.vtepMAC!);
      await c.stopAgent(1);
      await c.store.deleteLease(inc.subnet);
      await waitFor('node0 and node2 to program the newcomer', async () => {
        for (const i of [0, 2]) {
          if ((await fdbFor(i, dup.vtepMAC)).join() !== dup.publicIP) return false;
          if (!(await c.kernelState(i)).routes.some((r) => r.dst === dup.subnet)) return false;
        }
        return true;
      }, CONVERGE_MS, 100);
      for (const i of [0, 2]) expect((await peerOn(i, keyOf(dup)))?.state).toBe('programmed');
      // Back to three nodes: the newcomer goes, node1 (kube: its Node registered again) returns.
      await c.store.deleteLease(dup.subnet);
      await c.store.prepareNode({ index: 1, name: c.node(1).name, underlayIP: c.node(1).underlayIP });
      await c.startAgent(1);
      await c.waitReady(60_000);
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
    });

    it("leases claiming node0's own VTEP MAC, public IP or subnet are never programmed on node0, and its traffic never notices", async () => {
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
      const own = await leaseOf(0);
      const stopFlows = await flowsThrough(0);
      const macClaim: SyntheticLease = { subnet: '10.244.160.0/24', publicIP: '10.213.0.160', vtepMAC: own.vtepMAC! };
      const ipClaim: SyntheticLease = { subnet: '10.244.161.0/24', publicIP: c.node(0).underlayIP, vtepMAC: '02:cc:00:00:01:61' };
      const subnetClaim: SyntheticLease = { subnet: own.subnet, publicIP: '10.213.0.162', vtepMAC: '02:cc:00:00:01:62' };
      await c.store.putLease(macClaim);
      await c.store.putLease(ipClaim);
      // etcd: the same subnet under another key (a dual-stack key names it too); kube: a Node
      // given node0's podCIDR.
      let subnetClaimKey: string;
      if (mode === 'etcd') {
        const s = c.store as EtcdStore;
        subnetClaimKey = `${s.prefix}/subnets/${subnetKey(own.subnet)}&fd00:99::-64`;
        await s.etcd.ctl(['put', subnetClaimKey, encodeLease(subnetClaim)]);
      } else {
        await c.store.putLease(subnetClaim);
        subnetClaimKey = keyOf(subnetClaim);
      }
      const reasons = async () => Promise.all([keyOf(macClaim), keyOf(ipClaim), subnetClaimKey].map(async (k) => (await peerOn(0, k))?.reason ?? ''));
      try {
        await waitFor('node0 to judge all three', async () => (await reasons()).every((r) => r !== ''), CONVERGE_MS, 100);
        expect(await reasons()).toEqual([
          `VtepMAC ${own.vtepMAC!.toLowerCase()} is this node's own VTEP MAC`,
          `PublicIP ${c.node(0).underlayIP} is this node's own public IP`,
          `subnet ${own.subnet} is our own subnet`,
        ]);
        await sleep(1500);
        await stopFlows();
        const k = await c.kernelState(0);
        expect(k.fdb.filter((f) => f.mac === own.vtepMAC!.toLowerCase()), 'node0: FDB for its own MAC').toEqual([]);
        expect(k.fdb.filter((f) => f.dst === c.node(0).underlayIP), 'node0: FDB pointing at its own IP').toEqual([]);
        expect(k.routes.filter((r) => r.dst === own.subnet || r.dst === macClaim.subnet || r.dst === ipClaim.subnet), 'node0: routes for the claims').toEqual([]);
        // Elsewhere node0 is the incumbent of its MAC and subnet.
        for (const i of [1, 2]) {
          expect(await fdbFor(i, own.vtepMAC!), `${c.node(i).name}: FDB for node0's MAC`).toEqual([c.node(0).underlayIP]);
          expect((await peerOn(i, subnetClaimKey))?.state, `${c.node(i).name}: the subnet claim`).toBe('invalid');
          expect((await peerOn(i, keyOf(macClaim)))?.state, `${c.node(i).name}: the MAC claim`).toBe('invalid');
        }
      } finally {
        await c.store.deleteLease(macClaim.subnet);
        await c.store.deleteLease(ipClaim.subnet);
        if (mode === 'etcd') await (c.store as EtcdStore).etcd.ctl(['del', subnetClaimKey]);
        else await deleteNode(c.store, subnetClaimKey);
      }
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
    });

    it('undecodable, malformed and failing leases: counted and listed, then deleted → every count back to its earlier value; written again → logged again', async () => {
      const base = await Promise.all([0, 1, 2].map(invalidCount));
      const notJson: SyntheticLease = { subnet: '10.244.170.0/24', publicIP: '10.213.0.170', vtepMAC: '02:dd:00:00:01:70', rawValue: 'not json' };
      const loopback: SyntheticLease = { subnet: '10.244.171.0/24', publicIP: '127.0.0.1', vtepMAC: '02:dd:00:00:01:71' };
      let third: { key: string; put: () => Promise<unknown>; del: () => Promise<unknown> };
      if (mode === 'etcd') {
        // A key that is not a subnet key, holding a well-formed value.
        const s = c.store as EtcdStore;
        const key = `${s.prefix}/subnets/garbage`;
        third = { key, put: () => s.etcd.ctl(['put', key, encodeLease({ subnet: '', publicIP: '10.213.0.172', vtepMAC: '02:dd:00:00:01:72' })]), del: () => s.etcd.ctl(['del', key]) };
      } else {
        // A Node whose backend-data is JSON with a VNI that is not a number.
        const bad: SyntheticLease = { subnet: '10.244.172.0/24', publicIP: '10.213.0.172', vtepMAC: '02:dd:00:00:01:72', rawValue: '{"VNI":"one","VtepMAC":"02:dd:00:00:01:72"}' };
        third = { key: keyOf(bad), put: () => c.store.putLease(bad), del: () => c.store.deleteLease(bad.subnet) };
      }
      await c.store.putLease(notJson);
      await c.store.putLease(loopback);
      await third.put();
      const keys = [keyOf(notJson), keyOf(loopback), third.key];
      try {
        await waitFor('every node to count the three', async () => (await Promise.all([0, 1, 2].map(invalidCount))).every((n, i) => n === base[i]! + 3), CONVERGE_MS, 200);
        for (const i of [0, 1, 2]) {
          const s = await c.status(i);
          for (const k of keys) expect(s.peers.find((p) => p.key === k)?.state, `${c.node(i).name}: ${k}`).toBe('invalid');
        }
      } finally {
        await c.store.deleteLease(notJson.subnet);
        await c.store.deleteLease(loopback.subnet);
        await third.del();
      }
      await waitFor('every count back to its earlier value', async () => (await Promise.all([0, 1, 2].map(invalidCount))).every((n, i) => n === base[i]), CONVERGE_MS, 200);
      for (const i of [0, 1, 2]) {
        const s = await c.status(i);
        expect(s.peers.filter((p) => keys.includes(p.key)), `${c.node(i).name}: /status still lists a deleted key`).toEqual([]);
      }
      // The "ignoring" state went with the key: the same garbage again is a new problem, logged again.
      const ignoring = () => logLines(0, (l) => l.includes('ignoring peer lease') && l.includes(`"key":"${keyOf(notJson)}"`));
      expect(ignoring()).toHaveLength(1);
      await c.store.putLease(notJson);
      await waitFor('the second warning', async () => ignoring().length === 2, CONVERGE_MS, 100);
      await c.store.deleteLease(notJson.subnet);
      await waitFor('the count back again', async () => (await invalidCount(0)) === base[0], CONVERGE_MS, 200);
    });

    it('readiness while the store is down: exactly one reason on every agent, the store', async () => {
      await c.stopEtcd();
      try {
        await waitFor('every agent to name the store', async () => {
          for (const i of [0, 1, 2]) {
            const r = (await c.status(i)).notReadyReasons;
            if (r.length !== 1 || !/^lease store unreachable: /.test(r[0]!)) return false;
          }
          return true;
        }, 30_000, 250);
        for (const i of [0, 1, 2]) expect(await c.readyz(i)).toBe(503);
      } finally {
        await c.startEtcd();
      }
      await c.waitReady(60_000);
    });

    it('readiness with an invalid config: exactly one reason, the config (not "lease store unreachable")', async () => {
      await c.stopAgent(2);
      await c.store.writeConfig({ Network: 42, Backend: { Type: 'vxlan', VNI: 1 } });
      try {
        await c.startAgent(2);
        let reasons: string[] = [];
        await waitFor('node2 to say why it is not ready', async () => {
          reasons = await c.status(2).then((s) => s.notReadyReasons, () => []);
          return reasons.length > 0 && reasons[0]!.startsWith('network config');
        }, 30_000, 250);
        await sleep(1500);                           // past a retry: still just the one reason
        const s = await c.status(2);
        expect(s.notReadyReasons).toEqual([expect.stringMatching(/^network config: .*Network.*42/)]);
        expect(s.conditions.store, 'the store answered').toBe(true);
        expect(await c.readyz(2)).toBe(503);
        for (const i of [0, 1]) expect(await c.readyz(i), `${c.node(i).name} keeps running on its config`).toBe(200);
      } finally {
        await c.store.writeConfig(NETCONF);
      }
      await c.waitReady(60_000, [2]);
      expect(await waitPeerEntries(c, CONVERGE_MS)).toEqual([]);
    });
  });
}
