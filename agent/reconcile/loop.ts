// The reconcile loop. Triggers (lease events, kernel notifications, the resync timer) only mark
// keys dirty; one loop turns dirty keys into a plan by diffing the desired state against an
// observed-state cache and applies it. The cache is a full kernel dump taken at start, on
// notification overflow and on every periodic resync, kept current in between by our own apply
// results and by kernel notifications — so an event costs a diff of a few keys, not a dump of
// 80k entries, while correctness still rests on full level-triggered resyncs.
import type { Logger } from '../../lib/log.js';
import type { NetlinkHandle, NlEvent, NlObject } from '../../lib/netlink/types.js';
import { Backoff, type Clock } from '../../lib/retry.js';
import { errorMessage } from '../../lib/errors.js';
import { diffState, type Plan } from './diff.js';
import { foreignKind, observeOwned, ownedEntry, SLICE } from './observe.js';
import { ObservedState, entryKey, isEntry, sameEntry, type DesiredState, type Entry, type EntryKind } from './state.js';
import type { ReconcileStatus } from '../state.js';

export interface ReconcileHooks {
  reconciled?(s: ReconcileStatus): void;
  repaired?(kind: EntryKind, n: number): void;
  netlinkError?(op: string): void;
  leaseLatency?(seconds: number): void;
  duration?(seconds: number, ok: boolean): void;
}

export interface ReconcilerDeps {
  handle: NetlinkHandle;
  logger: Logger;
  clock: Clock;
  desired: () => DesiredState;
  device: () => { index: number | undefined; nexthops: boolean };
  /** Runs before every full pass (the backend verifies its device here). */
  prepare?: () => Promise<void>;
  hooks?: ReconcileHooks;
}

export class Reconciler {
  private observed: ObservedState | undefined;
  private all = false;
  private readonly keys = new Set<string>();
  private readonly kernelKeys = new Set<string>();
  private readonly triggers = new Set<string>();
  private leaseTimes: number[] = [];
  private wake: (() => void) | undefined;
  private readonly retryBackoff = new Backoff({ initialMs: 500, maxMs: 30_000 });
  private retryPending = false;
  private readonly d: ReconcilerDeps;
  /** Bumped whenever the cache is replaced or dropped: a background resync of an older one is void. */
  private epoch = 0;
  /** A background resync is running / another one was asked for meanwhile / one just finished. */
  private resyncing = false;
  private resyncAgain = false;
  private resyncDone = false;
  runs = 0;

  constructor(deps: ReconcilerDeps) { this.d = deps; }

  /** Marks keys (or everything) dirty. `leaseEventAt` feeds the lease→programmed histogram. */
  request(keys: Iterable<string> | 'all', trigger: string, leaseEventAt?: number): void {
    // A pending full pass covers every key: a relist's 80k dirty keys need not be collected.
    if (keys === 'all') { this.all = true; this.keys.clear(); } else if (!this.all) for (const k of keys) this.keys.add(k);
    this.triggers.add(trigger);
    if (leaseEventAt !== undefined) this.leaseTimes.push(leaseEventAt);
    this.wake?.();
  }

  /** Drops the cache so the next run starts from a fresh kernel dump. */
  invalidate(trigger: string): void {
    this.observed = undefined;
    this.epoch++;
    this.request('all', trigger);
  }

  /**
   * The periodic full resync, without stopping lease work. A full pass holds the loop for its
   * kernel dump and its diff of every entry (measured at 5k peers, 20k entries: 310–1100 ms on a
   * busy 2-core machine, 32–380 ms of it the diff), and a lease event arriving meanwhile waited
   * for all of it. The cache is valid, though (kept current by our writes and the kernel's
   * notifications), so it stays in use: the kernel is read in the background, one table at a
   * time, and the loop keeps serving dirty keys in between. Every key the cache changes meanwhile
   * is noted; the dump, with those keys taken from the cache instead, becomes the new cache. A
   * sliced walk over desired and observed entries then finds what differs, and those keys go
   * through the loop as dirty keys of trigger `resync` (counted as repairs). With no cache (at
   * start, after an overflow or a failure) this is the blocking full pass it always was.
   */
  resync(trigger = 'resync'): void {
    if (!this.observed || this.all) return this.invalidate(trigger);
    if (this.resyncing) { this.resyncAgain = true; return; }
    this.resyncing = true;
    void this.backgroundResync(trigger).finally(() => {
      this.resyncing = false;
      if (this.resyncAgain) { this.resyncAgain = false; this.resync(trigger); }
    });
  }

