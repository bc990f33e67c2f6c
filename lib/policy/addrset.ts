// Address ranges on bigint: an ipBlock is its CIDR minus its excepts, a peer set is the union of
// pod addresses and ipBlocks. The result is canonical (sorted, disjoint, adjacent ranges merged),
// which is what an nftables interval set without auto-merge needs (no two elements may overlap)
// and what makes "same addresses" mean "same elements" when two models are diffed.
import { formatIp, maxValue, type Family } from '../ip/addr.js';
import { lastAddr, type Prefix } from '../ip/prefix.js';
import type { AddrRange, AddrSet } from './types.js';

export interface Interval { family: Family; from: bigint; to: bigint }

export function prefixInterval(p: Prefix): Interval {
  return { family: p.family, from: p.addr, to: lastAddr(p) };
}

/** `base` minus every interval in `cut` (same family), as disjoint intervals. */
export function subtract(base: Interval, cut: readonly Interval[]): Interval[] {
  let parts: Interval[] = [base];
  for (const c of cut) {
    if (c.family !== base.family) continue;
    const next: Interval[] = [];
    for (const p of parts) {
      if (c.to < p.from || c.from > p.to) { next.push(p); continue; }
      if (c.from > p.from) next.push({ family: p.family, from: p.from, to: c.from - 1n });
      if (c.to < p.to) next.push({ family: p.family, from: c.to + 1n, to: p.to });
    }
    parts = next;
  }
  return parts;
}

/** Sorted, merged (overlapping or adjacent) intervals of one family. */
export function normalize(list: readonly Interval[]): Interval[] {
  const sorted = [...list].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last && iv.from <= last.to + 1n) { if (iv.to > last.to) last.to = iv.to; } else out.push({ ...iv });
  }
  return out;
}

export function toAddrSet(list: readonly Interval[]): AddrSet {
  const fmt = (f: Family) => normalize(list.filter((i) => i.family === f)).map((i): AddrRange => ({
    from: formatIp({ family: f, value: i.from }),
    to: formatIp({ family: f, value: i.to }),
  }));
  return { v4: fmt(4), v6: fmt(6) };
}

export function wholeFamily(family: Family): Interval {
  return { family, from: 0n, to: maxValue(family) };
}
