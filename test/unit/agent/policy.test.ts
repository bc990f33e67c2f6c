// The agent's NetworkPolicy wiring without a kernel or an API server: PolicyController over an
// in-memory API (list + watch per collection) and a recording enforcer; PolicyService's readiness,
// sysctls and iptables-host rule; the CNI report socket end to end (agent server ↔ plugin client);
// the status section and the drop-counter metric.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../lib/log.js';
import { systemClock } from '../../../lib/retry.js';
import type { WatchEventType, WatchOutcome, WatchParams } from '../../../lib/subnet/kube-client.js';
import type { DropCounter, PolicyEnforcer, PolicyModel } from '../../../lib/policy/index.js';
import { slimNamespace, slimNetworkPolicy, slimPod } from '../../../lib/policy/index.js';
import { parsePodReport } from '../../../lib/policy/report.js';
import { PolicyController, PolicyService, BRIDGE_SYSCTLS, type PolicyHooks } from '../../../agent/policy.js';
import { servePodReports } from '../../../agent/policy-socket.js';
import { podOf, reportNewPod } from '../../../cni/policy-notify.js';
import { Metrics } from '../../../agent/metrics.js';
import { policySection } from '../../../agent/status.js';
import type { AgentStatus } from '../../../agent/state.js';

type Raw = Record<string, unknown> & { metadata: Record<string, unknown> & { name: string; namespace?: string; resourceVersion?: string } };

/** An API server's collections in memory: list, and watches that receive what the test pushes. */
class FakeApi {
  readonly server = 'fake://';
  readonly lists = new Map<string, Raw[]>();
  private readonly watchers = new Map<string, ((t: WatchEventType, o: Raw) => void)[]>();
  listed: string[] = [];
  private rv = 1;
  gate: Promise<void> | undefined;

  async list<T>(path: string, slim: (item: unknown) => T, signal: AbortSignal): Promise<{ items: T[]; resourceVersion: string }> {
    void signal;
    if (path.includes('networkpolicies') && this.gate) await this.gate;
    this.listed.push(path);
    return { items: (this.lists.get(path) ?? []).map(slim), resourceVersion: String(this.rv) };
  }

  watch<T>(path: string, _p: WatchParams, onEvent: (type: WatchEventType, obj: T) => void, signal: AbortSignal, onConnect?: () => void): Promise<WatchOutcome> {
    const w = onEvent as unknown as (t: WatchEventType, o: Raw) => void;
    this.watchers.set(path, [...(this.watchers.get(path) ?? []), w]);
    onConnect?.();
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve({ kind: 'aborted' }), { once: true }));
  }

  push(path: string, type: WatchEventType, o: Raw): void {
    o.metadata.resourceVersion = String(++this.rv);
    for (const w of this.watchers.get(path) ?? []) w(type, o);
  }
}

const PODS = '/api/v1/pods', NSS = '/api/v1/namespaces', POLS = '/apis/networking.k8s.io/v1/networkpolicies';
const ns = (name: string): Raw => ({ metadata: { name, labels: { team: name } } });
const pod = (name: string, node: string, ip: string | undefined, labels: Record<string, string> = {}): Raw => ({
  metadata: { namespace: 'a', name, labels, managedFields: [{ big: 'x'.repeat(100) }] },
  spec: { nodeName: node, containers: [{ name: 'c', image: 'i', env: [{ name: 'X', value: 'y' }], ports: [{ name: 'http', containerPort: 8080 }] }] },
  status: { phase: 'Running', conditions: [{ type: 'Ready' }], ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}) },
});
const denyAll = (name: string): Raw => ({ metadata: { namespace: 'a', name }, spec: { podSelector: {}, policyTypes: ['Ingress'] } });

interface Applied { model: PolicyModel; guard: readonly string[] | undefined }

