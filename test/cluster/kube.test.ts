// twill on a real Kubernetes cluster (see cluster.ts): upstream's control plane, kubelets,
// containerd and kube-proxy in network namespaces; twill installed from its own image through
// deploy/; our own assertions; then upstream's sig-network conformance tests and a subset of its
// NetworkPolicy suite as the judge.
// Tests run in order on one cluster; the disruptive ones (rollout restart, Node deletion) last.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nsRun, sleep, waitFor } from '../harness/exec.js';
import { kernelState } from '../harness/kernel.js';
import { REPO_ROOT } from '../harness/paths.js';
import { startProc, type Proc } from '../harness/procs.js';
import { KubeCluster } from './cluster.js';
import { formatSummary, NETPOL_CI_SUBSET, netpolSelection, runConformance } from './conformance.js';
import { clusterSkipReason, prepare, type Prepared } from './prepare.js';
import { AGNHOST, applyObjects, clientIp, connectivityMatrix, deployProbe, formatMatrix, NETEXEC_PORT, PROBE_NS, probePods, probeService, type ProbePod } from './probe.js';

const skip = clusterSkipReason();
if (skip) console.warn(`real-cluster suite skipped: ${skip}`);

interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec: { podCIDR?: string; podCIDRs?: string[] };
  status: { conditions: { type: string; status: string; reason?: string }[]; addresses: { type: string; address: string }[] };
}

