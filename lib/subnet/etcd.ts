// EtcdSubnetManager: leases in etcd, in flannel's layout, so a cluster can move from flannel to
// twill (or run both readers) on the same store: `<prefix>/config` holds net-conf.json and
// `<prefix>/subnets/10.244.3.0-24` holds the lease JSON, attached to an etcd lease.
//
// Acquisition (planAcquire decides, this file carries it out):
//   * create: grant an etcd lease, then one transaction that puts the key only if
//     (a) the key does not exist (create_revision == 0) and (b) nothing under subnets/ was
//     created or modified since the list we planned from (mod_revision < list revision + 1
//     over the whole range). (b) makes the plan itself atomic: no overlap can slip in — not a
//     dual-stack entry sharing only our IPv4 half, not a reservation of another length. A lost
//     race revokes the grant, waits a random moment and plans again from a fresh list.
//   * reuse (an entry carries our PublicIP): keep the subnet. A live etcd lease is kept (one
//     keepalive; rewritten only if our attributes changed, so peers see no event when an agent
//     restarts); an expired one is replaced by a fresh grant. Writes are guarded by the key's
//     mod_revision.
//   * reservations (keys without an etcd lease) are never taken by another node; the node whose
//     PublicIP they carry uses them as they are: no etcd lease, expiration null.
// Renewal contract: renewLease does one keepalive and checks that the key is still ours. If the
// etcd lease expired, the key was deleted or another lease now holds it, it throws LEASE_LOST
// (and revokes our orphaned etcd lease). The agent's lease keeper then calls acquireLease with
// the old subnet as previousSubnet: it gets the same subnet back if it is still free (the
// datapath is kept), and must exit non-zero if it gets a different one.
import type { EtcdGrpc, EtcdKeyValue as IKeyValue } from './etcd-grpc.js';
import type { NetConf } from '../config/types.js';
import type { Lease, LeaseAttrs, LeaseEvent, SubnetManager } from './types.js';
import { parseNetConf } from '../config/net-conf.js';
import { abortError, errorMessage, isTwillError, TwillError } from '../errors.js';
import { silentLogger, type Logger } from '../log.js';
import { systemClock, type Clock } from '../retry.js';
import { decodeLeaseAttrs, encodeLeaseAttrs } from '../lease/codec.js';
import { subnetKeyPath, subnetsDir } from '../lease/key.js';
import { canonicalAttrs, entryOf, isOurs, planAcquire, type AcquirePlan, type StoredEntry } from './allocate.js';
import { createEtcdClient, etcdError, prefixEnd } from './etcd-client.js';
import { listLeases, watchSubnets, type Listing } from './etcd-watch.js';

export const DEFAULT_ETCD_PREFIX = '/twill.io/network';

/** An acquisition listing older than this is not reused by the watch (it would replay more). */
const PRIMED_MAX_AGE_MS = 10_000;

export interface EtcdSubnetManagerOptions {
  endpoints: string[];
  /** Key prefix (default "/twill.io/network"; "/coreos.com/network" reads flannel's data). */
  prefix?: string | undefined;
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  /** Never logged. */
  password?: string | undefined;
  /** etcd lease TTL in seconds (default 86400). */
  leaseTtlSec?: number | undefined;
  /** Deadline of each etcd call (default 5000 ms). */
  requestTimeoutMs?: number | undefined;
  /** Give up acquiring after this many lost races (default 100; LEASE_CONFLICT). */
  maxAcquireAttempts?: number | undefined;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  random?: (() => number) | undefined;
  /** Test seam: runs after each watch relist, before the watch opens (tests compact here). */
  afterList?: ((revision: bigint) => Promise<void> | void) | undefined;
  /** How often an open lease watch checks that etcd still answers (default 10 s; tests shorten it). */
  watchLivenessMs?: number | undefined;
}

type Pair = { subnet: string; ipv6Subnet?: string };

export class EtcdSubnetManager implements SubnetManager {
  readonly name = 'etcd' as const;
  readonly prefix: string;
  private readonly client: EtcdGrpc;
  private readonly endpoints: string[];
  private readonly dir: string;
  private readonly ttlSec: number;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly afterList: EtcdSubnetManagerOptions['afterList'];
  private readonly livenessMs: number | undefined;
  private readonly closing = new AbortController();
  private primedListing: { listing: Listing; at: number } | undefined;
  private watching = false;
  /** etcd leases this manager acquired or reused: the only ones whose TTL its watch looks up. */
  private readonly ownLeaseIds = new Set<string>();

