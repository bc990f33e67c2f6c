// The real NetlinkHandle: rtnetlink over one NetlinkSocket bound to one network namespace.
//
// Why one request socket per handle and serialised calls: acks are matched by seq, and a batch
// yields to the event loop between chunks; serialising keeps "apply then list" ordered and means
// no two batches share the receive buffer's ack budget.
//
// Why notifications wait on ONE poll(2) in a worker thread (poller.ts) and are read on the main
// thread: a timer polling a non-blocking socket costs a process wake-up per tick (measured
// ≈0.8 % CPU at 25 ms on these machines, above the 0.5 % idle budget), and a blocked recv per
// watch would pin one of libuv's four pool threads per watch. The shared poller pins at most one
// thread, wakes only when a socket is readable, and cancels at once on abort. The timer mode
// (watchWait: 'timer') remains as a fallback and as the anchor in bench/netlink.ts.
//
// The socket of a watch is opened when watch() is called, not when iteration starts, so a caller
// can subscribe, then list, and miss nothing in between.
import { TwillError } from '../errors.js';
import type { Logger } from '../log.js';
import { systemClock, type Clock } from '../retry.js';
import * as C from './consts.js';
import {
  decodeAddr, decodeEvent, decodeLink, decodeNeigh, decodeNexthop, decodeRoute, describeChange, dumpAddrsRequest,
  dumpLinksRequest, dumpNeighsRequest, dumpNexthopsRequest, dumpRoutesRequest, encodeChange, getLinkRequest,
  getNexthopRequest, GROUPS, lastRouteOif, linkNeedsIndex, routeMatches,
} from './codec.js';
import { getLibc } from './ffi.js';
import { getPoller } from './poller.js';
import { NetlinkSocket, openNetns } from './socket.js';
import type {
  Addr, Family, Link, Neigh, NeighFilter, NetlinkHandle, Nexthop, NlChange, NlEvent, NlEventGroup, NlResult, Route,
  RouteFilter,
} from './types.js';
import { errnoCode, NlWriter, type NlMsg } from './wire.js';

export interface HandleOptions {
  /** Bind to this netns (a path such as /var/run/netns/x); default: the caller's. */
  netnsPath?: string;
  logger?: Logger;
  /** How watch() waits for notifications: a shared worker-thread poll (default) or a timer. */
  watchWait?: 'thread' | 'timer';
  /** Timer mode only: drain interval, ms (default 25, max 50). */
  watchIntervalMs?: number;
  /** Receive buffer of watch sockets (default 8 MiB; tests shrink it to provoke overflow). */
  watchBufferBytes?: number;
  /**
   * false: watches skip notifications caused by this handle's own apply() — the caller knows
   * those from the results — except link changes and nexthop deletions (their side effects are
   * not in the result). Filtered in the kernel where possible. Default true (see everything).
   */
  watchOwnChanges?: boolean;
  clock?: Clock;
}

/** "Already gone" for a delete. */
const GONE = new Set([C.ENOENT, C.ESRCH, C.ENODEV, C.EADDRNOTAVAIL]);
const DUMP_RETRIES = 10;
/** Own notifications a watch still reports with watchOwnChanges: false (as ownEchoFilter). */
const KEEP_OWN = new Set([C.RTM_NEWLINK, C.RTM_DELLINK, C.RTM_DELNEXTHOP]);
/** Encoded bytes after which apply() sends what it has before encoding more. */
const FLUSH_BYTES = 256 << 10;

class RtnlHandle implements NetlinkHandle {
  readonly netns: string;
  private readonly sock: NetlinkSocket;
  private readonly nsFd: number | undefined;
  private readonly log: Logger | undefined;
  private readonly clock: Clock;
  private readonly intervalMs: number;
  private readonly waitMode: 'thread' | 'timer';
  private readonly watchBuf: number | undefined;
  private readonly ownPort: number | undefined;
  private readonly closing = new AbortController();
  private tail: Promise<unknown> = Promise.resolve();
  private nexthops: boolean | undefined;

  constructor(opts: HandleOptions) {
    this.netns = opts.netnsPath ?? 'host';
    this.log = opts.logger;
    this.clock = opts.clock ?? systemClock;
    this.intervalMs = Math.min(50, Math.max(1, opts.watchIntervalMs ?? 25));
    this.waitMode = opts.watchWait ?? 'thread';
    this.watchBuf = opts.watchBufferBytes;
    // Keep the namespace open: watch sockets bind to the very same netns even if the path is
    // re-mounted or removed later.
    this.nsFd = opts.netnsPath === undefined ? undefined : openNetns(opts.netnsPath);
    try {
      this.sock = NetlinkSocket.open(this.nsFd === undefined ? {} : { netnsFd: this.nsFd });
    } catch (err) {
      if (this.nsFd !== undefined) closeNs(this.nsFd);
      throw err;
    }
    this.ownPort = opts.watchOwnChanges === false ? this.sock.portId() : undefined;
  }

