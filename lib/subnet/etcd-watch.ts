// The etcd lease watch: list `<prefix>/subnets/` (→ snapshot), watch from the list revision + 1
// (→ added/removed/invalid), and on ANY interruption — stream error, end, a cancel (a watch on
// a compacted revision is cancelled with an empty reason), a failed TTL lookup — back off and
// start over with a fresh list. Relisting is the only recovery path: it cannot miss an event
// and needs no reasoning about what a broken stream may have dropped. It runs until the
// signal aborts.
//
// The first list may be "primed": the lease acquisition has just listed and decoded the same
// directory, so the watch takes that listing (plus our freshly created key) and opens at its
// revision + 1. Watching from any consistent list's revision is correct — whatever changed
// since arrives as events — so start-up lists and decodes 20k subnets once instead of twice.
//
// One watch stream per attempt (etcd's gRPC Watch, lib/subnet/etcd-grpc.ts) whose every failure
// surfaces here, never a client that reconnects behind our back.
import type { EtcdGrpc, EtcdKeyValue as IKeyValue, WatchResponse as IWatchResponse, WatchStream } from './etcd-grpc.js';
import type { Lease, LeaseEvent, Undecodable } from './types.js';
import type { Logger } from '../log.js';
import { Backoff, type Clock } from '../retry.js';
import { errorMessage } from '../errors.js';
import { decodeLease, type DecodeResult } from '../lease/codec.js';
import { deleteEvents, putEvents } from './events.js';
import { leaseTtls, listPrefix, prefixEnd } from './etcd-client.js';
import { AsyncQueue } from './queue.js';

export interface WatchDeps {
  client: EtcdGrpc;
  dir: string;                 // "<prefix>/subnets/"
  clock: Clock;
  log: Logger;
  random: () => number;
  /** How long to wait for the watch to be created (default 10 s). */
  createTimeoutMs: number;
  /**
   * How often an open watch checks that etcd still answers (default 10 s). The watch stream has no
   * keepalive pings: a hung or silently dead etcd would leave the watch waiting for minutes (TCP
   * keepalive), so a probe that fails — or lands on another endpoint — ends the watch and relists.
   */
  livenessMs?: number | undefined;
  /** Test seam: runs after each list, before the watch is opened. */
  afterList?: ((revision: bigint) => Promise<void> | void) | undefined;
  /** A listing made moments ago (by the acquisition), taken instead of listing again. The
   *  watch starts at its revision + 1, so anything written since arrives as events. */
  primed?: (() => Listing | undefined) | undefined;
  /** Which etcd leases' remaining TTL to look up, one call each (default: all); the others'
   *  keys get expiration undefined (lib/subnet/types.ts, Lease.expiration). */
  ttlFor?: ((leaseId: string) => boolean) | undefined;
}

interface Snapshot { revision: bigint; leases: Lease[]; invalid: Undecodable[]; known: Map<string, Lease> }

/** One listed key, decoded; a leased entry's expiration is filled in by the snapshot. */
export interface ListedEntry { key: string; lease: string; decoded: DecodeResult<Lease>; kv?: IKeyValue }
/** A consistent list of `dir` at `revision`. */
export interface Listing { revision: bigint; entries: ListedEntry[] }

/** Expiration of a key held under etcd lease `lease` ('0': none), from looked-up TTLs. */
function expiryOf(d: WatchDeps, lease: string, ttls: Map<string, number>, now: number): number | null | undefined {
  if (lease === '0') return null;
  return wantsTtl(d, lease) ? now + Math.max(0, ttls.get(lease) ?? -1) * 1000 : undefined;
}

const wantsTtl = (d: WatchDeps, lease: string): boolean => lease !== '0' && (d.ttlFor?.(lease) ?? true);

function expirationOf(d: WatchDeps, kv: IKeyValue, ttls: Map<string, number>): { expiration: number | null | undefined; leaseId?: string; created: number } {
  const expiration = expiryOf(d, kv.lease, ttls, d.clock.now());
  const created = Number(kv.create_revision);
  return kv.lease === '0' ? { expiration, created } : { expiration, leaseId: kv.lease, created };
}

function decodeKv(d: WatchDeps, kv: IKeyValue, ttls: Map<string, number>): DecodeResult<Lease> {
  return decodeLease(kv.key.toString(), kv.value.toString(), expirationOf(d, kv, ttls));
}

/** Lists and decodes `dir` once (expirations left at 0): the acquisition plans from this
 *  listing and hands it to the watch, so a start-up lists and decodes the subnets once. */
export async function listLeases(client: EtcdGrpc, dir: string): Promise<Listing> {
  const { revision, kvs } = await listPrefix(client, dir);
  const entries = new Array<ListedEntry>(kvs.length);
  for (let i = 0; i < kvs.length; i++) {
    const kv = kvs[i]!;
    const key = kv.key.toString();
    // The create revision orders conflicting leases: the one created first wins (agent/peers.ts).
    const created = Number(kv.create_revision);
    const meta = kv.lease === '0' ? { expiration: null, created } : { expiration: 0, leaseId: kv.lease, created };
    entries[i] = { key, lease: kv.lease, decoded: decodeLease(key, kv.value.toString(), meta), kv };
  }
  return { revision, entries };
}