function recordingEnforcer(fail?: () => boolean): PolicyEnforcer & { applied: Applied[] } {
  const applied: Applied[] = [];
  return {
    applied,
    apply: async (model, guard) => {
      if (fail?.()) throw new Error('nft: Operation not permitted');
      applied.push({ model, guard });
      return { mode: applied.length === 1 ? 'full' : 'incremental' };
    },
    remove: async () => undefined,
    dropCounters: async () => [],
    installed: () => undefined,
  };
}

const ctls: AbortController[] = [];
afterEach(() => { for (const c of ctls.splice(0)) c.abort(); });

function start(api: FakeApi, enforcer: PolicyEnforcer, hooks: Partial<PolicyHooks> = {}): PolicyController {
  const ctl = new AbortController();
  ctls.push(ctl);
  const c = new PolicyController({
    client: api, nodeName: 'me', enforcer, guardCidrs: ['10.244.1.0/24'], log: silentLogger(), clock: systemClock,
    hooks: { applied: () => undefined, failed: () => undefined, rejected: () => undefined, watch: () => undefined, ...hooks },
  });
  void c.run(ctl.signal);
  return c;
}

const until = async (what: string, fn: () => boolean, ms = 2000) => {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('PolicyController', () => {
  it('enforces nothing until pods, namespaces and policies have all been listed', async () => {
    const api = new FakeApi();
    let open!: () => void;
    api.gate = new Promise((r) => { open = r; });
    api.lists.set(PODS, [pod('p', 'me', '10.244.1.2')]);
    api.lists.set(NSS, [ns('a')]);
    const e = recordingEnforcer();
    const c = start(api, e);
    await until('pods and namespaces listed', () => api.listed.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    expect(e.applied).toEqual([]);
    expect(c.enforced).toBe(false);
    open();
    await until('first apply', () => e.applied.length === 1);
    expect(c.enforced).toBe(true);
    expect(e.applied[0]!.model.localPods.map((p) => p.ips)).toEqual([['10.244.1.2']]);
  });

  it('guards the node subnet only while a policy exists, and coalesces a burst of events', async () => {
    const api = new FakeApi();
    api.lists.set(NSS, [ns('a')]);
    const e = recordingEnforcer();
    start(api, e);
    await until('first apply', () => e.applied.length === 1);
    expect(e.applied[0]!.guard).toEqual([]);
    for (let i = 0; i < 200; i++) api.push(PODS, 'ADDED', pod(`p${i}`, i % 2 ? 'me' : 'other', `10.244.${i % 2 ? 1 : 2}.${i + 2}`));
    api.push(POLS, 'ADDED', denyAll('deny'));
    await until('burst applied', () => e.applied.at(-1)!.model.policies.length === 1);
    // One event at a time would be 201 applies; the loop takes what has piled up.
    expect(e.applied.length).toBeLessThanOrEqual(4);
    expect(e.applied.at(-1)!.guard).toEqual(['10.244.1.0/24']);
    expect(e.applied.at(-1)!.model.localPods.length).toBe(100);
    api.push(POLS, 'DELETED', denyAll('deny'));
    await until('guard off', () => e.applied.at(-1)!.guard?.length === 0);
  });

  it("a CNI report stands in for a pod's missing status address, and resolves once that is enforced", async () => {
    const api = new FakeApi();
    api.lists.set(NSS, [ns('a')]);
    api.lists.set(POLS, [denyAll('deny')]);
    api.lists.set(PODS, [pod('new', 'me', undefined)]);
    const e = recordingEnforcer();
    const c = start(api, e);
    await until('first apply', () => e.applied.length === 1);
    expect(e.applied[0]!.model.localPods).toEqual([]);
    expect(await c.podStarted('a', 'new', ['10.244.1.9'], 2000)).toBe(true);
    expect(e.applied.at(-1)!.model.localPods).toMatchObject([{ name: 'new', ips: ['10.244.1.9'], ingress: ['a/deny'] }]);
    // The status arrives: the hint is dropped, the status wins.
    api.push(PODS, 'MODIFIED', pod('new', 'me', '10.244.1.10'));
    await until('status address', () => e.applied.at(-1)!.model.localPods[0]?.ips[0] === '10.244.1.10');
  });

  it('a report for a pod the watch has not shown yet waits for it (true), or times out (false)', async () => {
    const api = new FakeApi();
    api.lists.set(NSS, [ns('a')]);
    api.lists.set(POLS, [denyAll('deny')]);
    const e = recordingEnforcer();
    const c = start(api, e);
    await until('first apply', () => e.applied.length === 1);
    const late = c.podStarted('a', 'late', ['10.244.1.5'], 2000);
    await new Promise((r) => setTimeout(r, 30));
    api.push(PODS, 'ADDED', pod('late', 'me', undefined));
    expect(await late).toBe(true);
    expect(e.applied.at(-1)!.model.localPods.map((p) => p.ips[0])).toEqual(['10.244.1.5']);
    expect(await c.podStarted('a', 'never', ['10.244.1.6'], 100)).toBe(false);
  });

  it('while no policy exists a report is answered at once (nothing isolates the pod, no guard)', async () => {
    const api = new FakeApi();
    api.lists.set(NSS, [ns('a')]);
    const e = recordingEnforcer();
    const c = start(api, e);
    await until('first apply', () => e.applied.length === 1);
    expect(await c.podStarted('a', 'unseen', ['10.244.1.7'], 100)).toBe(true);
    api.push(POLS, 'ADDED', denyAll('deny'));
    await until('policy applied', () => e.applied.at(-1)!.model.policies.length + e.applied.at(-1)!.model.idle.length === 1);
    expect(await c.podStarted('a', 'unseen2', ['10.244.1.8'], 100)).toBe(false);
  });

  it('reports a rejected policy once, and a failed apply is retried', async () => {
    const api = new FakeApi();
    api.lists.set(NSS, [ns('a')]);
    api.lists.set(POLS, [{ metadata: { namespace: 'a', name: 'bad' }, spec: { podSelector: { matchExpressions: [{ key: 'x', operator: 'Near' }] } } }]);
    const rejected: string[] = [];
    const failed: string[] = [];
    let failures = 1;
    const e = recordingEnforcer(() => failures-- > 0);
    start(api, e, { rejected: (ps) => rejected.push(...ps.map((p) => `${p.name} ${p.field}`)), failed: (err) => failed.push(String(err)) });
    await until('applied after the retry', () => e.applied.length === 1, 5000);
    expect(failed).toHaveLength(1);
    api.push(PODS, 'ADDED', pod('p', 'me', '10.244.1.2'));
    await until('second apply', () => e.applied.length === 2);
    expect(rejected).toEqual(['bad spec.podSelector.matchExpressions[0].operator']);
    expect(e.applied[1]!.model.rejected).toHaveLength(1);
  });
});

describe('slimming what the API serves', () => {
  it('keeps what the compiler reads and drops the rest', () => {
    const p = slimPod(pod('x', 'me', '10.244.1.2', { app: 'a' }));
    expect(p).toEqual({
      metadata: { name: 'x', namespace: 'a', labels: { app: 'a' } },
      spec: { nodeName: 'me', containers: [{ ports: [{ name: 'http', containerPort: 8080, protocol: null }] }] },
      status: { phase: 'Running', podIP: '10.244.1.2', podIPs: [{ ip: '10.244.1.2' }] },
    });
    expect(slimPod({ metadata: { namespace: 'a', name: 'h' }, spec: { hostNetwork: true, initContainers: [{ restartPolicy: 'Always', ports: [{ containerPort: 1 }] }, { name: 'plain' }] } }))
      .toEqual({ metadata: { name: 'h', namespace: 'a' }, spec: { hostNetwork: true, initContainers: [{ restartPolicy: 'Always', ports: [{ containerPort: 1, name: null, protocol: null }] }] } });
    expect(slimNamespace({ metadata: { name: 'n', labels: { a: 'b' }, uid: 'u' }, status: { phase: 'Active' } })).toEqual({ metadata: { name: 'n', labels: { a: 'b' } } });
    expect(slimNetworkPolicy({ metadata: { namespace: 'a', name: 'p', generation: 3 }, spec: { podSelector: {} } })).toEqual({ metadata: { namespace: 'a', name: 'p' }, spec: { podSelector: {} } });
  });
});

describe('the CNI report socket', () => {
  let dir: string | undefined;
  afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = undefined; });

  it('checks every field and names it', () => {
    expect(parsePodReport('{"namespace":"a","name":"p","ips":["10.0.0.1","fd00::1"]}')).toEqual({ namespace: 'a', name: 'p', ips: ['10.0.0.1', 'fd00::1'] });
    expect(() => parsePodReport('{')).toThrow(/not JSON/);
    expect(() => parsePodReport('{"namespace":"","name":"p","ips":["10.0.0.1"]}')).toThrow(/namespace: "" is invalid: must be a non-empty string/);
    expect(() => parsePodReport('{"namespace":"a","name":"p","ips":["10.0.0.300"]}')).toThrow(/ips: \["10.0.0.300"\] is invalid: must be a non-empty list of IP addresses/);
  });

  it("reads the pod from CNI_ARGS, and only when both names are there", () => {
    expect(podOf('IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc')).toEqual({ namespace: 'ns', name: 'web-0' });
    expect(podOf('K8S_POD_NAMESPACE=ns')).toBeUndefined();
    expect(podOf('')).toBeUndefined();
  });

  it('round trip: the plugin waits for the agent; no agent is skipped at once; a slow agent costs at most the timeout', async () => {
    dir = mkdtempSync(join(tmpdir(), 'twill-polsock-'));
    const path = join(dir, 'policy.sock');
    expect((await reportNewPod(path, { namespace: 'a', name: 'p', ips: ['10.0.0.1'] }, 1000)).skipped).toBe('ENOENT');
    const seen: string[] = [];
    let delay = 20;
    const server = await servePodReports(path, {
      podStarted: async (n, name, ips) => { seen.push(`${n}/${name} ${ips.join(',')}`); await new Promise((r) => setTimeout(r, delay)); return name !== 'unknown'; },
    }, 1000, silentLogger());
    try {
      const t0 = performance.now();
      expect(await reportNewPod(path, { namespace: 'a', name: 'p', ips: ['10.0.0.1'] }, 1000)).toMatchObject({ ok: true });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
      expect(await reportNewPod(path, { namespace: 'a', name: 'unknown', ips: ['10.0.0.2'] }, 1000)).toMatchObject({ ok: false });
      delay = 500;
      const slow = await reportNewPod(path, { namespace: 'a', name: 'slow', ips: ['10.0.0.3'] }, 100);
      expect(slow).toEqual({ ok: false, error: 'no answer from the agent in 100 ms' });
      expect(seen).toEqual(['a/p 10.0.0.1', 'a/unknown 10.0.0.2', 'a/slow 10.0.0.3']);
    } finally {
      server.close();
    }
  });
});

