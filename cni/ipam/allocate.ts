// Address allocation from the node subnet: host-local's rules exactly (range = network+1 ..
// broadcast-1 for IPv4, .. last address for IPv6; gateway excluded; round robin from the
// last reserved address), so addresses are not reused right away after a pod goes (stale ARP
// and conntrack entries on peers expire first). The search is pure; the store does the I/O.
import { CniError, CNI_ERR } from '../skel/errors.js';
import { formatIp, type Family, type IpAddr } from '../../lib/ip/addr.js';
import { cidrNetwork, type IpCidr } from '../../lib/ip/cidr.js';
import { formatPrefix, lastAddr } from '../../lib/ip/prefix.js';
import { matches, type DiskStore } from './store.js';

export interface Pool {
  family: Family;
  subnet: IpCidr;    // node subnet; `value` is the gateway
  rangeId: string;   // host-local's range-set index: "0", "1"
}

export interface Allocation {
  pool: Pool;
  ip: IpAddr;
  reused: boolean;   // the record existed already (a retried ADD)
}

export interface Range {
  start: bigint;
  end: bigint;
  gateway: bigint;
}

export function rangeOf(pool: Pool): Range {
  const net = cidrNetwork(pool.subnet);
  const last = lastAddr(net);
  return {
    start: net.addr + 1n,
    end: pool.family === 4 ? last - 1n : last,
    gateway: pool.subnet.value,
  };
}

export function poolSize(pool: Pool): bigint {
  const r = rangeOf(pool);
  const n = r.end - r.start + 1n;
  return r.gateway >= r.start && r.gateway <= r.end ? n - 1n : n;
}

/** The next free address after `last` (wrapping), or undefined when the range is full. */
export function pickNext(pool: Pool, reserved: ReadonlySet<string>, last: bigint | undefined): bigint | undefined {
  const r = rangeOf(pool);
  const size = r.end - r.start + 1n;
  let cur = last !== undefined && last >= r.start && last <= r.end ? last : r.start - 1n;
  for (let i = 0n; i < size; i++) {
    cur = cur >= r.end ? r.start : cur + 1n;
    if (cur === r.gateway) continue;
    if (!reserved.has(formatIp({ family: pool.family, value: cur }))) return cur;
  }
  return undefined;
}

/**
 * Reserves one address per pool for (containerId, ifname), reusing an existing record of the
 * same attachment. Caller holds the store lock. On error nothing new stays reserved.
 */
export function allocate(store: DiskStore, pools: readonly Pool[], containerId: string, ifname: string): Allocation[] {
  const records = store.list();
  const reserved = new Set(records.map((r) => r.file));
  const out: Allocation[] = [];
  try {
    for (const pool of pools) {
      const mine = records.find((r) => r.ip.family === pool.family && r.ifname !== '' && matches(r, containerId, ifname) && inRange(pool, r.ip.value));
      if (mine) { out.push({ pool, ip: mine.ip, reused: true }); continue; }
      out.push({ pool, ip: reserveNext(store, pool, reserved, containerId, ifname), reused: false });
    }
  } catch (err) {
    for (const a of out) if (!a.reused) store.release(formatIp(a.ip));
    throw err;
  }
  return out;
}

function inRange(pool: Pool, v: bigint): boolean {
  const r = rangeOf(pool);
  return v >= r.start && v <= r.end && v !== r.gateway;
}

function reserveNext(store: DiskStore, pool: Pool, reserved: Set<string>, containerId: string, ifname: string): IpAddr {
  const last = store.lastReserved(pool.rangeId);
  const lastV = last && last.family === pool.family ? last.value : undefined;
  let cursor = lastV;
  for (;;) {
    const v = pickNext(pool, reserved, cursor);
    if (v === undefined) {
      throw new CniError(CNI_ERR.exhausted,
        `no free address in node subnet ${formatPrefix(cidrNetwork(pool.subnet))}: all ${poolSize(pool)} addresses are reserved in ${store.dir}`);
    }
    const ip: IpAddr = { family: pool.family, value: v };
    const name = formatIp(ip);
    reserved.add(name);
    if (store.reserve(ip, containerId, ifname, pool.rangeId)) return ip;
    cursor = v;            // taken meanwhile (a writer that ignores the lock): keep going
  }
}