async function snapshot(d: WatchDeps): Promise<Snapshot> {
  const { revision, entries } = d.primed?.() ?? await listLeases(d.client, d.dir);
  const ttls = await leaseTtls(d.client, entries.filter((e) => wantsTtl(d, e.lease)).map((e) => e.lease));
  const now = d.clock.now();
  const s: Snapshot = { revision, leases: [], invalid: [], known: new Map() };
  for (const e of entries) {
    const r = e.decoded;
    if (!r.ok) { s.invalid.push({ key: e.key, reason: r.reason }); continue; }
    r.value.expiration = expiryOf(d, e.lease, ttls, now);   // null for a reservation
    s.leases.push(r.value);
    s.known.set(r.value.key, r.value);
  }
  return s;
}

type Item = { res: IWatchResponse } | { err: Error };

class RawWatch {
  private readonly q = new AsyncQueue<Item>();
  private stream: WatchStream | undefined;
  private readonly alive = new AbortController();

  async open(d: WatchDeps, startRevision: bigint, signal: AbortSignal): Promise<void> {
    const timer = new AbortController();
    const both = AbortSignal.any([signal, timer.signal]);
    void d.clock.sleep(d.createTimeoutMs, both).then(() => timer.abort(), () => undefined);
    try {
      this.stream = await d.client.watch(
        { key: Buffer.from(d.dir), range_end: prefixEnd(d.dir), start_revision: startRevision.toString(), prev_kv: true },
        (res) => this.q.push({ res }),
        (err) => this.q.push({ err }),
      );
      const first = await this.next(both);
      if (!first && !signal.aborted) throw new Error(`watch not created within ${d.createTimeoutMs} ms`);
      if (first && !first.created) throw new Error('watch stream answered before confirming creation');
    } finally {
      timer.abort();
    }
    void this.liveness(d, AbortSignal.any([signal, this.alive.signal]));
  }

  private async liveness(d: WatchDeps, stop: AbortSignal): Promise<void> {
    const endpoint = d.client.endpoint;
    try {
      for (;;) {
        await d.clock.sleep(d.livenessMs ?? 10_000, stop);
        try {
          await d.client.range({ key: Buffer.from(d.dir), limit: 1 });
        } catch (err) {
          if (!stop.aborted) this.q.push({ err: new Error(`etcd stopped answering the watch's liveness check: ${errorMessage(err)}`) });
          return;
        }
        if (d.client.endpoint !== endpoint) {
          this.q.push({ err: new Error(`etcd ${endpoint} stopped answering; now using ${d.client.endpoint}`) });
          return;
        }
      }
    } catch {
      // aborted: the watch is closed
    }
  }

  /** Next response with events; throws on any error/cancel; undefined when aborted. */
  async next(signal: AbortSignal): Promise<IWatchResponse | undefined> {
    const item = await this.q.next(signal);
    if (!item) return undefined;
    if ('err' in item) throw item.err;
    const res = item.res;
    if (res.canceled || res.compact_revision !== '0') {
      throw new Error(`watch cancelled by etcd: ${res.cancel_reason || `reason empty (compacted at revision ${res.compact_revision || '?'})`}`);
    }
    return res;
  }

  close(): void {
    this.alive.abort();
    this.q.close();
    this.stream?.cancel();
  }
}

async function eventsOf(d: WatchDeps, res: IWatchResponse, known: Map<string, Lease>): Promise<LeaseEvent[]> {
  const puts = res.events.filter((e) => e.type === 'PUT' && wantsTtl(d, e.kv.lease));
  const ttls = puts.length ? await leaseTtls(d.client, puts.map((e) => e.kv.lease)) : new Map<string, number>();
  const out: LeaseEvent[] = [];
  for (const e of res.events) {
    const key = e.kv.key.toString();
    if (e.type === 'DELETE') {
      out.push(...deleteEvents(key, known.get(key)));
      known.delete(key);
      continue;
    }
    const r = decodeKv(d, e.kv, ttls);
    out.push(...putEvents(key, known.get(key), r));
    if (r.ok) known.set(key, r.value); else known.delete(key);
  }
  return out;
}

/** Lease events for everything under `dir`, forever (until `signal` aborts). */
export async function* watchSubnets(d: WatchDeps, signal: AbortSignal): AsyncGenerator<LeaseEvent> {
  const backoff = new Backoff({ initialMs: 100, maxMs: 2000, random: d.random });
  while (!signal.aborted) {
    const watch = new RawWatch();
    try {
      const snap = await snapshot(d);
      await d.afterList?.(snap.revision);
      await watch.open(d, snap.revision + 1n, signal);
      if (signal.aborted) return;
      if (backoff.attempts > 0) d.log.info({ leases: snap.leases.length, revision: snap.revision.toString() }, 'etcd lease watch restored');
      backoff.reset();
      yield { type: 'snapshot', leases: snap.leases, invalid: snap.invalid };
      for (;;) {
        const res = await watch.next(signal);
        if (!res) return;
        yield* await eventsOf(d, res, snap.known);
      }
    } catch (err) {
      if (signal.aborted) return;
      const delay = backoff.next();
      d.log.warn({ err: errorMessage(err), retryInMs: delay, attempt: backoff.attempts }, 'etcd lease watch interrupted; relisting');
      await d.clock.sleep(delay, signal).catch(() => undefined);
    } finally {
      watch.close();
    }
  }
}