describe('PolicyService', () => {
  const base = (over: Partial<ConstructorParameters<typeof PolicyService>[0]> = {}) => {
    const problems: (string | undefined)[] = [];
    const writes: string[] = [];
    const values = new Map(BRIDGE_SYSCTLS.map((p) => [p, '1']));
    const svc = new PolicyService({
      client: new FakeApi(), nodeName: 'me', guardCidrs: ['10.244.1.0/24'], log: silentLogger(), clock: systemClock, metrics: new Metrics({ defaultMetrics: false }),
      problem: (r) => problems.push(r), backend: () => 'nftables', enforcer: recordingEnforcer(),
      sysctl: { read: (p) => { const v = values.get(p); if (v === undefined) throw Object.assign(new Error('no'), { code: 'ENOENT' }); return v; }, write: (p, v) => { if (p.includes('iptables') && values.get(p) === 'ro') throw Object.assign(new Error('ro'), { code: 'EROFS' }); writes.push(`${p}=${v}`); values.set(p, v); } },
      ...over,
    });
    return { svc, problems, writes, values };
  };

  it('sets the bridge sysctls to 1, and says why it is not ready when it cannot', () => {
    const a = base();
    a.values.set(BRIDGE_SYSCTLS[0]!, '0');
    a.svc.checkSysctls();
    expect(a.writes).toEqual([`${BRIDGE_SYSCTLS[0]}=1`]);
    expect(a.problems.at(-1)).toMatch(/not enforced yet/);
    const b = base();
    b.values.set(BRIDGE_SYSCTLS[0]!, 'ro');
    b.values.delete(BRIDGE_SYSCTLS[1]!);   // no IPv6 in the kernel: not a problem
    b.svc.checkSysctls();
    expect(b.problems.at(-1)).toMatch(/cannot see traffic between pods of this node: \/proc\/sys\/net\/bridge\/bridge-nf-call-iptables: EROFS .*bridge-nf-call-iptables=1/);
  });

  it('on an iptables host: nothing to do without policies; with one, "NetworkPolicy needs nftables"', async () => {
    let calls = 0;
    const failing: PolicyEnforcer = { ...recordingEnforcer(), apply: async () => { calls++; throw new Error('nft: command not found'); } };
    const a = base({ backend: () => 'iptables', enforcer: failing });
    expect(await a.svc.enforcer.apply({ policies: [], idle: [], rejected: [], localPods: [] })).toEqual({ mode: 'none' });
    expect(calls).toBe(0);
    await expect(a.svc.enforcer.apply({ policies: [], idle: ['a/p'], rejected: [], localPods: [] })).rejects.toThrow(/command not found/);
    expect(calls).toBe(1);
  });
});

