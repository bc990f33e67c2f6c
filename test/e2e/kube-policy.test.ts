// NetworkPolicy enforced by the agents, on the real kube-apiserver (test/harness/store-kube-real.ts):
// two nodes running twilld in kube mode (policy on by default), pods made by the built CNI plugin
// the way a runtime makes them (CNI_ARGS with the pod's namespace and name, so the plugin reports
// each new pod to its node's agent), Pod objects created through the API with their node and
// labels (the test plays the scheduler and the kubelet: it patches status.podIP itself, or, for
// the new-pod checks, never). Real TCP connections decide every verdict, across nodes (VXLAN)
// and between pods of one node (across the bridge).
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStore } from '../harness/suites/describe.js';
import { startCluster, waitFor, type Cluster } from '../harness/index.js';
import { EchoServers, ECHO_PORT, tcpConnect } from '../harness/probe.js';
import { nsRun } from '../harness/exec.js';
import type { RealKubeStore } from '../harness/store-kube-real.js';
import * as cni from '../util/pods.js';
import { httpGet } from '../harness/http.js';
import { HEALTHZ_PORT } from '../harness/agent.js';
import { REPO_ROOT } from '../harness/paths.js';

const TWILLD = join(REPO_ROOT, 'bin', 'twilld.js');

interface PodDef { ns: string; name: string; node: number; labels: Record<string, string> }
interface LivePod extends PodDef { pod: cni.Pod; netns: string; ip: string }