describe.skipIf(skip !== undefined)('twill on a real Kubernetes cluster', () => {
  let prepared: Prepared;
  let c: KubeCluster;
  let pods: ProbePod[];
  const podNet = (): ProbePod[] => pods.filter((p) => !p.hostNetwork);
  const nodesJson = async (): Promise<NodeJson[]> => (await c.kubectlJson<{ items: NodeJson[] }>(['get', 'nodes'])).items;

  beforeAll(async () => {
    prepared = prepare();
    c = new KubeCluster({ workers: 2, bin: prepared.bin, images: prepared.images, log: (l) => console.log(`cluster: ${l}`) });
    await c.start();
    pods = await deployProbe(c);
  }, 900_000);

  afterAll(async () => { await c?.destroy(); }, 120_000);

  it('every Node is Ready with NetworkUnavailable=False (TwillIsUp) and a podCIDR from the controller-manager', async () => {
    const nodes = await nodesJson();
    expect(nodes.map((n) => n.metadata.name).sort()).toEqual(c.nodes.map((n) => n.name).sort());
    const cidrs = new Set<string>();
    for (const n of nodes) {
      const cond = (t: string) => n.status.conditions.find((x) => x.type === t);
      expect(cond('Ready')?.status, n.metadata.name).toBe('True');
      expect(cond('NetworkUnavailable'), n.metadata.name).toMatchObject({ status: 'False', reason: 'TwillIsUp' });
      expect(n.spec.podCIDR).toMatch(/^10\.244\.\d+\.0\/24$/);
      cidrs.add(n.spec.podCIDR!);
      // The agent's lease is the Node's podCIDR: subnet.env on that node says so.
      const env = readFileSync(join(c.node(n.metadata.name).spec.rootDir, 'run/twill/subnet.env'), 'utf8');
      expect(env).toContain(`FLANNEL_SUBNET=${n.spec.podCIDR!.replace(/\.0\/24$/, '.1/24')}`);
    }
    expect(cidrs.size).toBe(nodes.length);
  });

  it('every manifest in deploy/ passes server-side dry-run (kustomize output and the kubeadm all-in-one)', async () => {
    const kustomized = await c.kubectl(['kustomize', join(REPO_ROOT, 'deploy')]);
    for (const input of [kustomized.stdout, readFileSync(join(REPO_ROOT, 'deploy', 'kubeadm', 'twill.yaml'), 'utf8')]) {
      const r = await c.kubectl(['apply', '--dry-run=server', '-f', '-'], false, 60_000, input);
      expect(r.stdout).toMatch(/daemonset\.apps\/twill .*\(server dry run\)/);
    }
  });

  it('pods on every node reach pods on every other node, both ways, and the receiver sees the sender pod IP', async () => {
    expect(podNet().length).toBe(c.nodes.length);
    const cells = await connectivityMatrix(c, podNet());
    console.log(formatMatrix(cells));
    expect(cells.filter((x) => !x.ok).map((x) => `${x.from.name} → ${x.to.ip}: ${x.seen}`)).toEqual([]);
    expect(cells.length).toBe(c.nodes.length * (c.nodes.length - 1));
  });

  it('a hostNetwork pod reaches pods on other nodes', async () => {
    for (const h of pods.filter((p) => p.hostNetwork)) {
      for (const to of podNet().filter((p) => p.node !== h.node)) {
        expect(await clientIp(c, h, to.ip, NETEXEC_PORT), `${h.name} → ${to.ip}`).toMatch(/^\d+\.\d+\.\d+\.\d+:\d+$/);
      }
    }
  });

  it('a node reaches its local pods', async () => {
    for (const p of podNet()) {
      const r = await c.node(p.node).host.exec('curl', ['-s', '--max-time', '5', `http://${p.ip}:${NETEXEC_PORT}/clientip`], { allowFail: true });
      expect(r.stdout, `${p.node} → ${p.ip}`).toMatch(/^10\.244\.\d+\.\d+:\d+$/);
    }
  });

  it('lo is up in every pod', async () => {
    for (const p of podNet()) {
      const r = await c.kubectl(['-n', PROBE_NS, 'exec', p.name, '--', 'sh', '-c', `ip -o link show lo && curl -s --max-time 5 http://127.0.0.1:${NETEXEC_PORT}/hostname`]);
      expect(r.stdout).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
      expect(r.stdout).toContain(p.name);
    }
  });

  it('a ClusterIP Service through kube-proxy reaches backends on other nodes', async () => {
    await applyObjects(c, [probeService('netexec', 'ClusterIP')]);
    const ip = (await c.kubectl(['-n', PROBE_NS, 'get', 'svc', 'netexec', '-o', 'jsonpath={.spec.clusterIP}'])).stdout.trim();
    expect(ip).toMatch(/^10\.96\./);
    for (const from of podNet()) {
      const seen = new Set<string>();
      await waitFor(`${from.name} sees a backend on another node through ${ip}`, async () => {
        const r = await c.kubectl(['-n', PROBE_NS, 'exec', from.name, '--', 'curl', '-s', '--max-time', '3', `http://${ip}/hostname`], true);
        if (r.code === 0) seen.add(r.stdout.trim());
        return podNet().some((p) => p.node !== from.node && seen.has(p.name));
      }, 60_000, 100);
    }
  });

  it('a NodePort Service answers on another node', async () => {
    await applyObjects(c, [probeService('netexec-np', 'NodePort')]);
    const port = (await c.kubectl(['-n', PROBE_NS, 'get', 'svc', 'netexec-np', '-o', 'jsonpath={.spec.ports[0].nodePort}'])).stdout.trim();
    const [a, b] = c.nodes;
    await waitFor(`NodePort ${port} of ${b!.name} from ${a!.name}`, async () => {
      const r = await a!.host.exec('curl', ['-s', '--max-time', '3', `http://${b!.spec.ip}:${port}/hostname`], { allowFail: true });
      return r.code === 0 && r.stdout.startsWith('netexec-');
    }, 60_000, 200);
  });

  it('a hostPort (portmap in the conflist) answers on the node address', async () => {
    const target = c.nodes[1]!;
    const pod = {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'hostport', namespace: PROBE_NS },
      spec: {
        nodeName: target.name, terminationGracePeriodSeconds: 1,
        containers: [{ name: 'netexec', image: AGNHOST, args: ['netexec', '--http-port=8080'],
          ports: [{ containerPort: 8080, hostPort: 18081 }] }],
      },
    };
    await applyObjects(c, [pod]);
    await c.kubectl(['-n', PROBE_NS, 'wait', '--for=condition=Ready', 'pod/hostport', '--timeout=120s'], false, 130_000);
    const from = c.nodes[0]!;
    await waitFor('hostPort 18081', async () => {
      const r = await from.host.exec('curl', ['-s', '--max-time', '3', `http://${target.spec.ip}:18081/hostname`], { allowFail: true });
      return r.code === 0 && r.stdout.trim() === 'hostport';
    }, 30_000, 200);
  });

  it('pods reach a host outside the cluster, masqueraded to their node address', async () => {
    const agnhost = join(prepared.bin, 'agnhost');
    const server: Proc = startProc('external netexec', 'nsenter', [`--net=/run/netns/${c.external.netns}`, '--', agnhost, 'netexec', '--http-port=8080'],
      { logFile: join(c.logDir, 'external-netexec.log') });
    try {
      await waitFor('external netexec', async () => (await nsRun(c.external.netns, 'curl', ['-sf', 'http://127.0.0.1:8080/hostname'], { allowFail: true })).code === 0, 20_000, 100);
      for (const p of podNet()) {
        const seen = await clientIp(c, p, c.external.ip, 8080);
        expect(seen.split(':')[0], `${p.name} → external`).toBe(c.node(p.node).spec.ip);
      }
    } finally {
      await server.stop('SIGKILL');
    }
  });

  it("least privilege: the agent's ServiceAccount can do what it needs and nothing else", async () => {
    const as = '--as=system:serviceaccount:kube-system:twill';
    const can = async (...a: string[]): Promise<string> => (await c.kubectl(['auth', 'can-i', as, ...a], true)).stdout.trim();
    const read = (r: string) => [['get', r], ['list', r], ['watch', r]];
    for (const a of [...read('nodes'), ['patch', 'nodes', '--subresource=status'], ...read('pods'), ...read('namespaces'), ...read('networkpolicies.networking.k8s.io')]) expect(await can(...a), a.join(' ')).toBe('yes');
    for (const a of [['patch', 'nodes'], ['update', 'nodes'], ['delete', 'nodes'], ['create', 'nodes'], ['list', 'secrets'],
      ['get', 'secrets', '-n', 'kube-system'], ['create', 'pods'], ['patch', 'pods'], ['delete', 'pods'], ['update', 'namespaces'], ['create', 'networkpolicies.networking.k8s.io'],
      ['list', 'configmaps'], ['update', 'nodes', '--subresource=status']]) {
      expect(await can(...a), a.join(' ')).toBe('no');
    }
  });

  it('`twilld status` through kubectl exec shows every peer programmed', async () => {
    const agents = (await c.kubectl(['-n', 'kube-system', 'get', 'pods', '-l', 'app.kubernetes.io/name=twill', '-o', 'jsonpath={.items[*].metadata.name}'])).stdout.trim().split(/\s+/);
    expect(agents.length).toBe(c.nodes.length);
    for (const a of agents) {
      const r = await c.kubectl(['-n', 'kube-system', 'exec', a, '-c', 'twill', '--', 'twilld', 'status', '--json']);
      const st = JSON.parse(r.stdout) as { ready: boolean; peers: { state: string }[] };
      expect(st.ready, a).toBe(true);
      const programmed = st.peers.filter((p) => p.state === 'programmed');
      expect(programmed.length, `${a}: ${r.stdout.slice(0, 500)}`).toBe(c.nodes.length - 1);
    }
  });

  it('upstream sig-network conformance tests all pass', async () => {
    const reportDir = join(REPO_ROOT, '.tmp', 'conformance');
    const { summary, result } = await runConformance(c, prepared.bin, { reportDir });
    console.log(formatSummary(summary));
    if (summary.failed || result.code !== 0) console.log(result.stdout.split('\n').slice(-200).join('\n'));
    expect(summary.failures).toEqual([]);
    expect(summary.passed).toBeGreaterThan(0);
    expect(result.code).toBe(0);
  }, 5_400_000);

  it("upstream NetworkPolicy tests (Netpol, CI's subset) all pass", async () => {
    const reportDir = join(REPO_ROOT, '.tmp', 'conformance', 'netpol');
    const { summary, result } = await runConformance(c, prepared.bin, { reportDir, ...netpolSelection('ci') });
    console.log(formatSummary(summary));
    if (summary.failed || result.code !== 0) console.log(result.stdout.split('\n').slice(-300).join('\n'));
    // Every name in the subset selected exactly one spec (a renamed spec would silently drop out).
    expect(summary.selected).toBe(NETPOL_CI_SUBSET.length);
    expect(summary.failures).toEqual([]);
    expect(summary.passed).toBeGreaterThan(0);
    expect(result.code).toBe(0);
  }, 1_800_000);

  it('`kubectl rollout restart ds/twill` under a pod-to-pod flow: no request fails, podCIDRs and VTEP MACs stay', async () => {
    const before = await nodesJson();
    const [from, to] = podNet().filter((p, i, all) => all.findIndex((q) => q.node === p.node) === i);
    expect(from && to && from.node !== to.node).toBe(true);
    // One HTTP request every 50 ms from a pod on one node to a pod on another, counted inside the pod.
    const flow = c.kubectl(['-n', PROBE_NS, 'exec', from!.name, '--', 'sh', '-c',
      `ok=0; fail=0; while [ ! -e /tmp/stop ]; do if curl -s -o /dev/null --max-time 2 http://${to!.ip}:${NETEXEC_PORT}/hostname; then ok=$((ok+1)); else fail=$((fail+1)); fi; sleep 0.05; done; echo "ok=$ok fail=$fail"`],
    false, 600_000);
    await sleep(2000);
    await c.kubectl(['-n', 'kube-system', 'rollout', 'restart', 'ds/twill']);
    await c.kubectl(['-n', 'kube-system', 'rollout', 'status', 'ds/twill', '--timeout=300s'], false, 320_000);
    await sleep(2000);
    await c.kubectl(['-n', PROBE_NS, 'exec', from!.name, '--', 'touch', '/tmp/stop']);
    const out = (await flow).stdout.trim();
    const m = /ok=(\d+) fail=(\d+)/.exec(out);
    expect(m, out).not.toBeNull();
    console.log(`flow during rollout restart: ${out}`);
    expect(Number(m![2])).toBe(0);
    expect(Number(m![1])).toBeGreaterThan(20);
    const after = await nodesJson();
    const key = (n: NodeJson) => ({ name: n.metadata.name, cidr: n.spec.podCIDR, backend: n.metadata.annotations?.['twill.io/backend-data'] });
    expect(after.map(key)).toEqual(before.map(key));
    expect(before.every((n) => /VtepMAC/.test(n.metadata.annotations?.['twill.io/backend-data'] ?? ''))).toBe(true);
  }, 600_000);

  it('deleting a Node removes its entries on every other node', async () => {
    const gone = c.nodes[c.nodes.length - 1]!;
    const stays = c.nodes.filter((n) => n !== gone);
    const cidr = (await nodesJson()).find((n) => n.metadata.name === gone.name)!.spec.podCIDR!;
    for (const n of stays) expect((await kernelState(n.spec.netns, 'twill.1')).routes.map((r) => r.dst)).toContain(cidr);
    // As when a node is decommissioned: its kubelet stops, then the Node object is deleted.
    await gone.stopKubelet();
    await c.kubectl(['delete', 'node', gone.name, '--wait=true']);
    for (const n of stays) {
      await waitFor(`${n.name}: entries for ${cidr} removed`, async () => {
        const k = await kernelState(n.spec.netns, 'twill.1');
        return !k.routes.some((r) => r.dst === cidr) && k.nexthops.length === k.routes.length && k.fdb.length === stays.length - 1 && k.arp.length === stays.length - 1;
      }, 30_000, 200);
    }
    pods = await probePods(c);
  }, 120_000);
});