describe('status and metrics', () => {
  it('lists the policies in force per local pod, and every rejected policy with its reason', () => {
    const s = {
      policy: {
        enforced: true, active: 2, idle: 1, guard: true, lastApply: { at: 1_000, ms: 4.2, mode: 'incremental' },
        rejected: [{ namespace: 'a', name: 'bad', field: 'spec.ingress[0].ports[0].protocol', reason: '"ICMP" is not one of TCP, UDP, SCTP' }],
        pods: [{ namespace: 'a', name: 'web', ips: ['10.244.1.2'], ingress: ['a/allow', 'a/deny'], egress: [] }],
      },
    } as unknown as AgentStatus;
    const out = policySection(s, { color: false, now: 6_000 }, (_c, x) => x).join('\n');
    expect(out).toContain('enforced: 2 active here, 1 idle, 1 rejected, new-pod guard on, last update 5s ago (4.2 ms)');
    expect(out).toContain('rejected a/bad: spec.ingress[0].ports[0].protocol: "ICMP" is not one of TCP, UDP, SCTP');
    expect(out).toMatch(/a\/web\s+10\.244\.1\.2\s+allow,deny\s+-/);
  });

  it('turns the kernel counters into a counter per direction, namespace and policies, surviving a re-created chain', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let counters: DropCounter[] = [{ reason: 'policy', direction: 'ingress', namespace: 'a', policies: ['a/allow', 'a/deny'], chain: 'in-pods/x', packets: 5, bytes: 300 }];
    m.setPolicyDropSource(async () => counters);
    const line = async () => (await m.text()).split('\n').find((l) => l.startsWith('twill_policy_dropped_packets_total{'));
    expect(await line()).toBe('twill_policy_dropped_packets_total{direction="ingress",namespace="a",policy="allow,deny",reason="policy"} 5');
    counters = [{ ...counters[0]!, packets: 7 }];
    expect(await line()).toMatch(/ 7$/);
    counters = [{ ...counters[0]!, packets: 2 }];   // the chain was re-created: its counter restarted
    expect(await line()).toMatch(/ 9$/);
  });
});
