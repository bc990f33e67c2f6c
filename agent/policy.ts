// NetworkPolicy in the agent (kube mode): Pods, Namespaces and NetworkPolicies watched through
// the agent's own API client (one reflector each, lib/subnet/kube-watch.ts), compiled for this
// node (lib/policy/compile.ts) and enforced in one nftables transaction per change
// (lib/policy/nft.ts). docs/network-policy.md describes the whole path.
//
// Changes are coalesced: the loop compiles the caches as they are when it gets to them, so a
// burst of events (a list, a Deployment rolling) costs one compile and one transaction, not one
// per event. Nothing is enforced before all three collections have been listed: a half-read
// cluster would isolate pods without the rules that allow their traffic.
//
// The new-pod window: a pod gets its address from the CNI plugin before the kubelet publishes it
// in the Pod's status. While any policy exists, forwarded traffic to or from an address of this
// node's pod subnet that no local pod is known to hold is dropped (the enforcer's guard), so a new
// pod is closed, not open, until its rules are in place. The CNI plugin shortens that to nothing:
// on ADD it tells the agent the pod's addresses (podStarted, over the socket in policy-socket.ts)
// and waits until they are enforced, so the pod's containers start with their rules in place.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Logger } from '../lib/log.js';
import { Backoff, type Clock } from '../lib/retry.js';
import { errorMessage } from '../lib/errors.js';
import type { KubeNodeClient } from '../lib/subnet/kube-client.js';
import { reflectCollection, type WatcherState } from '../lib/subnet/kube-watch.js';
import {
  compilePolicies, createNftPolicyEnforcer, objectKey, slimNamespace, slimNetworkPolicy, slimPod,
  type ApplyResult, type Namespace, type NetworkPolicy, type Pod, type PolicyEnforcer, type PolicyModel, type PolicyProblem,
} from '../lib/policy/index.js';
import type { Metrics } from './metrics.js';
import type { PolicyStatus } from './state.js';
import type { TrafficBackend } from './traffic/types.js';
import { servePodReports } from './policy-socket.js';

export type PolicyCollection = 'pods' | 'namespaces' | 'networkpolicies';
const NOUN: Record<PolicyCollection, string> = { pods: 'pod', namespaces: 'namespace', networkpolicies: 'networkpolicy' };
const PATHS: Record<PolicyCollection, string> = {
  pods: '/api/v1/pods', namespaces: '/api/v1/namespaces', networkpolicies: '/apis/networking.k8s.io/v1/networkpolicies',
};

export interface PolicyHooks {
  /** A transaction went in (or nothing needed to change). */
  applied(r: { seconds: number; result: ApplyResult; model: PolicyModel }): void;
  /** The kernel refused the rules (nft missing, …); retried with backoff. */
  failed(err: unknown): void;
  /** Policies newly left out (each reported once until it changes). */
  rejected(p: PolicyProblem[]): void;
  watch(c: PolicyCollection, s: WatcherState, detail?: string): void;
}

export interface PolicyControllerOptions {
  client: Pick<KubeNodeClient, 'list' | 'watch' | 'server'>;
  nodeName: string;
  enforcer: PolicyEnforcer;
  /** This node's pod CIDRs: addresses there that no known pod holds are closed while policies exist. */
  guardCidrs: readonly string[];
  log: Logger;
  clock: Clock;
  hooks: PolicyHooks;
}

interface Waiter { key: string; gen: number; resolve: () => void }

type RawObject = { metadata?: { resourceVersion?: string } };

export class PolicyController {
  private readonly o: PolicyControllerOptions;
  private readonly pods = new Map<string, Pod>();
  private readonly namespaces = new Map<string, Namespace>();
  private readonly policies = new Map<string, NetworkPolicy>();
  /** Addresses the CNI plugin reported for local pods whose status does not show them yet. */
  private readonly hints = new Map<string, string[]>();
  private readonly listed = new Set<PolicyCollection>();
  private gen = 0;
  private appliedGen = 0;
  private wake: (() => void) | undefined;
  private waiters: Waiter[] = [];
  private reported = new Set<string>();
  /** The model last enforced. */
  model: PolicyModel | undefined;

  constructor(o: PolicyControllerOptions) {
    this.o = o;
  }

  /** True once every collection was listed and the result enforced. */
  get enforced(): boolean { return this.model !== undefined; }

  /** Whether any valid policy exists in the cluster (what the guard and the iptables check key on). */
  get anyPolicy(): boolean { return this.policies.size > 0; }