  private async backgroundResync(trigger: string): Promise<void> {
    const breathe = () => new Promise<void>((r) => setImmediate(r));
    const epoch = this.epoch;
    const live = this.observed!;
    const stale = () => this.epoch !== epoch || this.observed !== live;
    const t0 = performance.now();
    const phase = { observeMs: 0, mergeMs: 0, scanMs: 0 };
    let t = t0;
    const lap = (k: keyof typeof phase) => { const now = performance.now(); phase[k] = Math.round((now - t) * 10) / 10; t = now; };
    const touched = live.track();
    const dumpMs: number[] = [];
    let dump: Map<string, Entry> | undefined;
    try {
      await this.d.prepare?.();
      if (stale()) return;
      const dev = this.d.device();
      dump = await observeOwned(this.d.handle, dev.index, dev.nexthops, this.d.desired(), breathe, dumpMs);
    } catch (err) {
      if (stale()) return;
      this.d.logger.error({ err: errorMessage(err), trigger }, 'resync failed; falling back to a full pass');
      this.d.hooks?.netlinkError?.('dump');
      this.invalidate(trigger);
      return;
    } finally {
      live.untrack();
      lap('observeMs');
    }
    if (stale()) return;
    // Synchronous from here to the swap, so no key changes between the merge and the swap.
    for (const key of touched) {
      const e = live.get(key);
      if (e) dump.set(key, e); else dump.delete(key);
    }
    const fresh = new ObservedState(dump);
    dump.clear();
    this.observed = fresh;
    this.epoch++;
    lap('mergeMs');
    // What differs, in slices; a key a lease changes meanwhile is dirty anyway, and every key
    // found here is diffed again when its pass runs.
    const differ: string[] = [];
    const desired = this.d.desired();
    // The cheap scan when it can tell (synchronous: ≈20k identity tests), else the full walk.
    const scan = desired.holds && this.scanSlots(fresh, desired, differ) ? 'slots' : 'walk';
    if (scan === 'walk' && !await this.scanAll(fresh, desired, differ, breathe)) return;
    lap('scanMs');
    this.d.logger.info({ trigger, differ: differ.length, entries: fresh.size, scan, ms: Math.round((performance.now() - t0) * 10) / 10, ...phase, dumpMs }, 'resync read the kernel');
    for (const key of differ) this.kernelKeys.add(key);
    this.resyncDone = true;
    this.request(differ, trigger);
  }

  /**
   * The cheap scan: an entry the dump found as desired is cached as its source; it is still in
   * sync while that source is its owner's (an identity test, nothing built). Other slots (a
   * local entry, or one that differed) are compared one by one. If the in-sync slots are fewer
   * than the desired entries, some are missing from the kernel: false (the full walk finds them).
   */
  private scanSlots(fresh: ObservedState, desired: DesiredState, differ: string[]): boolean {
    let inSync = 0;
    for (const [key, v] of fresh.slots()) {
      if (!isEntry(v)) {
        if (desired.holds!(v)) { inSync++; continue; }
      } else {
        const want = desired.get(key);
        if (want && sameEntry(want, v)) { inSync++; continue; }
      }
      differ.push(key);
    }
    if (inSync === desired.size) return true;
    differ.length = 0;
    return false;
  }

  /** The full walk over desired, then observed entries, yielding every SLICE; false once the cache is replaced. */
  private async scanAll(fresh: ObservedState, desired: DesiredState, differ: string[], breathe: () => Promise<void>): Promise<boolean> {
    const wanted = new Set<string>();
    let n = 0;
    for (const want of desired.values()) {
      wanted.add(want.key);
      if (!fresh.recorded(want.key, want)) {
        const have = fresh.get(want.key);
        if (!have || !sameEntry(want, have)) differ.push(want.key);
      }
      if (++n % SLICE === 0) { await breathe(); if (this.observed !== fresh) return false; }
    }
    const observedKeys = [...fresh.keys()];
    for (const key of observedKeys) {
      if (!wanted.has(key) && fresh.has(key) && !desired.has(key)) differ.push(key);
      if (++n % SLICE === 0) { await breathe(); if (this.observed !== fresh) return false; }
    }
    return true;
  }