  /** Runs `fn` after every earlier call on this handle has finished. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(() => {
      if (this.sock.closed) throw new TwillError('NETLINK', `netlink handle for ${this.netns} is closed`);
      return fn();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * One consistent dump. The kernel flags a dump NLM_F_DUMP_INTR when the table changed while it
   * was being read (e.g. links under 20 concurrent CNI ADDs): retry after a short, growing pause
   * so a quiet window is found; give up with EINTR rather than return an inconsistent list.
   */
  private async dump<T>(build: (w: NlWriter) => void, decode: (m: NlMsg) => T | undefined, what: string): Promise<T[]> {
    for (let attempt = 1; ; attempt++) {
      const w = new NlWriter(128);
      build(w);
      const out: T[] = [];
      const { interrupted } = this.sock.dump(w, (m) => {
        const v = decode(m);
        if (v !== undefined) out.push(v);
      });
      if (!interrupted) return out;
      if (attempt >= DUMP_RETRIES) {
        throw new TwillError('NETLINK', `${what} dump in ${this.netns} was interrupted ${attempt} times by concurrent changes`, { errno: C.EINTR });
      }
      this.log?.debug({ netns: this.netns, what, attempt }, 'netlink dump interrupted by concurrent changes; retrying');
      await this.clock.sleep(Math.min(50, 2 ** (attempt - 1)));
    }
  }

  listLinks(): Promise<Link[]> {
    return this.serial(() => this.dump((w) => dumpLinksRequest(w), (m) => decodeLink(m.data), 'link'));
  }

  getLink(name: string): Promise<Link | undefined> {
    return this.serial(() => this.fetchLink(name));
  }

  /** RTM_GETLINK by name (no dump: immune to NLM_F_DUMP_INTR under link churn). */
  private async fetchLink(name: string): Promise<Link | undefined> {
    const w = new NlWriter(64);
    getLinkRequest(w, name);
    let link: Link | undefined;
    await this.sock.transact(w, { onReply: (m) => { if (m.type === C.RTM_NEWLINK) link = decodeLink(m.data); } });
    return link;
  }

  listAddrs(family?: Family): Promise<Addr[]> {
    return this.serial(() => this.dump((w) => dumpAddrsRequest(w, family), (m) => {
      const a = decodeAddr(m.data);
      return a && (family === undefined || a.family === family) ? a : undefined;
    }, 'address'));
  }

  listRoutes(filter: RouteFilter = {}): Promise<Route[]> {
    return this.serial(async () => {
      try {
        return await this.dump((w) => dumpRoutesRequest(w, filter), (m) => {
          const r = decodeRoute(m.data);
          return r && routeMatches(r, filter, filter.ifindex !== undefined ? lastRouteOif() : undefined) ? r : undefined;
        }, 'route');
      } catch (err) {
        if (err instanceof TwillError && err.errno === C.ENOENT) return []; // the table does not exist
        throw err;
      }
    });
  }

  listNexthops(): Promise<Nexthop[]> {
    return this.serial(async () => {
      try {
        return await this.dump((w) => dumpNexthopsRequest(w), (m) => decodeNexthop(m.data), 'nexthop');
      } catch (err) {
        if (err instanceof TwillError && err.errno === C.EOPNOTSUPP) return [];
        throw err;
      }
    });
  }

  listNeighs(filter: NeighFilter): Promise<Neigh[]> {
    return this.serial(() => this.dump((w) => dumpNeighsRequest(w, filter), (m) => {
      const n = decodeNeigh(m.data);
      return n && n.family === filter.family && (filter.ifindex === undefined || n.ifindex === filter.ifindex) ? n : undefined;
    }, 'neighbour'));
  }

  supportsNexthops(): Promise<boolean> {
    return this.serial(async () => {
      if (this.nexthops === undefined) {
        const w = new NlWriter(64);
        getNexthopRequest(w, 0xffffffff);
        const [ack] = await this.sock.transact(w);
        this.nexthops = ack !== undefined && (ack.errno === 0 || ack.errno === C.ENOENT);
        this.log?.debug({ netns: this.netns, errno: ack?.errno, supported: this.nexthops }, 'nexthop objects probe');
      }
      return this.nexthops;
    });
  }

  apply(changes: readonly NlChange[]): Promise<NlResult[]> {
    return this.serial(() => this.applyNow(changes));
  }