  constructor(o: EtcdSubnetManagerOptions) {
    this.endpoints = [...o.endpoints];
    this.prefix = (o.prefix || DEFAULT_ETCD_PREFIX).replace(/\/+$/, '');
    this.dir = subnetsDir(this.prefix);
    this.ttlSec = o.leaseTtlSec ?? 86_400;
    this.timeoutMs = o.requestTimeoutMs ?? 5000;
    this.maxAttempts = o.maxAcquireAttempts ?? 100;
    this.clock = o.clock ?? systemClock;
    this.log = o.logger ?? silentLogger();
    this.random = o.random ?? Math.random;
    this.afterList = o.afterList;
    this.livenessMs = o.watchLivenessMs;
    this.client = createEtcdClient({
      endpoints: this.endpoints, caFile: o.caFile, certFile: o.certFile, keyFile: o.keyFile,
      username: o.username, password: o.password, requestTimeoutMs: this.timeoutMs,
    });
  }

  // ---- SubnetManager ----

  async getNetworkConfig(signal: AbortSignal): Promise<NetConf> {
    const key = `${this.prefix}/config`;
    const res = await this.call(`read ${key}`, signal, () => this.client.range({ key: Buffer.from(key) }));
    const kv = res.kvs[0];
    if (!kv) {
      throw new TwillError('CONFIG_MISSING', `no network config at ${key} in etcd (${this.endpoints.join(',')}); write net-conf.json there, ` +
        `e.g. etcdctl put ${key} '{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}'`);
    }
    try {
      return parseNetConf(kv.value.toString(), this.log);
    } catch (err) {
      if (!isTwillError(err)) throw err;
      throw new TwillError(err.code, `${key}: ${err.message}`, { field: err.field, value: err.value, rule: err.rule, cause: err });
    }
  }