describeStore('kube', 'e2e kube: NetworkPolicy enforced by the agents', () => {
  let c: Cluster;
  let prefix: string;
  const echo = new EchoServers();
  const live: LivePod[] = [];
  const confs: { conf: object; hostNetns: string }[] = [];
  const kubectl = (args: string[], input?: string) => (c.store as RealKubeStore).controlPlane.kubectl(args, input === undefined ? {} : { input });
  const apply = (obj: object) => kubectl(['apply', '-f', '-'], JSON.stringify(obj));
  const pod = (ns: string, name: string): LivePod => live.find((p) => p.ns === ns && p.name === name)!;

  /** The Pod object (scheduled on its node), then the CNI ADD; status.podIP only when `publish`. */
  async function addPod(d: PodDef, publish = true): Promise<LivePod> {
    await apply({
      apiVersion: 'v1', kind: 'Pod', metadata: { namespace: d.ns, name: d.name, labels: d.labels },
      spec: { nodeName: c.node(d.node).name, automountServiceAccountToken: false, containers: [{ name: 'main', image: 'example.invalid/echo', ports: [{ name: 'echo', containerPort: ECHO_PORT }] }] },
    });
    const n = c.node(d.node);
    const conf = cni.twillConf({ name: 'twill', subnetFile: n.subnetFile, dataDir: `${c.workDir}/cni-ipam-${d.node}` });
    confs.push({ conf, hostNetns: n.netns });
    const netns = `${prefix}${live.length}`;
    const p = await cni.addPod({ name: netns, conf, hostNetns: n.netns, args: `K8S_POD_NAMESPACE=${d.ns};K8S_POD_NAME=${d.name}` });
    const lp: LivePod = { ...d, pod: p, netns, ip: p.ip };
    live.push(lp);
    if (publish) await kubectl(['patch', 'pod', '-n', d.ns, d.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running', podIP: p.ip, podIPs: [{ ip: p.ip }] } })]);
    await echo.ensure(netns);
    return lp;
  }

  const connects = async (from: LivePod, to: LivePod) => (await tcpConnect(from.netns, to.ip, 1)).ok;

  /** Waits until every pair gives the expected verdict (policies take effect asynchronously). */
  async function expectReach(cases: [from: LivePod, to: LivePod, ok: boolean][], timeoutMs = 10_000): Promise<void> {
    let last: string[] = [];
    await waitFor('connectivity as the policies say', async () => {
      const got = await Promise.all(cases.map(async ([f, t, ok]) => [f, t, ok, await connects(f, t)] as const));
      last = got.filter(([, , ok, seen]) => ok !== seen).map(([f, t, ok]) => `${f.ns}/${f.name} → ${t.ns}/${t.name}: expected ${ok ? 'open' : 'closed'}`);
      return last.length === 0;
    }, timeoutMs, 200).catch((err: Error) => { throw new Error(`${err.message}\n${last.join('\n')}`); });
  }

  const nft = async (node: number) => (await nsRun(c.node(node).netns, 'nft', ['list', 'table', 'inet', 'twill-policy'], { allowFail: true }));

  beforeAll(async () => {
    c = await startCluster({ nodes: 2, mode: 'kube', podsPerNode: 0 });
    prefix = `${c.prefix}q`;
    for (const [ns, team] of [['pol-a', 'a'], ['pol-b', 'b']] as const) {
      await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { team } } });
      // No controllers run here: the ServiceAccount admission wants the default account to exist.
      await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { namespace: ns, name: 'default' } });
    }
    await addPod({ ns: 'pol-a', name: 'srv', node: 0, labels: { app: 'srv' } });
    await addPod({ ns: 'pol-a', name: 'local', node: 0, labels: { role: 'client' } });
    await addPod({ ns: 'pol-a', name: 'cli', node: 1, labels: { role: 'client' } });
    await addPod({ ns: 'pol-a', name: 'other', node: 1, labels: { role: 'other' } });
    await addPod({ ns: 'pol-b', name: 'cli', node: 1, labels: { role: 'client' } });
  }, 180_000);

  afterAll(async () => {
    await echo.stopAll();
    for (const p of live) {
      const conf = confs[live.indexOf(p)]!;
      await cni.delPod(p.pod, conf.conf, { hostNetns: conf.hostNetns }).catch(() => cni.deleteNetns(p.netns));
    }
    await c?.destroy();
  });

  it('with no policy every pod reaches every other; each agent is ready with its policy table installed', async () => {
    await c.waitReady(30_000);
    for (const n of c.nodes) {
      const s = await c.status(n.index);
      expect(s.policy, n.name).toMatchObject({ enforced: true, active: 0, guard: false });
      expect((await nft(n.index)).stdout, n.name).toContain('table inet twill-policy');
    }
    const srv = pod('pol-a', 'srv');
    await expectReach(live.filter((p) => p !== srv).map((p) => [p, srv, true]));
  });

  it('a default-deny ingress policy closes the server, across nodes and across the bridge', async () => {
    await apply({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: 'pol-a', name: 'deny' }, spec: { podSelector: { matchLabels: { app: 'srv' } }, policyTypes: ['Ingress'] } });
    const srv = pod('pol-a', 'srv');
    await expectReach([[pod('pol-a', 'cli'), srv, false], [pod('pol-a', 'local'), srv, false], [pod('pol-b', 'cli'), srv, false], [srv, pod('pol-a', 'cli'), true]]);
  });

  it('an allow policy (pod and namespace selectors, a named port) opens exactly the clients it names', async () => {
    await apply({
      apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: 'pol-a', name: 'clients' },
      spec: {
        podSelector: { matchLabels: { app: 'srv' } },
        ingress: [{ from: [{ podSelector: { matchLabels: { role: 'client' } }, namespaceSelector: { matchExpressions: [{ key: 'team', operator: 'In', values: ['a', 'b'] }] } }], ports: [{ port: 'echo' }] }],
      },
    });
    const srv = pod('pol-a', 'srv');
    await expectReach([[pod('pol-a', 'cli'), srv, true], [pod('pol-a', 'local'), srv, true], [pod('pol-b', 'cli'), srv, true], [pod('pol-a', 'other'), srv, false]]);
    const s = await c.status(0);
    expect(s.policy?.pods.find((p) => p.name === 'srv')).toMatchObject({ namespace: 'pol-a', ingress: ['pol-a/clients', 'pol-a/deny'], egress: [] });
    expect(s.policy?.guard).toBe(true);
  });

  it('a label change moves a pod in or out of the allowed set', async () => {
    await kubectl(['label', 'pod', '-n', 'pol-a', 'other', 'role=client', '--overwrite']);
    await expectReach([[pod('pol-a', 'other'), pod('pol-a', 'srv'), true]]);
    await kubectl(['label', 'pod', '-n', 'pol-a', 'other', 'role=other', '--overwrite']);
    await expectReach([[pod('pol-a', 'other'), pod('pol-a', 'srv'), false]]);
  });

  it('a new pod is enforced from its first packet: the CNI plugin reports it before its status has an address', async () => {
    const srv = pod('pol-a', 'srv');
    // Neither pod's status is ever patched: only the CNI plugin's report tells the agents.
    const allowed = await addPod({ ns: 'pol-a', name: 'new-client', node: 0, labels: { role: 'client' } }, false);
    expect((await tcpConnect(allowed.netns, srv.ip, 2)).ok, 'first connection of a new allowed pod').toBe(true);
    const denied = await addPod({ ns: 'pol-a', name: 'new-other', node: 0, labels: { role: 'other' } }, false);
    expect((await tcpConnect(denied.netns, srv.ip, 1)).ok, 'first connection of a new denied pod').toBe(false);
    const s = await c.status(0);
    expect(s.policy?.pods.map((p) => p.name)).toEqual(expect.arrayContaining(['new-client', 'new-other']));
  });

  it('an address of the node subnet no pod is known to hold is closed while policies exist, and /metrics counts the drops', async () => {
    // A pod the API has never heard of (no report: CNI_ARGS without the pod's name).
    const n = c.node(0);
    const conf = cni.twillConf({ name: 'twill', subnetFile: n.subnetFile, dataDir: `${c.workDir}/cni-ipam-0` });
    const ghost = await cni.addPod({ name: `${prefix}g`, conf, hostNetns: n.netns });
    try {
      expect((await tcpConnect(ghost.name, pod('pol-a', 'local').ip, 1)).ok).toBe(false);
    } finally {
      await cni.delPod(ghost, conf, { hostNetns: n.netns });
    }
    const m = (await httpGet(n.netns, `http://127.0.0.1:${HEALTHZ_PORT}/metrics`)).body;
    expect(m).toMatch(/twill_policy_dropped_packets_total\{direction="ingress",namespace="pol-a",policy="clients,deny",reason="policy"\} [1-9]/);
    expect(m).toMatch(/twill_policy_dropped_packets_total\{direction="egress",namespace="",policy="",reason="unknown-pod"\} [1-9]/);
    expect(m).toMatch(/twill_network_policies\{state="active"\} 2/);
  });

  it('deleting the policies opens everything again', async () => {
    await kubectl(['delete', 'networkpolicy', '-n', 'pol-a', 'deny', 'clients']);
    const srv = pod('pol-a', 'srv');
    await expectReach(live.filter((p) => p !== srv).map((p) => [p, srv, true]));
    expect((await c.status(0)).policy).toMatchObject({ active: 0, guard: false });
  });

  it('--network-policy=false removes the table on start; --cleanup removes it too', async () => {
    await apply({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { namespace: 'pol-a', name: 'deny' }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });
    const srv = pod('pol-a', 'srv');
    await expectReach([[pod('pol-a', 'cli'), srv, false]]);
    await c.stopAgent(0);
    await c.startAgent(0, ['--network-policy=false']);
    await c.waitReady(30_000, [0]);
    await waitFor('policy table removed', async () => (await nft(0)).code !== 0, 10_000);
    expect((await c.status(0)).policy).toBeUndefined();
    await expectReach([[pod('pol-a', 'cli'), srv, true]]);
    // Node 1 still enforces: its table is there until --cleanup.
    expect((await nft(1)).code).toBe(0);
    await c.stopAgent(1);
    const r = await nsRun(c.node(1).netns, process.execPath, [TWILLD, '--cleanup', '--subnet-file', c.node(1).subnetFile], { allowFail: true });
    expect(r.code, r.stderr).toBe(0);
    expect((await nft(1)).code).not.toBe(0);
  });
});
