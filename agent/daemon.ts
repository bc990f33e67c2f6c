// The agent daemon: wiring only. Data flows one way — leases in, kernel state out:
//   lease watch ─┐
//   kernel watch ├─► PeerTable (desired) ─► Reconciler (diff vs observed, apply) ─► kernel
//   resync timer ┘
// Nothing here touches the kernel on shutdown: SIGTERM leaves the datapath as it is, so traffic
// keeps flowing while the agent restarts; `--cleanup` is the only path that removes state.
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../lib/log.js';
import type { Lease, LeaseEvent, SubnetManager } from '../lib/subnet/types.js';
import type { NetConf } from '../lib/config/types.js';
import type { NetlinkHandle } from '../lib/netlink/types.js';
import { openHandle } from '../lib/netlink/handle.js';
import { Backoff, deadline, retry, systemClock, type Clock } from '../lib/retry.js';
import { errorMessage, invalid, isTwillError } from '../lib/errors.js';
import { makePrefix, parsePrefix, formatPrefix, type Prefix } from '../lib/ip/prefix.js';
import { parseIp } from '../lib/ip/addr.js';
import { canonicalMac } from '../lib/ip/mac.js';
import type { AgentOptions } from './options.js';
import type { AgentStatus, PeerStatus, ReconcileStatus } from './state.js';
import { VERSION } from './constants.js';
import { Metrics, type PeerGaugeState, type RepairKind } from './metrics.js';
import { startHttpServer, type HttpServer } from './http.js';
import { createTrafficRules } from './traffic/index.js';
import type { TrafficRules, TrafficSpec } from './traffic/types.js';
import { selectInterface, type ExternalInterface } from './iface.js';
import { createSubnetManager, type SubnetManagerHandle } from './subnet-manager.js';
import { LeaseKeeper } from './lease-keeper.js';
import { PeerTable, type PeerView } from './peers.js';
import { Reconciler } from './reconcile/loop.js';
import { deriveVtepMac, deviceName, ensureDevice, VXLAN_OVERHEAD_V4, type DeviceSpec } from './backend/vxlan/device.js';
import type { DeviceInfo } from './backend/vxlan/desired.js';
import { readPreviousSubnet, writeSubnetFile } from './subnet-file.js';
import { HeapCompactor } from './heap.js';
import { PolicyService } from './policy.js';
import { createNftPolicyEnforcer, type PolicyEnforcer } from '../lib/policy/nft.js';
import { POLICY_SOCKET } from '../lib/policy/report.js';

export interface DaemonDeps {
  logger: Logger;
  clock?: Clock;
  signal: AbortSignal;
  /** Injected I/O for unit tests (memory kernel, memory store, fake rules); real ones otherwise. */
  handle?: NetlinkHandle;
  subnetManager?: SubnetManagerHandle;
  traffic?: TrafficRules;
  /** NetworkPolicy enforcement (tests inject one bound to their netns, or a recording fake). */
  policyEnforcer?: PolicyEnforcer;
  /** Tests: bridge sysctl I/O. */
  sysctl?: { read(path: string): string; write(path: string, v: string): void };
}

const STORE_PROBE_MS = 5_000;
/** Triggers of a full pass (a kernel dump and a diff of every entry). */
const FULL_PASS = /start|resync|overflow|device|retry/;
const QUIET_MS = 5_000;
const HEAP_CHECK_MS = 5_000;
const STORE_PROBE_TIMEOUT_MS = 3_000;

/**
 * `network "10.244.0.0/16" → "10.245.0.0/16"`: each validated top-level field that differs, old →
 * new; empty when none does (the raw text is skipped: reformatting the JSON is not a change).
 */
function describeConfChange(a: NetConf, b: NetConf): string {
  const out: string[] = [];
  for (const k of Object.keys({ ...a, ...b }) as (keyof NetConf)[]) {
    if (k === 'raw') continue;
    const x = JSON.stringify(a[k]), y = JSON.stringify(b[k]);
    if (x !== y) out.push(`${k} ${x ?? 'unset'} → ${y ?? 'unset'}`);
  }
  return out.join(', ');
}

