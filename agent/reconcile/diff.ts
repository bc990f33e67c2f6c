// diffState: desired vs observed → an ordered plan. Pure. Writes use replace semantics (never
// add-then-ignore-EEXIST) in ARP → FDB → nexthop → route order; deletes run route → nexthop →
// FDB → ARP so a route never points at a missing neighbour. Only keys in `scope` are compared
// when given (targeted diffs after a lease or kernel event); otherwise everything.
import type { NlChange } from '../../lib/netlink/types.js';
import { sameEntry, WRITE_ORDER, type DesiredState, type Entry, type EntryKind } from './state.js';

/** What the diff reads of the observed state (a KernelState or the reconciler's ObservedState). */
export interface ObservedView {
  get(key: string): Entry | undefined;
  keys(): Iterable<string>;
  /** Fast path: true when the cache holds exactly `e` (or its source) for `key`. */
  recorded?(key: string, e: Entry): boolean;
}

export interface PlanStep { change: NlChange; entry: Entry; reason: 'missing' | 'drifted' | 'unwanted' }

export interface Plan {
  steps: PlanStep[];
  writes: number;
  deletes: number;
}

export function diffState(desired: DesiredState, observed: ObservedView, scope?: Iterable<string>): Plan {
  const writes = new Map<EntryKind, PlanStep[]>();
  const deletes = new Map<EntryKind, PlanStep[]>();
  const push = (m: Map<EntryKind, PlanStep[]>, s: PlanStep) => {
    const list = m.get(s.entry.kind);
    if (list) list.push(s); else m.set(s.entry.kind, [s]);
  };
  const compare = (want: Entry | undefined, have: Entry | undefined) => {
    if (want && !have) push(writes, { change: { verb: 'replace', object: want.object }, entry: want, reason: 'missing' });
    else if (want && have && !sameEntry(want, have)) push(writes, { change: { verb: 'replace', object: want.object }, entry: want, reason: 'drifted' });
    else if (!want && have) push(deletes, { change: { verb: 'delete', object: have.object }, entry: have, reason: 'unwanted' });
  };
  if (scope) {
    for (const key of new Set(scope)) compare(desired.get(key), observed.get(key));
  } else {
    // Desired entries are walked once (a view builds them on demand); their keys then tell
    // which observed entries nobody wants.
    const wanted = new Set<string>();
    for (const want of desired.values()) {
      wanted.add(want.key);
      if (!observed.recorded?.(want.key, want)) compare(want, observed.get(want.key));
    }
    for (const key of observed.keys()) if (!wanted.has(key)) compare(undefined, observed.get(key));
  }
  // Appended one by one: push(...list) passes every step as an argument, and a list of one kind
  // somewhere between 125k and 250k steps (Node 20; that many peers) overflows the stack.
  const steps: PlanStep[] = [];
  for (const kind of [...WRITE_ORDER].reverse()) for (const s of deletes.get(kind) ?? []) steps.push(s);
  let nWrites = 0;
  for (const kind of WRITE_ORDER) {
    const list = writes.get(kind) ?? [];
    nWrites += list.length;
    for (const s of list) steps.push(s);
  }
  return { steps, writes: nWrites, deletes: steps.length - nWrites };
}
