// An in-memory SubnetManager for unit tests of the agent. It stores entries exactly as etcd
// does (key in flannel's form, JSON value, optional lease), allocates with the same pure
// planner (allocate.ts) and produces events with the same rules (events.ts), so what the
// agent sees here is what it sees against etcd — minus the network.
//
// Time is the injected Clock; nothing runs in the background. Expired leases are swept at the
// start of every call and by expireDue(): a test advances its clock, then calls expireDue()
// (or any method) and the watchers see 'removed'. Test hooks change the store behind the
// agent's back: putLease/putRaw/removeLease/expireLease, failNext, relist.
import type { NetConf } from '../config/types.js';
import type { Lease, LeaseAttrs, LeaseEvent, SubnetManager, Undecodable } from './types.js';
import { parseNetConf } from '../config/net-conf.js';
import { abortError, TwillError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { systemClock, type Clock } from '../retry.js';
import { decodeLease, encodeLeaseAttrs } from '../lease/codec.js';
import { subnetKeyPath, subnetsDir } from '../lease/key.js';
import { canonicalAttrs, planAcquire, storedEntry, type StoredEntry } from './allocate.js';
import { deleteEvents, putEvents } from './events.js';
import { AsyncQueue } from './queue.js';

export interface MemorySubnetManagerOptions {
  /** net-conf.json text (parsed on every getNetworkConfig, like etcd) or a parsed NetConf. */
  config?: string | NetConf;
  clock?: Clock;
  random?: () => number;
  /** Lease lifetime (default 24 h). */
  leaseTtlMs?: number;
  /** Key prefix (default "/twill.io/network"); keys look like etcd's. */
  prefix?: string;
  logger?: Logger;
}

export type MemoryOp = 'getNetworkConfig' | 'acquireLease' | 'renewLease' | 'releaseLease';

interface Entry {
  key: string;
  value: string;
  leaseId: string | undefined;   // undefined: a reservation
  expiration: number | null;
  created: number;               // as etcd's create revision: set when the key is created
}

export interface PutLeaseInput {
  subnet: string;
  ipv6Subnet?: string;
  attrs: LeaseAttrs;
  /** A reservation: no lease, never expires. */
  reservation?: boolean;
  /** Lifetime of this lease (default: the manager's TTL). */
  ttlMs?: number;
}

export class MemorySubnetManager implements SubnetManager {
  readonly name = 'memory' as const;
  private config: string | NetConf | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly ttlMs: number;
  private readonly prefix: string;
  private readonly log: Logger;
  private readonly entries = new Map<string, Entry>();
  private readonly watchers = new Set<AsyncQueue<LeaseEvent>>();
  private readonly failures = new Map<MemoryOp, unknown[]>();
  private nextLeaseId = 1;
  private revision = 0;
  private closed = false;

  constructor(opts: MemorySubnetManagerOptions = {}) {
    this.config = opts.config;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.ttlMs = opts.leaseTtlMs ?? 24 * 3600_000;
    this.prefix = (opts.prefix ?? '/twill.io/network').replace(/\/+$/, '');
    this.log = opts.logger ?? silentLogger();
  }

  // ---- SubnetManager ----

  async getNetworkConfig(signal: AbortSignal): Promise<NetConf> {
    this.enter('getNetworkConfig', signal);
    if (this.config === undefined) {
      throw new TwillError('CONFIG_MISSING', `no network config at ${this.prefix}/config (memory store)`);
    }
    return typeof this.config === 'string' ? parseNetConf(this.config, this.log) : this.config;
  }

  async acquireLease(attrs: LeaseAttrs, opts: { previousSubnet?: string; signal: AbortSignal }): Promise<Lease> {
    const conf = await this.getNetworkConfig(opts.signal);
    this.enter('acquireLease', opts.signal);
    const ours = canonicalAttrs(attrs);
    const decision = planAcquire({ conf, entries: this.storedEntries(), attrs: ours, random: this.random, ...(opts.previousSubnet ? { previousSubnet: opts.previousSubnet } : {}) });
    for (const n of decision.notes) this.log.warn(n);
    for (const s of decision.stale) this.delete(s.key);
    const plan = decision.plan;
    if (plan.kind === 'reuse') {
      const e = this.entries.get(plan.entry.key)!;
      this.write({ ...e, value: encodeLeaseAttrs(ours), expiration: e.leaseId === undefined ? null : this.clock.now() + this.ttlMs });
      return this.leaseOf(plan.entry.key)!;
    }
    const key = subnetKeyPath(this.prefix, plan);
    this.write({ key, value: encodeLeaseAttrs(ours), leaseId: String(this.nextLeaseId++), expiration: this.clock.now() + this.ttlMs });
    this.log.info({ subnet: plan.subnet, ipv6Subnet: plan.ipv6Subnet, source: plan.source }, 'lease acquired');
    return this.leaseOf(key)!;
  }

  async renewLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    this.enter('renewLease', signal);
    const e = this.entries.get(lease.key);
    if (!e) throw this.lost(lease, 'its key was deleted or expired');
    if (e.leaseId !== lease.leaseId) throw this.lost(lease, 'the key is now held under another lease');
    if (e.leaseId !== undefined) e.expiration = this.clock.now() + this.ttlMs;
    return this.leaseOf(lease.key)!;
  }

  async *watchLeases(signal: AbortSignal): AsyncIterable<LeaseEvent> {
    if (this.closed) return;
    const q = new AsyncQueue<LeaseEvent>();
    this.sweep();
    this.pushSnapshot(q);
    this.watchers.add(q);
    try {
      for (;;) {
        const ev = await q.next(signal);
        if (!ev) return;
        yield ev;
      }
    } finally {
      this.watchers.delete(q);
    }
  }

  async releaseLease(lease: Lease, signal: AbortSignal): Promise<void> {
    this.enter('releaseLease', signal);
    const e = this.entries.get(lease.key);
    if (e && e.leaseId !== undefined && e.leaseId === lease.leaseId) this.delete(lease.key);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.watchers) q.close();
    this.watchers.clear();
  }

  // ---- test hooks ----

  /** Replaces the stored net-conf.json (undefined: missing). Watchers are not notified (as in etcd). */
  setConfig(config: string | NetConf | undefined): void {
    this.config = config;
  }

  /** Adds or replaces a peer lease (or reservation); watchers see 'added'. */
  putLease(input: PutLeaseInput): Lease {
    const key = subnetKeyPath(this.prefix, input);
    const reservation = input.reservation ?? false;
    this.write({
      key,
      value: encodeLeaseAttrs(input.attrs),
      leaseId: reservation ? undefined : String(this.nextLeaseId++),
      expiration: reservation ? null : this.clock.now() + (input.ttlMs ?? this.ttlMs),
    });
    return this.leaseOf(key)!;
  }

  /** Stores a raw value under `<prefix>/subnets/<name>` (e.g. broken JSON → watchers see 'invalid'). */
  putRaw(name: string, value: string, opts: { reservation?: boolean } = {}): void {
    const reservation = opts.reservation ?? false;
    this.write({
      key: subnetsDir(this.prefix) + name,
      value,
      leaseId: reservation ? undefined : String(this.nextLeaseId++),
      expiration: reservation ? null : this.clock.now() + this.ttlMs,
    });
  }

  /** Deletes the entry with this key or subnet; watchers see 'removed'. */
  removeLease(keyOrSubnet: string): Lease | undefined {
    const key = this.find(keyOrSubnet);
    if (key === undefined) return undefined;
    const prev = this.leaseOf(key);
    this.delete(key);
    return prev;
  }

  /** Makes the lease with this key or subnet expire now; watchers see 'removed'. */
  expireLease(keyOrSubnet: string): Lease | undefined {
    const key = this.find(keyOrSubnet);
    const e = key === undefined ? undefined : this.entries.get(key);
    if (!e || e.expiration === null) return undefined;
    e.expiration = this.clock.now();
    return this.sweep().find((l) => l.key === key);
  }

  /** Removes every lease whose expiration has passed on the clock; returns them. */
  expireDue(): Lease[] {
    return this.sweep();
  }

  /** Current valid leases (what a fresh snapshot would hold). */
  leases(): Lease[] {
    this.sweep();
    return [...this.entries.keys()].map((k) => this.leaseOf(k)).filter((l): l is Lease => !!l);
  }

  /** The next call of `op` rejects with `err` (default: an ETCD "unavailable" error). Stackable. */
  failNext(op: MemoryOp, err: unknown = new TwillError('ETCD', `memory store: injected failure of ${op}`)): void {
    const list = this.failures.get(op) ?? [];
    list.push(err);
    this.failures.set(op, list);
  }

  /** Every open watch emits a fresh snapshot, as after an etcd relist. */
  relist(): void {
    this.sweep();
    for (const q of this.watchers) this.pushSnapshot(q);
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  // ---- internals ----

  private enter(op: MemoryOp, signal: AbortSignal): void {
    if (signal.aborted) throw abortError(signal);
    if (this.closed) throw new TwillError('INTERNAL', 'memory subnet manager is closed');
    const injected = this.failures.get(op)?.shift();
    if (injected !== undefined) throw injected;
    this.sweep();
  }

  private lost(lease: Lease, why: string): TwillError {
    return new TwillError('LEASE_LOST', `lease for ${lease.subnet || lease.ipv6Subnet} lost: ${why}; call acquireLease again (it keeps the subnet if it is still free)`);
  }

  private find(keyOrSubnet: string): string | undefined {
    if (this.entries.has(keyOrSubnet)) return keyOrSubnet;
    for (const e of this.storedEntries()) if (e.subnet === keyOrSubnet || e.ipv6Subnet === keyOrSubnet) return e.key;
    return undefined;
  }

  private storedEntries(): StoredEntry[] {
    const out: StoredEntry[] = [];
    for (const e of this.entries.values()) {
      const s = storedEntry(e.key, e.value, this.meta(e));
      if (s) out.push(s);
    }
    return out;
  }

  private meta(e: Entry): { expiration: number | null; leaseId?: string; created: number } {
    return e.leaseId === undefined ? { expiration: null, created: e.created } : { expiration: e.expiration, leaseId: e.leaseId, created: e.created };
  }

  private leaseOf(key: string): Lease | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    const d = decodeLease(key, e.value, this.meta(e));
    return d.ok ? d.value : undefined;
  }

  private write(input: Omit<Entry, 'created'> & { created?: number }): void {
    const prev = this.leaseOf(input.key);
    const old = this.entries.get(input.key);
    const before = old?.value;
    this.revision++;
    const e: Entry = { ...input, created: old?.created ?? this.revision };
    this.entries.set(e.key, e);
    if (before === e.value) return; // a renewal-like rewrite: no event (etcd: keepalive)
    this.emit(putEvents(e.key, prev, decodeLease(e.key, e.value, this.meta(e))));
  }

  private delete(key: string): void {
    const prev = this.leaseOf(key);
    if (!this.entries.delete(key)) return;
    this.revision++;
    this.emit(deleteEvents(key, prev));
  }

  private sweep(): Lease[] {
    const now = this.clock.now();
    const gone: Lease[] = [];
    for (const e of [...this.entries.values()]) {
      if (e.expiration === null || e.expiration > now) continue;
      const l = this.leaseOf(e.key);
      this.delete(e.key);
      if (l) gone.push(l);
    }
    return gone;
  }

  private emit(events: LeaseEvent[]): void {
    for (const q of this.watchers) for (const ev of events) q.push(ev);
  }

  private pushSnapshot(q: AsyncQueue<LeaseEvent>): void {
    const leases: Lease[] = [];
    const invalid: Undecodable[] = [];
    for (const e of this.entries.values()) {
      const d = decodeLease(e.key, e.value, this.meta(e));
      if (d.ok) leases.push(d.value);
      else invalid.push({ key: e.key, reason: d.reason });
    }
    q.push({ type: 'snapshot', leases, invalid });
  }
}