  private async applyNow(changes: readonly NlChange[]): Promise<NlResult[]> {
    const results: (NlResult | undefined)[] = new Array<NlResult | undefined>(changes.length);
    const w = new NlWriter(Math.min(FLUSH_BYTES + 4096, Math.max(4096, changes.length * 96)));
    let owners: number[] = [];
    const flush = async () => {
      if (w.starts.length === 0) return;
      const acks = await this.sock.transact(w, { quiet: true });
      for (let k = 0; k < acks.length; k++) {
        const i = owners[k]!;
        const ack = acks[k]!;
        if (ack.errno === 0 || results[i]) continue;
        const c = changes[i]!;
        if (c.verb === 'delete' && GONE.has(ack.errno)) continue;
        results[i] = this.failure(c, ack.errno, ack.extack);
      }
      w.reset();
      owners = [];
    };
    for (let i = 0; i < changes.length; i++) {
      if (w.off >= FLUSH_BYTES) await flush(); // bounded memory, and encoding never blocks for long
      let c = changes[i]!;
      const o = c.object;
      if (o.kind === 'link' && linkNeedsIndex(c.verb, o)) {
        await flush();
        const index = (await this.fetchLink(o.name))?.index;
        if (index === undefined) { results[i] = this.failure(c, C.ENODEV, `no link named ${o.name}`); continue; }
        c = { verb: c.verb, object: { ...o, index } };
      }
      const mark = w.off;
      const markMsgs = w.starts.length;
      try {
        const n = encodeChange(w, c);
        for (let k = 0; k < n; k++) owners.push(i);
      } catch (err) {
        w.off = mark;
        w.starts.length = markMsgs;
        results[i] = this.failure(c, C.EINVAL, (err as Error).message);
      }
    }
    await flush();
    const ok: NlResult = { ok: true };
    const out = Array.from(results, (r) => r ?? ok);
    const failed = out.filter((r) => !r.ok).length;
    if (failed) this.log?.debug({ netns: this.netns, changes: changes.length, failed }, 'netlink batch had failures');
    return out;
  }

  private failure(c: NlChange, errno: number, detail?: string): NlResult {
    const code = errnoCode(errno);
    return { ok: false, errno, code, message: `${describeChange(c)} in ${this.netns}: ${code}${detail ? `: ${detail}` : ''}` };
  }

  watch(groups: readonly NlEventGroup[], signal: AbortSignal): AsyncIterable<NlEvent> {
    const nums = [...new Set(groups.flatMap((g) => GROUPS[g]))];
    if (nums.length === 0) throw new TwillError('NETLINK', 'watch needs at least one group');
    const sock = NetlinkSocket.open({
      groups: nums,
      ...(this.nsFd === undefined ? {} : { netnsFd: this.nsFd }),
      ...(this.watchBuf === undefined ? {} : { rcvbufBytes: this.watchBuf }),
      ...(this.ownPort === undefined ? {} : { ignorePortId: this.ownPort }),
    });
    const skipPid = this.ownPort !== undefined && !sock.echoFiltered ? this.ownPort : undefined;
    const stop = AbortSignal.any([signal, this.closing.signal]);
    const poller = this.waitMode === 'thread' ? getPoller() : undefined;
    const fd = sock.fileno;
    // Closing on abort is safe at any point: all socket calls are synchronous on this thread.
    stop.addEventListener('abort', () => { poller?.cancel(fd); sock.close(); }, { once: true });
    const iterate = async function* (this: RtnlHandle): AsyncGenerator<NlEvent> {
      try {
        while (!stop.aborted && !sock.closed) {
          const events: NlEvent[] = [];
          const { count, overflow } = sock.readNotifications((m) => {
            if (m.pid === skipPid && !KEEP_OWN.has(m.type)) return;
            const e = decodeEvent(m);
            if (e) events.push(e);
          }, 512);
          for (const e of events) yield e;
          if (overflow) {
            this.log?.warn({ netns: this.netns }, 'netlink notifications overflowed; consumer must resync');
            yield { type: 'overflow' };
          }
          if (count > 0 || stop.aborted) continue;
          if (poller) await poller.wait(fd);
          else {
            try { await this.clock.sleep(this.intervalMs, stop); } catch { return; }
          }
        }
      } finally {
        poller?.cancel(fd);
        sock.close();
      }
    };
    if (stop.aborted) sock.close();
    return { [Symbol.asyncIterator]: () => iterate.call(this) };
  }

  close(): void {
    this.closing.abort();
    this.sock.close();
    if (this.nsFd !== undefined) closeNs(this.nsFd);
  }
}

/** close(2) through the FFI, not node:fs: importing node:fs costs the bun-compiled CNI plugin ≈0.8 ms. */
function closeNs(fd: number): void {
  getLibc().close(fd); // an error (already closed) is ignored, as before
}

/** Opens a handle bound to `opts.netnsPath` (or the caller's netns). Synchronous. */
export function openHandle(opts: HandleOptions = {}): NetlinkHandle {
  return new RtnlHandle(opts);
}