  async run(signal: AbortSignal): Promise<void> {
    const reflect = <T>(c: PolicyCollection, map: Map<string, T>, slim: (v: unknown) => T & { metadata: { name: string; namespace?: string } }) =>
      reflectCollection<T & { metadata: { name: string; namespace?: string } }, RawObject>({
        what: NOUN[c], server: this.o.client.server, clock: this.o.clock, log: this.o.log,
        list: (s) => this.o.client.list(PATHS[c], slim, s),
        watch: (p, onEvent, s, onConnect) => this.o.client.watch<RawObject>(PATHS[c], p, onEvent, s, onConnect),
        relisted: (items) => {
          map.clear();
          for (const x of items) map.set(objectKey(x), x);
          this.listed.add(c);
          this.touch();
        },
        event: (type, raw) => {
          const x = slim(raw);
          const key = objectKey(x);
          if (type === 'DELETED') map.delete(key); else map.set(key, x);
          if (c === 'pods' && (type === 'DELETED' || (x as unknown as Pod).status?.podIP)) this.hints.delete(key);
          this.touch();
        },
        onState: (s, d) => this.o.hooks.watch(c, s, d),
      }, signal);
    await Promise.all([
      reflect('pods', this.pods, slimPod),
      reflect('namespaces', this.namespaces, slimNamespace),
      reflect('networkpolicies', this.policies, slimNetworkPolicy),
      this.loop(signal),
    ]);
  }

