// Real pods: the cluster's pods are made by the built CNI plugin (dist/cni/twill), invoked in
// each node netns exactly as a runtime would. Every pod gets an address from its node's subnet,
// has lo up, reaches every other pod (same node and across VXLAN) with its own address intact,
// is reachable from its node, and reaches the external host masqueraded (--ip-masq); DEL
// releases the pod.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../util/root.js';
import { connectivityMatrix, matrixProblems } from '../harness/checks.js';
import { contains, nthAddress, nsRun, startCluster, type Cluster } from '../harness/index.js';

describeRoot('e2e etcd: pods from the CNI plugin on a 3-node cluster', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await startCluster({ nodes: 3, pods: 'cni', podsPerNode: 2, ipMasq: true });
  });
  afterAll(async () => { await c?.destroy(); });

  it('gives each pod a distinct address from its node subnet, the gateway being the first address', () => {
    expect(c.pods).toHaveLength(6);
    expect(new Set(c.pods.map((p) => p.ip)).size).toBe(6);
    for (const p of c.pods) {
      const subnet = c.node(p.node).subnet!;
      expect(contains(subnet, p.ip), `${p.name} ${p.ip} in ${subnet}`).toBe(true);
      expect(p.gateway, p.name).toBe(nthAddress(subnet, 1));
    }
  });

  it('brings lo up in every pod', async () => {
    for (const p of c.pods) {
      const r = await nsRun(p.netns, 'ip', ['-j', 'link', 'show', 'lo']);
      expect((JSON.parse(r.stdout) as { flags: string[] }[])[0]?.flags, p.name).toContain('UP');
    }
  });

  it('connects every ordered pair of pods on different nodes without NAT', async () => {
    const m = await connectivityMatrix(c);
    expect(m).toHaveLength(24);
    expect(matrixProblems(m)).toEqual([]);
  });

  it('connects pods on the same node without NAT', async () => {
    for (const a of c.pods) {
      for (const b of c.pods.filter((x) => x.node === a.node && x !== a)) {
        const r = await c.tcpProbe(a.netns, b.ip);
        expect(r.ok, `${a.name} → ${b.name}: ${r.error}`).toBe(true);
        expect(r.seenSource, `${a.name} → ${b.name}`).toBe(a.ip);
      }
    }
  });

  it('lets each node reach its local pods', async () => {
    for (const p of c.pods) {
      const r = await c.ping(c.node(p.node).netns, p.ip, { count: 1, waitSec: 2 });
      expect(r.ok, `${c.node(p.node).name} → ${p.name}: ${r.output}`).toBe(true);
    }
  });

  it('masquerades pod traffic to the external host behind the node address', async () => {
    for (const p of c.pods) {
      const r = await c.tcpProbe(p.netns, c.external.ip);
      expect(r.ok, `${p.name} → external: ${r.error}`).toBe(true);
      expect(r.seenSource, p.name).toBe(c.node(p.node).underlayIP);
    }
  });

  it('releases a pod through CNI DEL, and a new pod can reuse the node', async () => {
    const hostVeths = async (): Promise<string[]> => {
      const r = await nsRun(c.node(2).netns, 'ip', ['-j', 'link', 'show', 'type', 'veth']);
      return (JSON.parse(r.stdout || '[]') as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== 'eth0');
    };
    expect(await hostVeths()).toHaveLength(2);
    const victim = c.pods.find((p) => p.node === 2)!;
    await c.removePod(victim);
    expect(await hostVeths(), 'DEL removes the pod\'s host veth').toHaveLength(1);
    const again = await c.addPod(2);
    expect(contains(c.node(2).subnet!, again.ip)).toBe(true);
    expect(matrixProblems(await connectivityMatrix(c))).toEqual([]);
  });
});