  /** Keeps the cache current from a kernel notification and asks for repair where needed. */
  onKernelEvent(ev: NlEvent): void {
    if (ev.type === 'overflow') return this.invalidate('kernel:overflow');
    const e = ownedEntry(ev.object, this.d.device().index);
    if (!e) {
      if (ev.type === 'new') this.onForeignReplacement(ev.object);
      return;
    }
    if (!this.observed) return;
    // The kernel drops routes through a deleted nexthop without telling anyone: do it ourselves.
    if (ev.type === 'del' && e.kind === 'nexthop') this.dropRoutesVia((e.object as { id: number }).id);
    if (ev.type === 'new') {
      // Usually the echo of our own write (FDB notifications carry no sender, so no filter drops
      // them; 20k of them follow a 20k-peer start): apply() already recorded it. The kernel
      // agreeing with the cache changes nothing — a key whose desired entry differs is dirty
      // already — so the desired state is not even consulted.
      if (this.observed.matches(e.key, e)) return;
    }
    const want = this.d.desired().get(e.key);
    if (ev.type === 'del') {
      if (!this.observed.has(e.key) && !want) return;
      this.observed.delete(e.key);
      if (!want) return;
    } else {
      const wanted = want !== undefined && sameEntry(want, e);
      this.observed.set(e.key, wanted ? want : e);   // the desired entry: its compact form
      if (wanted) return;
    }
    this.kernelKeys.add(e.key);
    this.request([e.key], `kernel:${e.kind}`);
  }

  /**
   * A route or nexthop that is not ours, under the key of one of ours (`ip route replace` of a
   * peer's subnet through another device, `ip nexthop replace` without our protocol), replaced
   * ours: the kernel announces only the newcomer and never says that ours went. Ours is gone.
   */
  private onForeignReplacement(o: NlObject): void {
    const kind = foreignKind(o);
    if (!kind || !this.observed) return;
    const key = entryKey(kind, o);
    this.observed.delete(key);   // (routes through a replaced nexthop stay: they follow its id)
    if (!this.d.desired().has(key)) return;
    this.kernelKeys.add(key);
    this.request([key], `kernel:${kind}`);
  }

  private dropRoutesVia(nhid: number): void {
    const gone = this.observed?.routesVia(nhid) ?? [];
    for (const key of gone) { this.observed!.delete(key); this.kernelKeys.add(key); }
    if (gone.length) this.request(gone, 'kernel:route');
  }

  /**
   * Whether every given desired entry (one peer's) is in the kernel as desired (per-peer status).
   * An in-sync entry is recorded as its own source, so this is an identity test per entry.
   */
  isProgrammed(wanted: Iterable<Entry>): boolean {
    if (!this.observed) return false;
    for (const want of wanted) {
      if (this.observed.recorded(want.key, want)) continue;
      const have = this.observed.get(want.key);
      if (!have || !sameEntry(want, have)) return false;
    }
    return true;
  }

