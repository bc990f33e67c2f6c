// The cluster-basics assertions, shared by the etcd-mode and kube-mode e2e files so both stores
// are held to exactly the same contract. One 3-node cluster with --ip-masq (so "no NAT between
// pods" is proven with masquerading switched on) on an underlay with a non-default MTU (1400),
// so an agent that assumes 1500 fails the MTU checks.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStore } from './describe.js';
import { checkPeerEntries, checkSubnets, connectivityMatrix, matrixProblems } from '../checks.js';
import { startCluster, type Cluster } from '../cluster.js';
import { nsRun } from '../exec.js';
import { nthAddress } from '../ipv4.js';
import { agentBuild } from '../dist-snapshot.js';
import type { StoreMode } from '../store.js';

const UNDERLAY_MTU = 1400;
const OVERLAY_MTU = UNDERLAY_MTU - 50;

export function basicSuite(mode: StoreMode): void {
  describeStore(mode, `e2e ${mode}: 3-node cluster basics (leases, kernel entries, pod connectivity, MTU, masquerade)`, () => {
    let c: Cluster;
    beforeAll(async () => {
      c = await startCluster({ nodes: 3, mode, ipMasq: true, underlayMtu: UNDERLAY_MTU });
    });
    afterAll(async () => { await c?.destroy(); });

    it('gives every node a distinct /24 inside Network, published with its underlay IP', async () => {
      expect(await checkSubnets(c, '10.244.0.0/16', 24)).toEqual([]);
      const leases = await c.store.leases();
      expect(leases).toHaveLength(3);
      for (const l of leases) {
        expect(l.backendType, l.key).toBe('vxlan');
        expect(l.vni, l.key).toBe(1);
        if (mode === 'etcd') expect(l.expiring, `${l.key} must carry an etcd lease (TTL)`).toBe(true);
      }
    });

    it('writes subnet.env with the flannel variables', async () => {
      for (const n of c.nodes) {
        const env = await c.subnetEnv(n.index);
        expect(env, n.name).toMatchObject({
          FLANNEL_NETWORK: '10.244.0.0/16',
          FLANNEL_SUBNET: `${nthAddress(n.subnet!, 1)}/24`,
          FLANNEL_MTU: String(OVERLAY_MTU),
          FLANNEL_IPMASQ: 'true',
        });
      }
    });

    it('creates twill.1 with VNI 1, the node IP, port 8472, learning off, MTU underlay−50, the /32 and the published MAC', async () => {
      const leases = await c.store.leases();
      for (const n of c.nodes) {
        const k = await c.kernelState(n.index);
        const lease = leases.find((l) => l.subnet === n.subnet);
        expect(k.device, n.name).toMatchObject({
          name: 'twill.1', up: true, vni: 1, local: n.underlayIP, port: 8472, learning: false, mtu: OVERLAY_MTU,
          addrs: [`${nthAddress(n.subnet!, 0)}/32`],
        });
        expect(k.device!.mac, `${n.name}: device MAC vs published VtepMAC`).toBe(lease?.vtepMAC?.toLowerCase());
      }
    });

    it('programs on each node exactly the ARP, FDB, nexthop and route entries of its peers', async () => {
      expect(await checkPeerEntries(c)).toEqual([]);
    });

    it('reports ready in /status with every peer programmed, and /healthz 200', async () => {
      for (const n of c.nodes) {
        const s = await c.status(n.index);
        expect(s.ready, `${n.name}: ${JSON.stringify(s.notReadyReasons)}`).toBe(true);
        expect(s.mode).toBe(mode === 'etcd' ? 'etcd' : 'kube');
        expect(s.lease.subnet).toBe(n.subnet);
        expect(s.lease.publicIP).toBe(n.underlayIP);
        expect(s.peers.map((p) => [p.subnet, p.state]).sort()).toEqual(
          c.nodes.filter((m) => m !== n).map((m) => [m.subnet, 'programmed']).sort());
        expect(await c.healthz(n.index)).toBe(200);
      }
    });

    it('`twilld status --json` inside the node netns prints the same lease', async () => {
      const n = c.node(1);
      const r = await nsRun(n.netns, process.execPath, [(await agentBuild()).twilldBin, 'status', '--json', '--healthz-ip', '127.0.0.1', '--healthz-port', '8471']);
      const s = JSON.parse(r.stdout) as { ready: boolean; lease: { subnet: string } };
      expect(s.ready).toBe(true);
      expect(s.lease.subnet).toBe(n.subnet);
    });

    it('connects every ordered pair of pods across VXLAN; the receiver sees the sender pod address (no NAT)', async () => {
      expect(c.pods).toHaveLength(3);
      const m = await connectivityMatrix(c);
      expect(m).toHaveLength(6);
      expect(matrixProblems(m)).toEqual([]);
    });

    it('lets a node reach pods on the other nodes', async () => {
      for (const n of c.nodes) {
        for (const p of c.pods.filter((q) => q.node !== n.index)) {
          const r = await c.ping(n.netns, p.ip, { count: 1, waitSec: 2 });
          expect(r.ok, `${n.name} → ${p.name} ${p.ip}: ${r.output}`).toBe(true);
        }
      }
    });

    it('passes a packet of exactly the overlay MTU with DF set and refuses one byte more locally', async () => {
      const [a, b] = [c.pods[0]!, c.pods[1]!];
      const fits = await c.ping(a.netns, b.ip, { size: OVERLAY_MTU - 28, df: true, count: 2, intervalSec: 0.2, waitSec: 2 });
      expect(fits.ok, `pod ${a.name} → ${b.name} with ${OVERLAY_MTU} bytes DF: ${fits.output}`).toBe(true);
      const tooBig = await c.ping(a.netns, b.ip, { size: OVERLAY_MTU - 27, df: true, count: 1 });
      expect(tooBig.received, tooBig.output).toBe(0);
      expect(tooBig.localError, `one byte over the MTU must be refused locally: ${tooBig.output}`).toBe(true);
      // The same from the node itself: the VXLAN device's MTU is what bounds it.
      const node = c.node(a.node);
      const nFits = await c.ping(node.netns, b.ip, { size: OVERLAY_MTU - 28, df: true, count: 2, intervalSec: 0.2, waitSec: 2 });
      expect(nFits.ok, `${node.name} → ${b.name} ${OVERLAY_MTU} bytes DF: ${nFits.output}`).toBe(true);
      const nBig = await c.ping(node.netns, b.ip, { size: OVERLAY_MTU - 27, df: true, count: 1 });
      expect(nBig.localError, `${node.name}: one byte over must be refused locally: ${nBig.output}`).toBe(true);
    });

    it('with --ip-masq, traffic from a pod to the external host arrives from the node underlay IP', async () => {
      for (const p of c.pods) {
        const r = await c.tcpProbe(p.netns, c.external.ip);
        expect(r.ok, `${p.name} → external: ${r.error}`).toBe(true);
        expect(r.seenSource, `${p.name} → external`).toBe(c.node(p.node).underlayIP);
      }
    });
  });
}
