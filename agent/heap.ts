// Returns garbage to the OS when the agent goes quiet. A full reconcile at 20k peers allocates
// ≈150 MiB that is garbage a moment later (the listing, 80k-entry plans and dirty sets); lease
// events and scrapes add more. V8 frees old-space and large-object pages only in a full
// (mark-compact) GC, which it starts when the heap grows again; an idle agent never allocates
// enough for that, so the resident set stayed near the peak: ≈205 MiB at 20k peers, against
// ≈130–175 MiB after one full GC. With --compact-on-every-full-gc (bin/twilld.js) that GC also
// evacuates fragmented pages and returns them, the work V8's memory reducer would otherwise do
// with GCs of its own at moments of its choosing (it is off; bin/twilld.js has the numbers).
// HeapCompactor runs one full GC when the used heap has grown well past the live size the last
// one left, checked every few seconds (one cheap heap-statistics read) and after full passes.
// `gc` is taken with --expose-gc set at run time (the pattern Node documents for
// v8.setFlagsFromString); if that fails, compaction is a no-op and only memory is affected.
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let gc: (() => void) | null | undefined;

function fullGc(): (() => void) | null {
  if (gc !== undefined) return gc;
  try {
    setFlagsFromString('--expose-gc');
    const fn: unknown = runInNewContext('gc');
    gc = typeof fn === 'function' ? (fn as () => void) : null;
  } catch {
    gc = null;
  }
  return gc;
}

/** No lease event programmed for this long: the agent is quiet. */
const QUIET_MS = 5_000;

export class HeapCompactor {
  private live = 0;
  private readonly slack: number;
  /** A full pass left garbage: compact at the next quiet check. */
  private wanted = false;

  /** `slackBytes`: garbage tolerated before a check compacts (default 24 MiB). */
  constructor(slackBytes = 24 << 20) { this.slack = slackBytes; }

  /** One full GC now (synchronous); false when unavailable. */
  compact(): boolean {
    const fn = fullGc();
    if (!fn) return false;
    fn();
    this.live = getHeapStatistics().used_heap_size;
    return true;
  }

  /** Compacts when the used heap exceeds the last live size by more than the slack. */
  check(): boolean {
    return getHeapStatistics().used_heap_size > this.live + this.slack ? this.compact() : false;
  }

  wantCompaction(): void { this.wanted = true; }

  /**
   * The periodic check. A full GC at 20k peers stops the loop for ≈100 ms, so it never runs while
   * lease events are being programmed (measured: a compaction in the middle of 200 events pushed
   * the event-latency p99 from ≈16 ms to 100 ms): only once nothing was reconciled for QUIET_MS.
   */
  tick(lastReconcileAt: number | undefined, now: number): void {
    if (now - (lastReconcileAt ?? 0) < QUIET_MS) return;
    if (this.wanted) { this.wanted = false; this.compact(); } else this.check();
  }
}
