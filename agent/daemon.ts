// The agent daemon: wiring only. start() builds every part, each whole before the next needs it,
// in the order the node comes up: health server → underlay interface → lease store → network
// config → VXLAN device spec and peer table → our lease → reconciler and device → the three
// watches (datapath.ts) → subnet file and traffic rules → NetworkPolicy → periodic tasks.
// Nothing here touches the kernel on shutdown: SIGTERM leaves the datapath as it is, so traffic
// keeps flowing while the agent restarts; `--cleanup` is the only path that removes state.
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { Logger } from '../lib/log.js';
import type { NetConf } from '../lib/config/types.js';
import type { SubnetManager } from '../lib/subnet/types.js';
import type { NetlinkHandle } from '../lib/netlink/types.js';
import { openHandle } from '../lib/netlink/handle.js';
import { Backoff, retry, systemClock, type Clock } from '../lib/retry.js';
import { errorMessage, invalid, isTwillError } from '../lib/errors.js';
import { makePrefix, parsePrefix } from '../lib/ip/prefix.js';
import { parseIp } from '../lib/ip/addr.js';
import { canonicalMac } from '../lib/ip/mac.js';
import { createNftPolicyEnforcer, type PolicyEnforcer } from '../lib/policy/nft.js';
import { POLICY_SOCKET } from '../lib/policy/report.js';
import type { AgentOptions } from './options.js';
import type { AgentStatus, ReconcileStatus } from './state.js';
import { VERSION } from './constants.js';
import { Metrics, type RepairKind } from './metrics.js';
import { startHttpServer, type HttpServer } from './http.js';
import type { TrafficRules } from './traffic/types.js';
import { selectInterface, type ExternalInterface } from './iface.js';
import { createSubnetManager, type SubnetManagerHandle } from './subnet-manager.js';
import { LeaseKeeper } from './lease-keeper.js';
import { PeerTable } from './peers.js';
import { Reconciler } from './reconcile/loop.js';
import { deriveVtepMac, deviceName, VXLAN_OVERHEAD_V4, VxlanDevice } from './backend/vxlan/device.js';
import { readPreviousSubnet } from './subnet-file.js';
import { HeapCompactor } from './heap.js';
import { PolicyService } from './policy.js';
import { Readiness } from './readiness.js';
import { runEvery } from './periodic.js';
import { StoreProbe, STORE_PROBE_MS } from './store-probe.js';
import { Datapath } from './datapath.js';
import { peerCounts, snapshot } from './snapshot.js';

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

/** Triggers of a full pass (a kernel dump and a diff of every entry). */
const FULL_PASS = /start|resync|overflow|device|retry/;
const HEAP_CHECK_MS = 5_000;

export class Daemon {
  readonly metrics = new Metrics();
  readonly status: AgentStatus;
  private readonly readiness: Readiness;
  private readonly heap = new HeapCompactor();
  private readonly o: AgentOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly signal: AbortSignal;
  private readonly inner = new AbortController();
  private readonly deps: DaemonDeps;
  private http: HttpServer | undefined;
  /** Set once start() has built it: what /status and the peer gauge read. */
  private datapath: Datapath | undefined;
  private policy: PolicyService | undefined;
  private lastLoop = Date.now();
  private fatal: ((err: unknown) => void) | undefined;

  constructor(o: AgentOptions, deps: DaemonDeps) {
    this.deps = deps;
    this.o = o;
    this.log = deps.logger;
    this.clock = deps.clock ?? systemClock;
    this.signal = deps.signal;
    this.readiness = new Readiness((ready, reasons) => {
      this.status.ready = ready;
      this.status.notReadyReasons = reasons;
      this.metrics.setReady(ready);
    });
    this.status = {
      version: VERSION, node: o.nodeName ?? hostname(), mode: o.kubeSubnetMgr ? 'kube' : 'etcd', startedAt: Date.now(),
      ready: false, notReadyReasons: [], conditions: this.readiness.conditions,
      lease: { state: 'pending' }, peers: [], repairs: {},
    };
    this.readiness.refresh();
    this.metrics.setPeerSource(() => peerCounts(this.datapath));
  }