  async acquireLease(attrs: LeaseAttrs, opts: { previousSubnet?: string; signal: AbortSignal }): Promise<Lease> {
    const conf = await this.getNetworkConfig(opts.signal);
    const ours = canonicalAttrs(attrs);
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const lease = await this.tryAcquire(conf, ours, opts.previousSubnet, opts.signal);
      if (lease) {
        this.log.info({ subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, attempt, reservation: lease.expiration === null }, 'etcd lease acquired');
        return lease;
      }
      const delay = Math.floor(this.random() * Math.min(1000, 20 * 2 ** Math.min(attempt, 6)));
      this.log.debug({ attempt, retryInMs: delay }, 'lost a lease race; planning again from a fresh view');
      await this.clock.sleep(delay, opts.signal);
    }
    throw new TwillError('LEASE_CONFLICT', `could not acquire a lease under ${this.dir} after ${this.maxAttempts} attempts: other agents kept changing the subnets first`);
  }

  async renewLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    if (lease.leaseId === undefined) return this.checkReservation(lease, signal);
    const t0 = this.clock.now();
    const ttl = await this.call('keepalive', signal, () => this.client.leaseKeepAliveOnce(lease.leaseId!));
    if (ttl <= 0) throw this.lost(lease, `etcd lease ${lease.leaseId} expired or was revoked`);
    const kv = await this.getKey(lease.key, signal);
    if (!kv) {
      await this.revoke(lease.leaseId);
      throw this.lost(lease, 'its key was deleted');
    }
    if (kv.lease !== lease.leaseId) throw this.lost(lease, `the key is now held under etcd lease ${kv.lease} by ${this.holder(kv)}`);
    return { ...lease, expiration: t0 + ttl * 1000 };
  }

  watchLeases(signal: AbortSignal): AsyncIterable<LeaseEvent> {
    this.watching = true;
    return watchSubnets({
      client: this.client, dir: this.dir, clock: this.clock, log: this.log, random: this.random,
      createTimeoutMs: 2 * this.timeoutMs, afterList: this.afterList, primed: () => this.takePrimed(), livenessMs: this.livenessMs,
      ttlFor: (id) => this.ownLeaseIds.has(id),
    }, AbortSignal.any([signal, this.closing.signal]));
  }

  async releaseLease(lease: Lease, signal: AbortSignal): Promise<void> {
    if (lease.leaseId === undefined) {
      this.log.info({ key: lease.key }, 'lease is a reservation; left in place');
      return;
    }
    const key = Buffer.from(lease.key);
    await this.call('release', signal, () => this.client.txn({
      compare: [{ key, target: 'LEASE', result: 'EQUAL', lease: lease.leaseId }],
      success: [{ request_delete_range: { key } }],
      failure: [],
    }));
    await this.revoke(lease.leaseId);
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.client.close();
  }

  // ---- acquisition ----

  private async tryAcquire(conf: NetConf, ours: LeaseAttrs, previousSubnet: string | undefined, signal: AbortSignal): Promise<Lease | undefined> {
    const view = await this.call(`list ${this.dir}`, signal, () => listLeases(this.client, this.dir));
    const byKey = new Map<string, IKeyValue>();
    const entries: StoredEntry[] = [];
    for (const le of view.entries) {
      const e = entryOf(le.key, le.decoded, le.lease === '0');
      if (e && le.kv) { entries.push(e); byKey.set(le.key, le.kv); }
    }
    const decision = planAcquire({ conf, entries, attrs: ours, random: this.random, ...(previousSubnet ? { previousSubnet } : {}) });
    for (const note of decision.notes) this.log.warn(note);
    for (const s of decision.stale) await this.deleteIfUnchanged(byKey.get(s.key)!, signal);
    const value = encodeLeaseAttrs(ours);
    const plan = decision.plan;
    const lease = plan.kind === 'reuse'
      ? await this.reuse(plan.entry, byKey.get(plan.entry.key)!, ours, value, signal)
      : await this.create(plan, ours, value, view.revision, signal);
    if (lease && decision.stale.length === 0) this.prime(view, plan.kind === 'create' ? lease : undefined);
    return lease;
  }

  /** Keeps the acquisition's listing for the watch's first snapshot (see primed in WatchDeps).
   *  A created lease is added to it, so the snapshot already holds our own key; the watch,
   *  starting at the listing's revision + 1, then sees our put and anything else since. */
  private prime(view: Listing, created: Lease | undefined): void {
    if (this.watching) return;   // only a watch that has not listed yet can use it
    const entries = created ? [...view.entries, { key: created.key, lease: created.leaseId ?? '0', decoded: { ok: true as const, value: { ...created } } }] : view.entries;
    this.primedListing = { listing: { revision: view.revision, entries }, at: this.clock.now() };
  }

  private takePrimed(): Listing | undefined {
    const p = this.primedListing;
    this.primedListing = undefined;
    return p && this.clock.now() - p.at <= PRIMED_MAX_AGE_MS ? p.listing : undefined;
  }

  private async create(plan: Extract<AcquirePlan, { kind: 'create' }>, ours: LeaseAttrs, value: string, revision: bigint, signal: AbortSignal): Promise<Lease | undefined> {
    const pair: Pair = plan.ipv6Subnet ? { subnet: plan.subnet, ipv6Subnet: plan.ipv6Subnet } : { subnet: plan.subnet };
    const key = subnetKeyPath(this.prefix, pair);
    const t0 = this.clock.now();
    const grant = await this.call('grant lease', signal, () => this.client.leaseGrant(this.ttlSec));
    // Ours before the put: the watch may deliver the put before the txn's answer arrives here,
    // and it looks up the TTL only of leases it knows to be ours.
    this.ownLeaseIds.add(grant.ID);
    const res = await this.call(`create ${key}`, signal, () => this.client.txn({
      compare: [
        { key: Buffer.from(key), target: 'CREATE', result: 'EQUAL', create_revision: 0 },
        { key: Buffer.from(this.dir), range_end: prefixEnd(this.dir), target: 'MOD', result: 'LESS', mod_revision: (revision + 1n).toString() },
      ],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: grant.ID } }],
      failure: [],
    })).catch(async (err: unknown) => { await this.revoke(grant.ID); throw err; });
    if (!res.succeeded) { await this.revoke(grant.ID); return undefined; }
    if (plan.source === 'previous') this.log.info({ subnet: plan.subnet }, 'reusing the previous subnet');
    return { ...pair, attrs: ours, expiration: t0 + Number(grant.TTL) * 1000, key, leaseId: grant.ID };
  }

  private async reuse(entry: StoredEntry, kv: IKeyValue, ours: LeaseAttrs, value: string, signal: AbortSignal): Promise<Lease | undefined> {
    const pair: Pair = entry.ipv6Subnet ? { subnet: entry.subnet, ipv6Subnet: entry.ipv6Subnet } : { subnet: entry.subnet };
    const base = { ...pair, attrs: ours, key: entry.key };
    const changed = kv.value.toString() !== value;
    if (kv.lease === '0') {
      if (changed && !(await this.putIfUnchanged(kv, value, undefined, signal))) return undefined;
      return { ...base, expiration: null };
    }
    const t0 = this.clock.now();
    const ttl = await this.call('keepalive', signal, () => this.client.leaseKeepAliveOnce(kv.lease));
    if (ttl > 0) {
      this.ownLeaseIds.add(kv.lease);   // before the put, as in create()
      if (changed && !(await this.putIfUnchanged(kv, value, kv.lease, signal))) { this.ownLeaseIds.delete(kv.lease); return undefined; }
      return { ...base, expiration: t0 + ttl * 1000, leaseId: kv.lease };
    }
    const grant = await this.call('grant lease', signal, () => this.client.leaseGrant(this.ttlSec));
    this.ownLeaseIds.add(grant.ID);
    if (!(await this.putIfUnchanged(kv, value, grant.ID, signal))) { await this.revoke(grant.ID); return undefined; }
    return { ...base, expiration: t0 + Number(grant.TTL) * 1000, leaseId: grant.ID };
  }

  private async putIfUnchanged(kv: IKeyValue, value: string, leaseId: string | undefined, signal: AbortSignal): Promise<boolean> {
    const res = await this.call(`update ${kv.key.toString()}`, signal, () => this.client.txn({
      compare: [{ key: kv.key, target: 'MOD', result: 'EQUAL', mod_revision: kv.mod_revision }],
      success: [{ request_put: { key: kv.key, value: Buffer.from(value), ...(leaseId ? { lease: leaseId } : {}) } }],
      failure: [],
    }));
    return res.succeeded;
  }

  private async deleteIfUnchanged(kv: IKeyValue, signal: AbortSignal): Promise<void> {
    await this.call(`delete ${kv.key.toString()}`, signal, () => this.client.txn({
      compare: [{ key: kv.key, target: 'MOD', result: 'EQUAL', mod_revision: kv.mod_revision }],
      success: [{ request_delete_range: { key: kv.key } }],
      failure: [],
    }));
  }

  // ---- helpers ----

  private async checkReservation(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const kv = await this.getKey(lease.key, signal);
    if (!kv) throw this.lost(lease, 'the reservation was deleted');
    if (kv.lease !== '0') throw this.lost(lease, `the key is now held under etcd lease ${kv.lease} by ${this.holder(kv)}`);
    const d = decodeLeaseAttrs(kv.value.toString());
    if (!d.ok || !isOurs({ ...lease, attrs: d.value }, lease.attrs)) throw this.lost(lease, `the reservation now names ${this.holder(kv)}`);
    return { ...lease, expiration: null };
  }

  private async getKey(key: string, signal: AbortSignal): Promise<IKeyValue | undefined> {
    const res = await this.call(`read ${key}`, signal, () => this.client.range({ key: Buffer.from(key) }));
    return res.kvs[0];
  }

  private holder(kv: IKeyValue): string {
    const d = decodeLeaseAttrs(kv.value.toString());
    return d.ok ? (d.value.publicIP || d.value.publicIPv6 || 'another node') : 'an undecodable entry';
  }

  private lost(lease: Lease, why: string): TwillError {
    return new TwillError('LEASE_LOST', `lease for ${lease.subnet || lease.ipv6Subnet} (${lease.key}) lost: ${why}; ` +
      'call acquireLease with it as previousSubnet (the subnet is kept if still free)');
  }

  /** Best-effort revoke: a failure only leaves an unused lease to expire on its own. */
  private async revoke(id: string): Promise<void> {
    this.ownLeaseIds.delete(id);
    try {
      await this.client.leaseRevoke(id);
    } catch (err) {
      if (!/lease not found/i.test(errorMessage(err))) this.log.warn({ leaseId: id, err: errorMessage(err) }, 'could not revoke etcd lease; it will expire');
    }
  }

  /** Runs one etcd call: aborts with the signal, wraps failures as ETCD errors naming the call. */
  private async call<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    if (signal.aborted) throw abortError(signal);
    if (this.closing.signal.aborted) throw new TwillError('ETCD', 'etcd subnet manager is closed');
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([fn(), aborted]);
    } catch (err) {
      throw etcdError(what, this.endpoints, err);
    } finally {
      signal.removeEventListener('abort', onAbort!);
    }
  }
}