  async run(signal: AbortSignal): Promise<void> {
    // One abort listener for the loop's lifetime (one per wait would pile up on the signal).
    const onAbort = () => this.wake?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await this.loop(signal);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!this.all && this.keys.size === 0 && !this.resyncDone) {
        await new Promise<void>((resolve) => { this.wake = resolve; });
        this.wake = undefined;
        continue;
      }
      // Let events that arrived in the same tick join this run.
      await new Promise<void>((r) => setImmediate(r));
      await this.runOnce();
    }
  }

  /** One pass over whatever is dirty now. Exposed for tests and the start-up reconcile. */
  async runOnce(): Promise<ReconcileStatus> {
    const started = performance.now();
    const full = this.all || !this.observed;
    const scope = full ? undefined : [...this.keys];
    const kernelKeys = new Set(this.kernelKeys);
    const trigger = [...this.triggers].join(',') || 'resync';
    const leaseTimes = this.leaseTimes;
    this.all = false; this.keys.clear(); this.kernelKeys.clear(); this.triggers.clear(); this.leaseTimes = []; this.resyncDone = false;
    let plan: Plan = { steps: [], writes: 0, deletes: 0 };
    let errors = 0;
    let ok = true;
    // Phase times for the log: a full pass's observe (kernel dump) and diff are the decision; the
    // apply is the kernel write itself (what `ip -batch` does in the benchmark's anchor).
    const phase = { observeMs: 0, diffMs: 0, applyMs: 0 };
    let t = started;
    const lap = (k: keyof typeof phase) => { const now = performance.now(); phase[k] = Math.round((now - t) * 10) / 10; t = now; };
    try {
      if (full) {
        await this.d.prepare?.();
        const dev = this.d.device();
        this.observed = new ObservedState(await observeOwned(this.d.handle, dev.index, dev.nexthops, this.d.desired()));
        this.epoch++;
      }
      lap('observeMs');
      plan = diffState(this.d.desired(), this.observed!, scope);
      lap('diffMs');
      errors = await this.apply(plan, full && /resync|overflow/.test(trigger), kernelKeys);
      lap('applyMs');
    } catch (err) {
      ok = false;
      this.observed = undefined;
      this.epoch++;
      this.d.logger.error({ err: errorMessage(err), trigger }, 'reconcile failed; will retry');
      this.d.hooks?.netlinkError?.('dump');
      this.scheduleRetry(undefined);
    }
    const durationMs = performance.now() - started;
    const status: ReconcileStatus = { at: this.d.clock.now(), durationMs, ok: ok && errors === 0, changes: plan.steps.length - errors, errors, trigger };
    this.runs++;
    this.d.hooks?.duration?.(durationMs / 1000, status.ok);
    if (ok) for (const t of leaseTimes) this.d.hooks?.leaseLatency?.((this.d.clock.now() - t) / 1000);
    if (plan.steps.length > 0 || !status.ok || full) {
      this.d.logger.info({ trigger, writes: plan.writes, deletes: plan.deletes, errors, ms: Math.round(durationMs * 10) / 10, ...(full ? phase : {}) }, 'reconciled');
    }
    this.d.hooks?.reconciled?.(status);
    return status;
  }

  private async apply(plan: Plan, resync: boolean, kernelKeys: Set<string>): Promise<number> {
    if (plan.steps.length === 0) return 0;
    // Writes are recorded before they are sent, so their echoes (which arrive while the batch
    // is in flight) find them and return early; a refused write restores what was there.
    const observed = this.observed!;
    const before = new Map<number, Entry>();
    plan.steps.forEach((step, i) => {
      if (step.change.verb === 'delete') return;
      const prev = observed.get(step.entry.key);
      if (prev) before.set(i, prev);
      observed.set(step.entry.key, step.entry);
    });
    const results = await this.d.handle.apply(plan.steps.map((s) => s.change));
    const failed: string[] = [];
    const repairs = new Map<EntryKind, number>();
    results.forEach((r, i) => {
      const step = plan.steps[i]!;
      if (r.ok) {
        if (step.change.verb === 'delete') observed.delete(step.entry.key);
        else if (!observed.recorded(step.entry.key, step.entry)) observed.set(step.entry.key, step.entry);
        if (resync || kernelKeys.has(step.entry.key)) repairs.set(step.entry.kind, (repairs.get(step.entry.kind) ?? 0) + 1);
      } else {
        if (step.change.verb !== 'delete' && observed.recorded(step.entry.key, step.entry)) {
          const prev = before.get(i);
          if (prev) observed.set(step.entry.key, prev); else observed.delete(step.entry.key);
        }
        failed.push(step.entry.key);
        this.d.hooks?.netlinkError?.(`${step.change.verb}-${step.entry.kind}`);
        this.d.logger.warn({ key: step.entry.key, verb: step.change.verb, errno: r.code, err: r.message }, 'kernel refused a change; will retry');
      }
    });
    for (const [kind, n] of repairs) this.d.hooks?.repaired?.(kind, n);
    if (failed.length) this.scheduleRetry(failed); else this.retryBackoff.reset();
    return failed.length;
  }

  private scheduleRetry(keys: string[] | undefined): void {
    if (this.retryPending) { if (keys) for (const k of keys) this.keys.add(k); return; }
    this.retryPending = true;
    const delay = this.retryBackoff.next();
    void this.d.clock.sleep(delay).then(() => {
      this.retryPending = false;
      if (keys) this.request(keys, 'retry'); else this.invalidate('retry');
    });
  }
}