  /** Runs until the signal aborts (resolves) or something fatal happens (rejects). */
  async run(): Promise<void> {
    const signal = AbortSignal.any([this.signal, this.inner.signal]);
    const fatal = new Promise<never>((_, reject) => { this.fatal = reject; });
    fatal.catch(() => undefined);
    let sm: SubnetManager | undefined;
    const handle = this.deps.handle ?? openHandle({ logger: this.log, watchOwnChanges: false });
    try {
      if (this.o.healthzPort > 0) await this.startHttp();
      await Promise.race([this.start(handle, (s) => { sm = s; }, signal), fatal]);
      await Promise.race([new Promise<void>((r) => signal.addEventListener('abort', () => r(), { once: true })), fatal]);
    } finally {
      this.inner.abort();
      await this.http?.close().catch(() => undefined);
      // Close only what we opened; injected I/O belongs to the caller.
      if (!this.deps.subnetManager) await sm?.close().catch(() => undefined);
      if (!this.deps.handle) handle.close();
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

  private async start(handle: NetlinkHandle, opened: (sm: SubnetManager) => void, signal: AbortSignal): Promise<void> {
    const { o, log, clock, readiness } = this;
    const ext = await this.selectUnderlay(handle, signal);
    const smh = this.deps.subnetManager ?? await createSubnetManager(o, log, clock, this.status.node, signal);
    opened(smh.sm);
    this.status.node = smh.nodeName;
    const cfg = await this.loadConfig(smh.sm, signal);
    const network = parsePrefix(cfg.network!);
    const b = cfg.backend;
    const mac = (await smh.previousVtepMac().catch(() => undefined)) ?? deriveVtepMac(ext.publicIP, b.vni);
    const peers = new PeerTable({
      network, subnetLen: cfg.subnetLen, vni: b.vni, ownMac: canonicalMac(mac), ownPublicIP: ext.publicIP,
    }, (key, reason, message) => {
      this.metrics.invalidLease(reason);
      log.warn({ key, reason }, `ignoring peer lease: ${message}`);
    }, (key, previous) => log.info({ key, previous }, 'peer lease accepted now (its earlier problem is gone)'));
    const device = new VxlanDevice(handle, {
      name: deviceName(b.vni), vni: b.vni, port: b.port, local: ext.ip, link: ext.index, mtu: b.mtu ?? ext.mtu - VXLAN_OVERHEAD_V4, mac, gbp: b.gbp,
    }, log, b.directRouting ? { ifindex: ext.index, prefix: makePrefix(parseIp(ext.ip), ext.prefixLen) } : undefined, {
      changed: (dev, created) => {
        peers.setDevice(dev);
        this.status.device = { name: dev.name, mtu: dev.mtu, index: dev.index };
        if (created) log.info({ device: dev.name, index: dev.index, mtu: dev.mtu, mac }, 'vxlan device created');
      },
      repaired: () => this.repair('device', 1),
    });
    const keeper = new LeaseKeeper({
      sm: smh.sm, clock, logger: log, renewMarginMs: o.subnetLeaseRenewMargin * 60_000,
      attrs: { publicIP: ext.publicIP, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: b.vni, VtepMAC: mac } },
      onProblem: (r) => readiness.problem('lease', r),
      onLease: (l) => {
        this.status.lease = { state: 'alive', subnet: l.subnet, publicIP: l.attrs.publicIP, vtepMAC: l.attrs.backendData.VtepMAC, expiration: l.expiration };
        this.metrics.setLeaseExpiry(l.expiration);
        readiness.cond('lease', true);
      },
    });
    const lease = await keeper.acquire(await readPreviousSubnet(o.subnetFile), signal);
    const reconciler = new Reconciler({
      handle, logger: log, clock,
      desired: () => peers.desired(),
      device: () => ({ index: device.info?.index, nexthops: device.info?.nexthops ?? false }),
      prepare: () => device.ensure(),
      hooks: {
        reconciled: (s) => this.onReconciled(s),
        repaired: (kind, n) => this.repair(kind, n),
        netlinkError: (op) => this.metrics.netlinkError(op),
        leaseLatency: (s) => this.metrics.observeEventToProgrammed(s),
        duration: (s, ok) => this.metrics.observeReconcile(s, ok),
      },
    });
    await device.ensure();
    peers.setLocal(lease.key, parsePrefix(lease.subnet));
    const dp = new Datapath({
      o, log, clock, readiness, handle, sm: smh.sm, ext, network, keeper, peers, reconciler, device, traffic: this.deps.traffic,
      alive: () => { this.lastLoop = Date.now(); },
    });
    this.datapath = dp;
    // The peers load and program while the subnet file and traffic rules are written (nft is a
    // child process): readiness waits for all of them, start-up for the slowest alone.
    void this.guard('reconciler', reconciler.run(signal));
    void this.guard('kernel watch', dp.watchKernel(signal));
    void this.guard('lease watch', dp.watchLeases(signal));
    await dp.writeSubnetFile();
    await dp.ensureTraffic();
    this.policy = this.startPolicy(smh, lease.subnet, dp, signal);
    const probe = new StoreProbe(smh.sm, cfg, readiness, log);
    void this.guard('lease renewal', keeper.runRenewals(signal));
    for (const task of [
      // Full kernel pass: a safety net behind the notifications, cheap to leave infrequent.
      { name: 'resync', everyMs: o.resyncInterval * 1000, run: () => reconciler.resync() },
      { name: 'rules resync', everyMs: o.iptablesResync * 1000, run: async () => { await dp.checkFilesAndRules(); this.policy?.checkSysctls(); } },
      { name: 'store probe', everyMs: STORE_PROBE_MS, run: (s: AbortSignal) => probe.probe(s) },
      { name: 'heap check', everyMs: HEAP_CHECK_MS, run: () => this.heap.tick(this.status.lastReconcile?.at, clock.now()) },
    ]) void this.guard(task.name, runEvery(task, clock, signal));
  }

  /** The underlay interface, retried with backoff until one matches (a bad flag is final). */
  private async selectUnderlay(handle: NetlinkHandle, signal: AbortSignal): Promise<ExternalInterface> {
    const ext = await retry(() => selectInterface(handle, this.o), {
      clock: this.clock, signal, backoff: new Backoff({ initialMs: 1000, maxMs: 15_000 }),
      onError: (err) => { if (isTwillError(err, 'CONFIG_INVALID')) return false; this.readiness.problem('interface', errorMessage(err)); },
    });
    this.readiness.problem('interface', undefined);
    this.readiness.cond('interface', true);
    this.log.info({ iface: ext.name, ip: ext.ip, publicIP: ext.publicIP, mtu: ext.mtu }, 'underlay interface selected');
    return ext;
  }

  /**
   * The network config, retried with backoff. An IPv6-only config is valid net-conf.json but not
   * one this agent can program: like an invalid config it is a reason not to be ready (no crash loop).
   */
  private async loadConfig(sm: SubnetManager, signal: AbortSignal): Promise<NetConf> {
    const { readiness, log } = this;
    const cfg = await retry(async () => {
      const cfg = await sm.getNetworkConfig(signal);
      if (!cfg.network) throw invalid('Network', cfg.network ?? '', 'an IPv4 network is required: this version of twill programs an IPv4 overlay only');
      return cfg;
    }, {
      clock: this.clock, signal, backoff: new Backoff({ initialMs: 500, maxMs: 15_000 }),
      onError: (err, attempt, delay) => {
        if (isTwillError(err, 'ABORTED')) return false;
        if (isTwillError(err, 'CONFIG_INVALID') || isTwillError(err, 'CONFIG_MISSING')) {
          // The store answered: the config is the one thing wrong.
          readiness.storeAnswered();
          readiness.problem('config', `network config: ${errorMessage(err)}`);
        } else {
          readiness.problem('config', undefined);
          readiness.storeFailed(err);
        }
        log.error({ attempt, retryInMs: delay }, `network config: ${errorMessage(err)}`);
      },
    });
    readiness.problem('config', undefined);
    readiness.cond('config', true);
    readiness.storeAnswered();
    if (cfg.enableIPv6) log.warn({ ipv6Network: cfg.ipv6Network }, 'EnableIPv6 is set, but this version of twill programs the IPv4 overlay only; IPv6 is ignored');
    return cfg;
  }

  /** Kube mode: NetworkPolicy for this node's pods (agent/policy.ts), unless --network-policy=false. */
  private startPolicy(smh: SubnetManagerHandle, subnet: string, dp: Datapath, signal: AbortSignal): PolicyService | undefined {
    if (!smh.kube || !this.o.networkPolicy) {
      // Off: rules a previous run left must not keep enforcing a stale view.
      if (smh.kube) void (this.deps.policyEnforcer ?? createNftPolicyEnforcer()).remove().catch(() => undefined);
      return undefined;
    }
    const policy = new PolicyService({
      client: smh.kube, nodeName: this.status.node, guardCidrs: [subnet], log: this.log, clock: this.clock, metrics: this.metrics,
      socketPath: join(dirname(this.o.subnetFile), POLICY_SOCKET),
      problem: (r) => this.readiness.problem('policy', r), backend: () => dp.trafficBackend,
      ...(this.deps.policyEnforcer ? { enforcer: this.deps.policyEnforcer } : {}),
      ...(this.deps.sysctl ? { sysctl: this.deps.sysctl } : {}),
    });
    void this.guard('network policy', policy.run(signal));
    return policy;
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
    if (s.ok && !this.status.conditions.firstReconcile && s.trigger.includes('start')) this.readiness.cond('firstReconcile', true);
    if (FULL_PASS.test(s.trigger)) this.heap.wantCompaction();
  }

  private repair(kind: RepairKind, n: number): void {
    this.metrics.repair(kind, n);
    this.status.repairs[kind] = (this.status.repairs[kind] ?? 0) + n;
    this.log.warn({ kind, n }, 'repaired kernel state changed by someone else');
  }

  /** The status document /status serves (peers computed on demand). */
  snapshot(): AgentStatus {
    return snapshot(this.status, this.datapath, this.policy?.status());
  }
}
