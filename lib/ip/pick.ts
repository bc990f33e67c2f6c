// Picking a free subnet uniformly at random from [SubnetMin, SubnetMax].
//
// Instead of "sample random indexes, fall back to a scan", taken prefixes are turned into
// sorted, merged index intervals; the free count is then exact and the k-th free index is
// found by walking the intervals. That is O(t log t) for t taken prefixes whatever the range
// size (a /8 cut into /24s, a v6 /48 cut into /64s), is exactly uniform (which spreads
// concurrent agents apart and keeps create-if-absent conflicts rare), and never reports
// "exhausted" while a subnet is still free. Taken prefixes of any length are honoured: a
// reservation of a /20 inside a /16 of /24s blocks all sixteen /24s it covers.
import { BITS } from './addr.js';
import { nthSubnet, subnetIndexRange, type Prefix } from './prefix.js';

export interface PickRange {
  network: Prefix;
  subnetLen: number;
  /** Inclusive subnet index bounds (subnet n = network + n * size). */
  min: bigint;
  max: bigint;
}

type Interval = [bigint, bigint];

/** Taken subnet indexes within [min, max] as sorted, merged, inclusive intervals. */
export function takenIntervals(range: PickRange, taken: Iterable<Prefix>): Interval[] {
  const raw: Interval[] = [];
  for (const p of taken) {
    const r = subnetIndexRange(range.network, range.subnetLen, p);
    if (!r) continue;
    const lo = r[0] > range.min ? r[0] : range.min;
    const hi = r[1] < range.max ? r[1] : range.max;
    if (lo <= hi) raw.push([lo, hi]);
  }
  raw.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: Interval[] = [];
  for (const iv of raw) {
    const last = out[out.length - 1];
    if (last && iv[0] <= last[1] + 1n) { if (iv[1] > last[1]) last[1] = iv[1]; }
    else out.push([iv[0], iv[1]]);
  }
  return out;
}

export function freeSubnetCount(range: PickRange, taken: Iterable<Prefix>): bigint {
  const total = range.max - range.min + 1n;
  return takenIntervals(range, taken).reduce((n, [lo, hi]) => n - (hi - lo + 1n), total);
}

/** A uniformly random bigint in [0, n) from a [0,1) source (rejection-sampled 32-bit chunks). */
export function randomBelow(n: bigint, random: () => number = Math.random): bigint {
  if (n <= 0n) throw new RangeError('randomBelow: n must be positive');
  if (n <= 1n << 52n) return BigInt(Math.floor(random() * Number(n)));
  const bits = n.toString(2).length;
  for (;;) {
    let v = 0n;
    for (let b = 0; b < bits; b += 32) v = (v << 32n) | BigInt(Math.floor(random() * 2 ** 32));
    v &= (1n << BigInt(bits)) - 1n;
    if (v < n) return v;
  }
}

/** Index of the k-th (0-based) free subnet given merged taken intervals. */
function kthFree(range: PickRange, intervals: Interval[], k: bigint): bigint {
  let idx = range.min + k;
  for (const [lo, hi] of intervals) {
    if (lo > idx) break;
    idx += hi - lo + 1n;
  }
  return idx;
}

/** A random free subnet in the range, or undefined when every subnet is taken. */
export function pickFreeSubnet(range: PickRange, taken: Iterable<Prefix>, random: () => number = Math.random): Prefix | undefined {
  if (range.subnetLen > BITS[range.network.family] || range.min > range.max) return undefined;
  const intervals = takenIntervals(range, taken);
  const free = intervals.reduce((n, [lo, hi]) => n - (hi - lo + 1n), range.max - range.min + 1n);
  if (free <= 0n) return undefined;
  return nthSubnet(range.network, range.subnetLen, kthFree(range, intervals, randomBelow(free, random)));
}