export class Daemon {
  readonly metrics = new Metrics();
  private readonly heap = new HeapCompactor();
  readonly status: AgentStatus;
  private readonly o: AgentOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly signal: AbortSignal;
  private readonly inner = new AbortController();
  private handle!: NetlinkHandle;
  private sm!: SubnetManager;
  private cfg!: NetConf;
  private ext!: ExternalInterface;
  private keeper!: LeaseKeeper;
  private peers!: PeerTable;
  private reconciler!: Reconciler;
  private traffic: TrafficRules | undefined;
  private policy: PolicyService | undefined;
  private http: HttpServer | undefined;
  private devSpec!: DeviceSpec;
  private dev: DeviceInfo | undefined;
  private network!: Prefix;
  private lastLoop = Date.now();
  private problems = new Map<string, string>();
  private fatal: ((err: unknown) => void) | undefined;
  private readonly deps: DaemonDeps;

  constructor(o: AgentOptions, deps: DaemonDeps) {
    this.deps = deps;
    this.traffic = deps.traffic;
    this.o = o;
    this.log = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.signal = deps.signal;
    this.status = {
      version: VERSION, node: o.nodeName ?? hostname(), mode: o.kubeSubnetMgr ? 'kube' : 'etcd', startedAt: Date.now(),
      ready: false, notReadyReasons: [], conditions: { config: false, lease: false, subnetFile: false, firstReconcile: false, trafficRules: false, store: false },
      lease: { state: 'pending' }, peers: [], repairs: {},
    };
    this.metrics.setPeerSource(() => this.peerCounts());
    this.refreshReady();
  }

