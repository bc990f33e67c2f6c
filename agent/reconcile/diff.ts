// diffState: desired vs observed → an ordered plan. Pure. Writes use replace semantics (never
// add-then-ignore-EEXIST) in ARP → FDB → nexthop → route order; deletes run route → nexthop →
// FDB → ARP so a route never points at a missing neighbour. Only keys in `scope` are compared
// when given (targeted diffs after a lease or kernel event); otherwise everything.
import type { NlChange } from '../../lib/netlink/types.js';
import { sameEntry, WRITE_ORDER, type Entry, type EntryKind, type KernelState } from './state.js';

export interface PlanStep { change: NlChange; entry: Entry; reason: 'missing' | 'drifted' | 'unwanted' }

export interface Plan {
  steps: PlanStep[];
  writes: number;
  deletes: number;
}

export function diffState(desired: KernelState, observed: KernelState, scope?: Iterable<string>): Plan {
  const writes = new Map<EntryKind, PlanStep[]>();
  const deletes = new Map<EntryKind, PlanStep[]>();
  const push = (m: Map<EntryKind, PlanStep[]>, s: PlanStep) => {
    const list = m.get(s.entry.kind);
    if (list) list.push(s); else m.set(s.entry.kind, [s]);
  };
  const visit = (key: string) => {
    const want = desired.get(key);
    const have = observed.get(key);
    if (want && !have) push(writes, { change: { verb: 'replace', object: want.object }, entry: want, reason: 'missing' });
    else if (want && have && !sameEntry(want, have)) push(writes, { change: { verb: 'replace', object: want.object }, entry: want, reason: 'drifted' });
    else if (!want && have) push(deletes, { change: { verb: 'delete', object: have.object }, entry: have, reason: 'unwanted' });
  };
  if (scope) {
    for (const key of new Set(scope)) visit(key);
  } else {
    for (const key of desired.keys()) visit(key);
    for (const key of observed.keys()) if (!desired.has(key)) visit(key);
  }
  const steps: PlanStep[] = [];
  for (const kind of [...WRITE_ORDER].reverse()) steps.push(...(deletes.get(kind) ?? []));
  let nWrites = 0;
  for (const kind of WRITE_ORDER) {
    const list = writes.get(kind) ?? [];
    nWrites += list.length;
    steps.push(...list);
  }
  return { steps, writes: nWrites, deletes: steps.length - nWrites };
}