  /**
   * The CNI plugin's report of a new local pod's addresses. Resolves once rules that know the
   * pod are in the kernel (true), or false when the pod has not appeared in the watch by then;
   * at once while no policy exists.
   */
  podStarted(namespace: string, name: string, ips: string[], timeoutMs: number): Promise<boolean> {
    const key = `${namespace}/${name}`;
    this.hints.set(key, ips);
    this.touch();
    // No policy anywhere: nothing isolates the pod and no guard closes it, so there is nothing
    // to wait for (a cluster without policies pays nothing on ADD).
    if (!this.anyPolicy && this.enforced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== waiter); resolve(false); }, timeoutMs);
      const waiter: Waiter = { key, gen: this.gen, resolve: () => { clearTimeout(timer); resolve(true); } };
      this.waiters.push(waiter);
    });
  }

  private touch(): void {
    this.gen++;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private ready(): boolean {
    return this.listed.size === 3 && this.gen !== this.appliedGen;
  }

  /** Local pods as the compiler should see them: a CNI hint stands in for a status without addresses. */
  private podList(): Pod[] {
    const out: Pod[] = [];
    for (const [key, p] of this.pods) {
      const hint = this.hints.get(key);
      if (hint && !p.status?.podIP && p.spec.nodeName === this.o.nodeName) out.push({ ...p, status: { ...p.status, phase: p.status?.phase ?? 'Pending', podIP: hint[0] ?? null, podIPs: hint.map((ip) => ({ ip })) } });
      else out.push(p);
    }
    return out;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
    const onAbort = () => { const w = this.wake; this.wake = undefined; w?.(); };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        if (!this.ready()) { await new Promise<void>((r) => { this.wake = r; }); continue; }
        const gen = this.gen;
        const present = new Set(this.waiters.filter((w) => this.pods.has(w.key)).map((w) => w.key));
        const t0 = performance.now();
        const model = compilePolicies({ policies: [...this.policies.values()], namespaces: [...this.namespaces.values()], pods: this.podList(), nodeName: this.o.nodeName });
        this.reportRejected(model.rejected);
        try {
          const result = await this.o.enforcer.apply(model, this.anyPolicy ? this.o.guardCidrs : []);
          this.model = model;
          this.appliedGen = gen;
          backoff.reset();
          this.o.hooks.applied({ seconds: (performance.now() - t0) / 1000, result, model });
          const done = this.waiters.filter((w) => present.has(w.key) && w.gen <= gen);
          this.waiters = this.waiters.filter((w) => !done.includes(w));
          for (const w of done) w.resolve();
        } catch (err) {
          this.o.hooks.failed(err);
          await this.o.clock.sleep(backoff.next(), signal).catch(() => undefined);
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private reportRejected(problems: PolicyProblem[]): void {
    const now = new Set(problems.map((p) => `${p.namespace}/${p.name}\n${p.field}\n${p.reason}`));
    const fresh = problems.filter((p) => !this.reported.has(`${p.namespace}/${p.name}\n${p.field}\n${p.reason}`));
    this.reported = now;
    if (fresh.length > 0) this.o.hooks.rejected(fresh);
  }
}

export interface PolicyServiceOptions extends Omit<PolicyControllerOptions, 'hooks' | 'enforcer'> {
  enforcer?: PolicyEnforcer;
  /** Where the CNI plugin reports new pods (undefined: no socket). */
  socketPath?: string;
  metrics: Metrics;
  /** A reason not to be ready (undefined clears it). */
  problem(reason: string | undefined): void;
  /** The traffic-rules backend: on an iptables host the rules cannot be installed. */
  backend(): TrafficBackend | undefined;
  /** Sysctl I/O (tests inject). */
  sysctl?: { read(path: string): string; write(path: string, v: string): void };
  /** How long the CNI plugin's report may wait for enforcement. */
  podStartTimeoutMs?: number;
}

/** The bridge must hand bridged IP to the inet forward hook, or same-node traffic bypasses policy. */
export const BRIDGE_SYSCTLS = ['/proc/sys/net/bridge/bridge-nf-call-iptables', '/proc/sys/net/bridge/bridge-nf-call-ip6tables'];

const fsSysctl = {
  read: (p: string) => readFileSync(p, 'utf8').trim(),
  write: (p: string, v: string) => writeFileSync(p, v),
};

/** The controller plus what surrounds it in the agent: readiness, metrics, status, sysctls, the CNI socket. */
export class PolicyService {
  readonly controller: PolicyController;
  readonly enforcer: PolicyEnforcer;
  private readonly o: PolicyServiceOptions;
  private last: PolicyStatus['lastApply'];
  private failure: string | undefined;
  private sysctlProblem: string | undefined;
  private rejected: PolicyProblem[] = [];

  constructor(o: PolicyServiceOptions) {
    this.o = o;
    const real = o.enforcer ?? createNftPolicyEnforcer();
    // A host without usable nft (traffic rules on iptables) has nothing to do while no policy
    // exists; once one does, the apply fails and says why.
    this.enforcer = {
      ...real,
      apply: (model, guard) => (o.backend() === 'iptables' && model.policies.length + model.idle.length === 0 ? Promise.resolve({ mode: 'none' as const }) : real.apply(model, guard)),
    };
    const log = o.log.child({ component: 'policy' });
    this.controller = new PolicyController({
      ...o, log, enforcer: this.enforcer,
      hooks: {
        applied: ({ seconds, result, model }) => {
          this.failure = undefined;
          this.last = { at: Date.now(), ms: seconds * 1000, mode: result.mode };
          this.rejected = model.rejected;
          o.metrics.observePolicyApply(seconds, true);
          o.metrics.setPolicies({ active: model.policies.length, idle: model.idle.length, rejected: new Set(model.rejected.map((r) => `${r.namespace}/${r.name}`)).size });
          if (result.mode !== 'none') log.debug({ ms: Math.round(seconds * 1000), mode: result.mode, policies: model.policies.length }, 'network policy rules applied');
          if (result.fallbackReason) log.warn({ err: result.fallbackReason }, 'network policy table had been changed by someone else; replaced it whole');
          this.refresh();
        },
        failed: (err) => {
          o.metrics.observePolicyApply(0, false);
          this.failure = this.o.backend() === 'iptables'
            ? `NetworkPolicy needs nftables: policies exist, but nft is not usable on this host (its traffic rules fell back to iptables): ${errorMessage(err)}`
            : `network policy rules could not be installed: ${errorMessage(err)}`;
          log.error({ err: errorMessage(err) }, 'network policy rules could not be installed; retrying');
          this.refresh();
        },
        rejected: (ps) => {
          for (const p of ps) log.warn({ namespace: p.namespace, policy: p.name, field: p.field }, `NetworkPolicy ${p.namespace}/${p.name} left out (not enforced at all): ${p.field}: ${p.reason}`);
        },
        watch: (c, s, d) => { if (s === 'lost') log.warn({ collection: c, err: d }, `network policy: ${c} watch failing`); },
      },
    });
    o.metrics.setPolicyDropSource(() => this.enforcer.dropCounters());
  }

  async run(signal: AbortSignal): Promise<void> {
    this.checkSysctls();
    const server = this.o.socketPath ? await servePodReports(this.o.socketPath, this.controller, this.o.podStartTimeoutMs ?? 2_000, this.o.log) : undefined;
    try {
      await this.controller.run(signal);
    } finally {
      server?.close();
    }
  }

  /** Sets the bridge sysctls to 1 (and reports when they cannot be): called at start and on every rules resync. */
  checkSysctls(): void {
    const io = this.o.sysctl ?? fsSysctl;
    const bad: string[] = [];
    for (const p of BRIDGE_SYSCTLS) {
      try {
        if (io.read(p) !== '1') { io.write(p, '1'); this.o.log.info({ sysctl: p }, 'set to 1 so that NetworkPolicy applies to traffic across the bridge'); }
      } catch (err) {
        // IPv6's is absent when the kernel has no IPv6; only IPv4's is required.
        if (p.endsWith('ip6tables') && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        bad.push(`${p}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`);
      }
    }
    this.sysctlProblem = bad.length > 0 ? `NetworkPolicy cannot see traffic between pods of this node: ${bad.join('; ')} (br_netfilter must be loaded and the sysctl 1: set net.bridge.bridge-nf-call-iptables=1 on the node, as kubeadm's preflight requires)` : undefined;
    this.refresh();
  }

  private refresh(): void {
    const reasons = [this.sysctlProblem, this.failure, this.controller.enforced || this.failure ? undefined : 'network policies not enforced yet (listing pods, namespaces and policies)'].filter((x): x is string => x !== undefined);
    this.o.problem(reasons.length > 0 ? reasons.join('; ') : undefined);
  }

  status(): PolicyStatus {
    const m = this.controller.model;
    return {
      enforced: this.controller.enforced && this.failure === undefined,
      active: m?.policies.length ?? 0,
      idle: m?.idle.length ?? 0,
      rejected: this.rejected,
      guard: this.controller.anyPolicy,
      ...(this.last ? { lastApply: this.last } : {}),
      pods: m?.localPods.map((p) => ({ namespace: p.namespace, name: p.name, ips: p.ips, ingress: p.ingress, egress: p.egress })) ?? [],
    };
  }
}
