// Prometheus metrics for the agent. One Registry per Metrics object (never prom-client's global
// default) so tests and several agents in one process never share counters. Label values that
// are known up front are pre-set to 0, so a dashboard sees "0 repairs" rather than "no data".
// Gauges that mirror AgentStatus (peers, ready, lease expiry) can be refreshed from a status
// snapshot at scrape time (updateFromStatus), which keeps them consistent with /status. The peer
// gauge is computed at scrape time from a source (setPeerSource): counting programmed peers walks
// every peer (≈35 ms at 20k), which a scrape every 15–60 s can afford and a reconcile cannot.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DropCounter } from '../lib/policy/nft.js';
import type { AgentStatus } from './state.js';

export type RepairKind = 'route' | 'nexthop' | 'arp' | 'fdb' | 'device' | 'addr';
export const REPAIR_KINDS: readonly RepairKind[] = ['route', 'nexthop', 'arp', 'fdb', 'device', 'addr'];

export type PeerGaugeState = 'valid' | 'invalid' | 'programmed';

/** 1 ms .. 10 s: lease-event latency and reconcile duration share the scale. */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface MetricsOptions {
  defaultMetrics?: boolean;   // process_* and nodejs_* (default true)
}

export class Metrics {
  readonly registry = new Registry();
  private readonly peers: Gauge<'state'>;
  private readonly reconcileDuration: Histogram;
  private readonly reconciles: Counter<'result'>;
  private readonly eventToProgrammed: Histogram;
  private readonly repairs: Counter<'kind'>;
  private readonly leaseExpiry: Gauge;
  private readonly netlinkErrors: Counter<'op'>;
  private readonly invalidLeases: Counter<'reason'>;
  private readonly ready: Gauge;
  private peerSource: (() => Record<PeerGaugeState, number>) | undefined;
  private readonly policyApply: Histogram;
  private readonly policyApplies: Counter<'result'>;
  private readonly policies: Gauge<'state'>;
  private readonly policyDrops: Counter<'direction' | 'namespace' | 'policy' | 'reason'>;
  private policyDropSource: (() => Promise<DropCounter[]>) | undefined;
  /** Last counter value per chain, to turn kernel counters (reset when a chain is re-created) into increments. */
  private readonly dropSeen = new Map<string, number>();

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    this.peers = new Gauge({ name: 'twill_peers', help: 'Peer leases by state: valid (passed validation), invalid (ignored), programmed (in the kernel)', labelNames: ['state'], registers,
      collect: () => { const c = this.peerSource?.(); if (c) this.setPeers(c); } });
    this.reconcileDuration = new Histogram({ name: 'twill_reconcile_duration_seconds', help: 'Duration of one full reconcile (desired vs kernel, diff, apply)', buckets: LATENCY_BUCKETS, registers });
    this.reconciles = new Counter({ name: 'twill_reconciles_total', help: 'Reconciles by result', labelNames: ['result'], registers });
    this.eventToProgrammed = new Histogram({ name: 'twill_lease_event_to_programmed_seconds', help: 'Time from a lease watch event to its entries being in the kernel', buckets: LATENCY_BUCKETS, registers });
    this.repairs = new Counter({ name: 'twill_kernel_repairs_total', help: 'Kernel entries re-created after someone else changed or deleted them, by kind', labelNames: ['kind'], registers });
    this.leaseExpiry = new Gauge({ name: 'twill_lease_expiry_timestamp_seconds', help: 'When our subnet lease expires (unix seconds; 0 = no expiry / no lease)', registers });
    this.netlinkErrors = new Counter({ name: 'twill_netlink_errors_total', help: 'Netlink requests the kernel refused, by operation', labelNames: ['op'], registers });
    this.invalidLeases = new Counter({ name: 'twill_invalid_leases_total', help: 'Peer leases ignored by validation, by reason', labelNames: ['reason'], registers });
    this.ready = new Gauge({ name: 'twill_ready', help: '1 when the agent is ready (lease held, subnet file written, reconciled, traffic rules in place)', registers });
    this.policyApply = new Histogram({ name: 'twill_policy_apply_duration_seconds', help: 'NetworkPolicy: time from compiling the watched objects to the rules being in the kernel', buckets: LATENCY_BUCKETS, registers });
    this.policyApplies = new Counter({ name: 'twill_policy_applies_total', help: 'NetworkPolicy rule updates by result', labelNames: ['result'], registers });
    this.policies = new Gauge({ name: 'twill_network_policies', help: 'NetworkPolicies by state on this node: active (isolating a local pod), idle (isolating none here), rejected (cannot be expressed; left out whole)', labelNames: ['state'], registers });
    this.policyDrops = new Counter({ name: 'twill_policy_dropped_packets_total', help: 'Packets dropped by NetworkPolicy on this node, by direction, namespace and the policies isolating the pod (reason policy), or by the new-pod guard (reason unknown-pod)', labelNames: ['direction', 'namespace', 'policy', 'reason'], registers,
      collect: async () => { await this.collectDrops(); } });
    for (const s of ['valid', 'invalid', 'programmed'] as const) this.peers.set({ state: s }, 0);
    for (const k of REPAIR_KINDS) this.repairs.inc({ kind: k }, 0);
    for (const r of ['ok', 'error'] as const) this.reconciles.inc({ result: r }, 0);
    this.ready.set(0);
    this.leaseExpiry.set(0);
    // The event-loop lag monitor samples every 10 ms by default: 100 wake-ups a second on an
    // otherwise idle agent. One sample a second is plenty for a scrape every 15–60 s.
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 });
  }

  /** Where the peer gauge reads its counts at scrape time. */
  setPeerSource(source: () => Record<PeerGaugeState, number>): void {
    this.peerSource = source;
  }

  observePolicyApply(seconds: number, ok: boolean): void {
    if (ok) this.policyApply.observe(seconds);
    this.policyApplies.inc({ result: ok ? 'ok' : 'error' });
  }

  setPolicies(c: { active: number; idle: number; rejected: number }): void {
    for (const [state, n] of Object.entries(c)) this.policies.set({ state }, n);
  }

  /** Where the drop counter reads the kernel's counters at scrape time. */
  setPolicyDropSource(source: () => Promise<DropCounter[]>): void {
    this.policyDropSource = source;
  }

  private async collectDrops(): Promise<void> {
    const counters = await this.policyDropSource?.().catch(() => undefined);
    for (const c of counters ?? []) {
      const id = `${c.chain}\n${c.reason}\n${c.direction}`;
      const before = this.dropSeen.get(id) ?? 0;
      // A smaller value: the chain was re-created (its counter restarted from 0).
      const delta = c.packets >= before ? c.packets - before : c.packets;
      this.dropSeen.set(id, c.packets);
      this.policyDrops.inc({ direction: c.direction, namespace: c.namespace, policy: c.policies.map((k) => k.slice(k.indexOf('/') + 1)).join(','), reason: c.reason }, delta);
    }
  }

  setPeers(counts: Record<PeerGaugeState, number>): void {
    for (const [state, n] of Object.entries(counts)) this.peers.set({ state }, n);
  }

  observeReconcile(seconds: number, ok: boolean): void {
    this.reconcileDuration.observe(seconds);
    this.reconciles.inc({ result: ok ? 'ok' : 'error' });
  }

  observeEventToProgrammed(seconds: number): void {
    this.eventToProgrammed.observe(seconds);
  }

  repair(kind: RepairKind, n = 1): void {
    this.repairs.inc({ kind }, n);
  }

  /** `expiration` in ms since epoch, as in Lease; null/undefined = no expiry. */
  setLeaseExpiry(expiration: number | null | undefined): void {
    this.leaseExpiry.set(expiration == null ? 0 : expiration / 1000);
  }

  netlinkError(op: string, n = 1): void {
    this.netlinkErrors.inc({ op }, n);
  }

  invalidLease(reason: string): void {
    this.invalidLeases.inc({ reason });
  }

  setReady(ready: boolean): void {
    this.ready.set(ready ? 1 : 0);
  }

  /** Refreshes the gauges that mirror AgentStatus. */
  updateFromStatus(s: AgentStatus): void {
    const invalid = s.peers.filter((p) => p.state === 'invalid').length;
    const programmed = s.peers.filter((p) => p.state === 'programmed').length;
    this.setPeers({ valid: s.peers.length - invalid, invalid, programmed });
    this.setReady(s.ready);
    this.setLeaseExpiry(s.lease.expiration);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }
}
