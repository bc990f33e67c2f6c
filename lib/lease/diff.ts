// Lease set diff: what changed between two views of the store (e.g. the state before a relist
// and the snapshot after it). Leases are identified by their key; a lease is "changed" when
// its subnets or attributes differ. Expiration alone does not count: renewals happen all the
// time and never change what is programmed.
import type { Lease } from '../subnet/types.js';
import { sameAttrs } from './codec.js';

export interface LeaseDiff {
  added: Lease[];    // keys only in `next`
  changed: Lease[];  // keys in both whose data differs (the `next` version)
  removed: Lease[];  // keys only in `prev` (the `prev` version)
}

export function sameLeaseData(a: Lease, b: Lease): boolean {
  return a.subnet === b.subnet && (a.ipv6Subnet ?? '') === (b.ipv6Subnet ?? '') && sameAttrs(a.attrs, b.attrs);
}

export function diffLeases(prev: Iterable<Lease>, next: Iterable<Lease>): LeaseDiff {
  const before = new Map<string, Lease>();
  for (const l of prev) before.set(l.key, l);
  const out: LeaseDiff = { added: [], changed: [], removed: [] };
  const seen = new Set<string>();
  for (const l of next) {
    seen.add(l.key);
    const old = before.get(l.key);
    if (!old) out.added.push(l);
    else if (!sameLeaseData(old, l)) out.changed.push(l);
  }
  for (const [k, l] of before) if (!seen.has(k)) out.removed.push(l);
  return out;
}