  /** Runs until the signal aborts (resolves) or something fatal happens (rejects). */
  async run(): Promise<void> {
    const signal = AbortSignal.any([this.signal, this.inner.signal]);
    const fatal = new Promise<never>((_, reject) => { this.fatal = reject; });
    fatal.catch(() => undefined);
    try {
      if (this.o.healthzPort > 0) await this.startHttp();
      await Promise.race([this.start(signal), fatal]);
      await Promise.race([new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true })), fatal]);
    } finally {
      this.inner.abort();
      await this.http?.close().catch(() => undefined);
      // Close only what we opened; injected I/O belongs to the caller.
      if (!this.deps.subnetManager) await this.sm?.close().catch(() => undefined);
      if (!this.deps.handle) this.handle?.close();
    }
  }

  private async startHttp(): Promise<void> {
    this.http = await startHttpServer({
      host: this.o.healthzIp, port: this.o.healthzPort, metrics: this.metrics, logger: this.log,
      getStatus: () => this.snapshot(),
      getReadiness: () => ({ ready: this.status.ready, notReadyReasons: this.status.notReadyReasons }),
      isAlive: () => Date.now() - this.lastLoop < 30_000,
    });
    const tick = async () => { while (!this.inner.signal.aborted) { this.lastLoop = Date.now(); await this.clock.sleep(1000, this.inner.signal).catch(() => undefined); } };
    void tick();
  }

  private async start(signal: AbortSignal): Promise<void> {
    this.handle = this.deps.handle ?? openHandle({ logger: this.log, watchOwnChanges: false });
    this.ext = await retry(() => selectInterface(this.handle, this.o), {
      clock: this.clock, signal, backoff: new Backoff({ initialMs: 1000, maxMs: 15_000 }),
      onError: (err) => { if (isTwillError(err, 'CONFIG_INVALID')) return false; this.problem('interface', errorMessage(err)); },
    });
    this.problem('interface', undefined);
    this.log.info({ iface: this.ext.name, ip: this.ext.ip, publicIP: this.ext.publicIP, mtu: this.ext.mtu }, 'underlay interface selected');
    const smh = this.deps.subnetManager ?? await createSubnetManager(this.o, this.log, this.clock, this.status.node, signal);
    this.status.node = smh.nodeName;
    this.sm = smh.sm;
    // An IPv6-only config is valid net-conf.json but not one this agent can program: like an
    // invalid config it is a reason not to be ready, retried with backoff (no crash loop).
    this.cfg = await retry(async () => {
      const cfg = await this.sm.getNetworkConfig(signal);
      if (!cfg.network) throw invalid('Network', cfg.network ?? '', 'an IPv4 network is required: this version of twill programs an IPv4 overlay only');
      return cfg;
    }, {
      clock: this.clock, signal, backoff: new Backoff({ initialMs: 500, maxMs: 15_000 }),
      onError: (err, attempt, delay) => {
        if (isTwillError(err, 'ABORTED')) return false;
        if (isTwillError(err, 'CONFIG_INVALID') || isTwillError(err, 'CONFIG_MISSING')) {
          // The store answered: the config is the one thing wrong.
          this.storeAnswered();
          this.problem('config', `network config: ${errorMessage(err)}`);
        } else {
          this.problem('config', undefined);
          this.storeFailed(err);
        }
        this.log.error({ attempt, retryInMs: delay }, `network config: ${errorMessage(err)}`);
      },
    });
    this.problem('config', undefined);
    this.cond('config', true);
    this.storeAnswered();
    if (this.cfg.enableIPv6) this.log.warn({ ipv6Network: this.cfg.ipv6Network }, 'EnableIPv6 is set, but this version of twill programs the IPv4 overlay only; IPv6 is ignored');
    this.network = parsePrefix(this.cfg.network!);
    const b = this.cfg.backend;
    const mac = (await smh.previousVtepMac().catch(() => undefined)) ?? deriveVtepMac(this.ext.publicIP, b.vni);
    this.devSpec = {
      name: deviceName(b.vni), vni: b.vni, port: b.port, local: this.ext.ip, link: this.ext.index,
      mtu: b.mtu ?? this.ext.mtu - VXLAN_OVERHEAD_V4, mac, gbp: b.gbp,
    };
    this.peers = new PeerTable({
      network: this.network, subnetLen: this.cfg.subnetLen, vni: b.vni, ownMac: canonicalMac(mac), ownPublicIP: this.ext.publicIP,
    }, (key, reason, message) => {
      this.metrics.invalidLease(reason);
      this.log.warn({ key, reason }, `ignoring peer lease: ${message}`);
    }, (key, previous) => this.log.info({ key, previous }, 'peer lease accepted now (its earlier problem is gone)'));
    this.keeper = new LeaseKeeper({
      sm: this.sm, clock: this.clock, logger: this.log, renewMarginMs: this.o.subnetLeaseRenewMargin * 60_000,
      attrs: { publicIP: this.ext.publicIP, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: b.vni, VtepMAC: mac } },
      onProblem: (r) => this.problem('lease', r),
      onLease: (l) => this.onLease(l),
    });
    const lease = await this.keeper.acquire(await readPreviousSubnet(this.o.subnetFile), signal);
    this.reconciler = new Reconciler({
      handle: this.handle, logger: this.log, clock: this.clock,
      desired: () => this.peers.desired(),
      device: () => ({ index: this.dev?.index, nexthops: this.dev?.nexthops ?? false }),
      prepare: () => this.ensureDevice(),
      hooks: {
        reconciled: (s) => this.onReconciled(s),
        repaired: (kind, n) => this.repair(kind, n),
        netlinkError: (op) => this.metrics.netlinkError(op),
        leaseLatency: (s) => this.metrics.observeEventToProgrammed(s),
        duration: (s, ok) => this.metrics.observeReconcile(s, ok),
      },
    });
    await this.ensureDevice();
    this.peers.setLocal(lease.key, parsePrefix(lease.subnet));
    // The peers load and program while the subnet file and traffic rules are written (nft is a
    // child process): readiness waits for all of them, start-up for the slowest alone.
    void this.guard('reconciler', this.reconciler.run(signal));
    void this.guard('kernel watch', this.watchKernel(signal));
    void this.guard('lease watch', this.watchLeases(signal));
    await this.writeSubnetFile();
    await this.ensureTraffic();
    this.startPolicy(smh, lease.subnet, signal);
    void this.guard('lease renewal', this.keeper.runRenewals(signal));
    void this.guard('resync', this.resyncLoop(signal));
    void this.guard('rules resync', this.rulesLoop(signal));
    void this.guard('store probe', this.storeProbe(signal));
    void this.guard('heap check', this.heapLoop(signal));
  }

  /** Kube mode: NetworkPolicy for this node's pods (agent/policy.ts), unless --network-policy=false. */
  private startPolicy(smh: SubnetManagerHandle, subnet: string, signal: AbortSignal): void {
    if (!smh.kube || !this.o.networkPolicy) {
      // Off: rules a previous run left must not keep enforcing a stale view.
      if (smh.kube) void (this.deps.policyEnforcer ?? createNftPolicyEnforcer()).remove().catch(() => undefined);
      return;
    }
    this.policy = new PolicyService({
      client: smh.kube, nodeName: this.status.node, guardCidrs: [subnet], log: this.log, clock: this.clock, metrics: this.metrics,
      socketPath: join(dirname(this.o.subnetFile), POLICY_SOCKET),
      problem: (r) => this.problem('policy', r), backend: () => this.traffic?.backend,
      ...(this.deps.policyEnforcer ? { enforcer: this.deps.policyEnforcer } : {}),
      ...(this.deps.sysctl ? { sysctl: this.deps.sysctl } : {}),
    });
    void this.guard('network policy', this.policy.run(signal));
  }

  private guard(what: string, p: Promise<unknown>): Promise<void> {
    return p.then(() => undefined, (err) => {
      if (isTwillError(err, 'ABORTED') || this.inner.signal.aborted || this.signal.aborted) return;
      this.log.fatal({ err: errorMessage(err), task: what }, `${what} failed`);
      this.fatal?.(err);
    });
  }

  private onReconciled(s: ReconcileStatus): void {
    this.status.lastReconcile = s;
    if (s.ok && !this.status.conditions.firstReconcile && s.trigger.includes('start')) this.cond('firstReconcile', true);
    if (FULL_PASS.test(s.trigger)) this.compactWanted = true;
  }

  /** A full pass left garbage: compact at the next quiet check (agent/heap.ts says why). */
  private compactWanted = false;

  /**
   * Returns garbage once the agent is quiet. A full GC at 20k peers stops the loop for ≈100 ms,
   * so it never runs while lease events are being programmed (measured: a compaction in the
   * middle of 200 events pushed the event-latency p99 from ≈16 ms to 100 ms).
   */
  private async heapLoop(signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.clock.sleep(HEAP_CHECK_MS, signal);
      const quiet = this.clock.now() - (this.status.lastReconcile?.at ?? 0) >= QUIET_MS;
      if (!quiet) continue;
      if (this.compactWanted) { this.compactWanted = false; this.heap.compact(); } else this.heap.check();
    }
  }

  private async ensureDevice(): Promise<void> {
    const prev = this.dev?.index;
    const { link, created, fixed } = await ensureDevice(this.handle, this.devSpec, this.log);
    const nexthops = await this.handle.supportsNexthops();
    // Once the device is ours, a change someone else made to it is a repair: a re-creation, or a
    // fix in place (set up again, MTU or MAC restored). The first start counts nothing.
    if ((created || fixed) && prev !== undefined) this.repair('device', 1);
    if (!this.dev || this.dev.index !== link.index || this.dev.mtu !== link.mtu) {
      this.dev = {
        index: link.index, name: link.name, mtu: link.mtu, vni: this.devSpec.vni, nexthops,
        // DirectRouting: peers on our underlay segment are routed directly, without VXLAN.
        ...(this.cfg.backend.directRouting ? { direct: { ifindex: this.ext.index, prefix: makePrefix(parseIp(this.ext.ip), this.ext.prefixLen) } } : {}),
      };
      this.peers.setDevice(this.dev);
      this.status.device = { name: link.name, mtu: link.mtu, index: link.index };
      if (created) this.log.info({ device: link.name, index: link.index, mtu: link.mtu, mac: this.devSpec.mac }, 'vxlan device created');
    }
  }

  private async watchLeases(signal: AbortSignal): Promise<void> {
    for await (const ev of this.sm.watchLeases(signal)) {
      this.lastLoop = Date.now();
      await this.onLeaseEvent(ev, signal);
    }
  }

  private async onLeaseEvent(ev: LeaseEvent, signal: AbortSignal): Promise<void> {
    const at = this.clock.now();
    const mine = this.keeper.lease;
    switch (ev.type) {
      case 'snapshot': {
        const own = ev.leases.find((l) => l.key === mine?.key);
        // A snapshot is always followed by a full pass: no dirty keys to collect.
        this.peers.replaceAll(ev.leases.filter((l) => l.key !== mine?.key), false, ev.invalid);
        this.reconciler.request('all', 'start');
        this.reconciler.request([], 'lease', at);
        if (mine && !own && mine.expiration !== null) await this.reacquire(signal);
        else if (own) await this.ownKeySeen(own, signal);
        break;
      }
      case 'added':
        if (ev.lease.key === mine?.key) await this.ownKeySeen(ev.lease, signal);
        else this.reconciler.request(this.peers.upsert(ev.lease), 'lease', at);
        break;
      case 'removed':
        if (ev.lease.key === mine?.key) await this.reacquire(signal);
        else this.reconciler.request(this.peers.remove(ev.lease.key), 'lease', at);
        break;
      case 'invalid':
        this.reconciler.request(this.peers.markUndecodable(ev.key, ev.reason), 'lease', at);
        break;
      case 'deleted':
        this.reconciler.request(this.peers.remove(ev.key), 'lease', at);
        break;
    }
  }

  /**
   * Our key as the store now holds it. In etcd mode another agent (or a person) can overwrite it:
   * a key naming another node's PublicIP is not our lease any more, so it is re-acquired, which
   * exits non-zero when that node keeps the subnet (LeaseKeeper.reacquire). Left alone, renewal
   * would notice only ahead of expiry, up to 24 h later. In kube mode the key is our own Node.
   */
  private async ownKeySeen(lease: Lease, signal: AbortSignal): Promise<void> {
    if (!this.o.kubeSubnetMgr && lease.attrs.publicIP !== this.ext.publicIP) {
      this.log.warn({ subnet: lease.subnet, holder: lease.attrs.publicIP }, `our subnet's key now names another node (PublicIP ${lease.attrs.publicIP})`);
      await this.reacquire(signal);
      return;
    }
    this.keeper.observed(lease);
  }

  private async reacquire(signal: AbortSignal): Promise<void> {
    const lease = await this.keeper.reacquire(signal);
    this.reconciler.request(this.peers.setLocal(lease.key, parsePrefix(lease.subnet)), 'lease');
  }

  private async watchKernel(signal: AbortSignal): Promise<void> {
    for await (const ev of this.handle.watch(['link', 'addr', 'route', 'nexthop', 'neigh'], signal)) {
      if (ev.type !== 'overflow' && ev.object.kind === 'link') {
        const l = ev.object;
        if (l.name === this.devSpec.name || l.index === this.dev?.index) {
          const broken = ev.type === 'del' || l.up === false || (l.mtu !== undefined && l.mtu !== this.devSpec.mtu) || (l.mac !== undefined && l.mac !== this.devSpec.mac);
          if (broken) this.reconciler.invalidate('kernel:device');
        }
        continue;
      }
      this.reconciler.onKernelEvent(ev);
    }
  }

  /** Full kernel pass: a safety net behind the notifications, cheap to leave infrequent. */
  private async resyncLoop(signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.clock.sleep(this.o.resyncInterval * 1000, signal);
      this.reconciler.resync();
    }
  }

  /** Rules and the subnet file have no notifications: check them often (one `nft list`). */
  private async rulesLoop(signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.clock.sleep(this.o.iptablesResync * 1000, signal);
      await this.writeSubnetFile().catch((err) => this.log.error({ err: errorMessage(err) }, 'subnet file write failed'));
      await this.ensureTraffic(true);
      this.policy?.checkSysctls();
    }
  }


  /** Readiness needs the store: when etcd is down the datapath keeps working, but we say so. */
  private async storeProbe(signal: AbortSignal): Promise<void> {
    for (;;) {
      await this.clock.sleep(STORE_PROBE_MS, signal);
      const probe = deadline(signal, STORE_PROBE_TIMEOUT_MS);
      try {
        const cfg = await this.sm.getNetworkConfig(probe.signal).catch((err: unknown) => {
          if (!isTwillError(err, 'CONFIG_INVALID')) throw err;
          // The store answered: only its config is now bad. The agent keeps the one it runs on.
          this.noteConfigChange(`is now invalid (${errorMessage(err)})`);
          return undefined;
        });
        const change = cfg && describeConfChange(this.cfg, cfg);
        if (change) this.noteConfigChange(`changed: ${change}`);
        if (!this.status.conditions.store) this.log.info('lease store reachable again');
        this.storeAnswered();
      } catch (err) {
        if (signal.aborted) return;
        if (this.status.conditions.store) this.log.warn({ err: errorMessage(err) }, 'lease store unreachable; datapath unchanged');
        this.storeFailed(err);
      } finally {
        probe.done();
      }
    }
  }

  /** The last config change reported (each distinct one is logged once, not every probe). */
  private configNote: string | undefined;

  /**
   * The network config is read once, at start (as flanneld does): a running node's subnets,
   * device and rules follow it, and changing them under running pods is a migration, not a
   * resync. A change in the store is therefore reported — once per distinct change — and applied
   * by restarting the agent (rolling the DaemonSet).
   */
  private noteConfigChange(what: string): void {
    if (this.configNote === what) return;
    this.configNote = what;
    this.log.warn(`the network config in the store ${what}; this agent keeps running on the config it started with: restart it to apply a change`);
  }

  private async writeSubnetFile(): Promise<void> {
    const l = this.keeper.lease;
    if (!l || !this.dev) return;
    const wrote = await writeSubnetFile(this.o.subnetFile, { network: this.network, subnet: parsePrefix(l.subnet), mtu: this.dev.mtu, ipMasq: this.o.ipMasq });
    if (wrote) this.log.info({ path: this.o.subnetFile, subnet: l.subnet }, 'subnet file written');
    this.cond('subnetFile', true);
  }

  private trafficSpec(): TrafficSpec {
    return { network: formatPrefix(this.network), subnet: this.keeper.lease?.subnet, masquerade: this.o.ipMasq };
  }

  private async ensureTraffic(checkFirst = false): Promise<void> {
    try {
      this.traffic ??= await createTrafficRules({ logger: this.log });
      const spec = this.trafficSpec();
      if (checkFirst && await this.traffic.check(spec)) return;
      await this.traffic.ensure(spec);
      if (checkFirst) this.log.warn('traffic rules had drifted; restored');
      this.cond('trafficRules', true);
      this.problem('traffic', undefined);
    } catch (err) {
      this.cond('trafficRules', false);
      this.problem('traffic', `traffic rules: ${errorMessage(err)}`);
      this.log.error({ err: errorMessage(err) }, 'traffic rules could not be installed; will retry at the next resync');
    }
  }

  private onLease(l: Lease): void {
    this.status.lease = { state: 'alive', subnet: l.subnet, publicIP: l.attrs.publicIP, vtepMAC: l.attrs.backendData.VtepMAC, expiration: l.expiration };
    this.metrics.setLeaseExpiry(l.expiration);
    this.cond('lease', true);
  }

  private repair(kind: RepairKind, n: number): void {
    this.metrics.repair(kind, n);
    this.status.repairs[kind] = (this.status.repairs[kind] ?? 0) + n;
    this.log.warn({ kind, n }, 'repaired kernel state changed by someone else');
  }

  /** Peer counts for the twill_peers gauge, computed when /metrics is scraped. */
  private peerCounts(): Record<PeerGaugeState, number> {
    if (!this.peers) return { valid: 0, invalid: 0, programmed: 0 };
    let programmed = 0;
    for (const v of this.peers.views()) if (this.peerState(v) === 'programmed') programmed++;
    const c = this.peers.counts();
    return { valid: c.valid, invalid: c.invalid, programmed };
  }

  private cond(name: keyof AgentStatus['conditions'], v: boolean): void {
    this.status.conditions[name] = v;
    this.refreshReady();
  }

  private problem(key: string, reason: string | undefined): void {
    if (reason === undefined) this.problems.delete(key); else this.problems.set(key, reason);
    this.refreshReady();
  }

  private storeAnswered(): void {
    this.problem('store', undefined);
    this.cond('store', true);
  }

  private storeFailed(err: unknown): void {
    this.problem('store', `lease store unreachable: ${errorMessage(err)}`);
    this.cond('store', false);
  }

  /**
   * Not-ready reasons: one per condition that failed, in start-up order, each the error that was
   * seen for it (problems), and nothing else: a condition still waiting behind a failed one is
   * not a second reason. Only while nothing has failed are the pending steps listed, by name.
   */
  private refreshReady(): void {
    const c = this.status.conditions;
    const steps: [ok: boolean, problemKey: string, pending: string][] = [
      [this.ext !== undefined, 'interface', 'underlay interface not selected yet'],
      [c.store, 'store', 'lease store not contacted yet'],
      [c.config, 'config', 'network config not loaded yet'],
      [c.lease, 'lease', 'no subnet lease yet'],
      [c.subnetFile, 'subnetFile', 'subnet file not written yet'],
      [c.firstReconcile, 'reconcile', 'first full reconcile not done yet'],
      [c.trafficRules, 'traffic', 'traffic rules not installed yet'],
    ];
    const order = new Map(steps.map(([, key], i) => [key, i]));
    const failed = [...this.problems].sort(([a], [b]) => (order.get(a) ?? steps.length) - (order.get(b) ?? steps.length)).map(([, r]) => r);
    const reasons = failed.length > 0 ? failed : steps.filter(([ok]) => !ok).map(([, , pending]) => pending);
    this.status.notReadyReasons = reasons;
    this.status.ready = reasons.length === 0;
    this.metrics.setReady(this.status.ready);
  }

  private peerState(v: PeerView): PeerStatus['state'] {
    if (!v.valid) return 'invalid';
    return this.reconciler?.isProgrammed(v.entries) ? 'programmed' : 'pending';
  }

  /** The status document /status serves (peers computed on demand). */
  snapshot(): AgentStatus {
    const peers: PeerStatus[] = [];
    if (this.peers) {
      for (const v of this.peers.views()) {
        const data = v.lease?.attrs.backendData as { VtepMAC?: string } | undefined;
        const state = this.peerState(v);
        peers.push({
          key: v.key, subnet: v.lease?.subnet ?? '', publicIP: v.lease?.attrs.publicIP ?? '', vtepMAC: data?.VtepMAC ?? '', state,
          ...(v.invalid ? { reason: v.invalid.message } : {}),
        });
      }
    }
    return { ...this.status, peers, ...(this.policy ? { policy: this.policy.status() } : {}) };
  }
}
