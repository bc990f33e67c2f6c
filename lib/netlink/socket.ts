// NetlinkSocket: the ONLY place twill opens sockets (docs/design.md, rule 4). One NETLINK_ROUTE socket,
// optionally created inside another network namespace, with three ways to talk to the kernel:
//
// transact — many requests per send(), each with its own seq; rtnetlink processes a send()
//   synchronously and queues one ack per message that asked (NLM_F_ACK) or failed, so after each
//   chunk we read exactly that chunk's answers. A chunk is bounded in bytes AND in messages so its
//   acks always fit the receive buffer (an ack the kernel cannot queue is lost: the socket reports
//   ENOBUFS and the outcome is unknown); a failed entry is just an errno in its slot. Writes can
//   go `quiet`: only a chunk's last message asks for an ack, so the kernel answers the others only
//   when they fail, in order, ahead of that last ack. One recv() per chunk instead of one per
//   message (README, Design decisions). Between chunks we yield to the event loop, so a
//   20,000-entry batch never blocks timers and I/O for more than one chunk (a few ms).
// dump — one NLM_F_DUMP request read to NLMSG_DONE; NLM_F_DUMP_INTR is reported so the caller
//   can retry with a consistent snapshot.
// readNotifications — multicast groups on a NON-BLOCKING socket drained by the caller on a short
//   timer (see handle.ts for why a timer beats a blocked worker thread), ENOBUFS → overflow.
//
// Netns binding: setns(2) into the target, socket(2), setns back — all synchronous on the main
// thread, nothing awaited in between, so the process never runs JS in the wrong namespace. The
// way back is an fd of /proc/thread-self/ns/net opened before leaving; on any failure we switch
// back before throwing.
import { TwillError } from '../errors.js';
import { EAGAIN, EINTR, ENOBUFS, ETIMEDOUT, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_ACK, NLM_F_DUMP_INTR, RTM_DELLINK, RTM_DELNEXTHOP, RTM_NEWLINK } from './consts.js';
import { getLibc, type Libc } from './ffi.js';
import { decodeError, errnoCode, parseMessages, type NlMsg, type NlWriter } from './wire.js';

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_ROUTE = 0;
const SOL_SOCKET = 1;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_RCVTIMEO = 20;
const SO_SNDBUFFORCE = 32;
const SO_RCVBUFFORCE = 33;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const NETLINK_CAP_ACK = 10;
const NETLINK_EXT_ACK = 11;
const NETLINK_GET_STRICT_CHK = 12;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
export const O_RDONLY = 0;
export const O_CLOEXEC = 0o2000000;
export const CLONE_NEWNET = 0x40000000;

const RCVBUF = 8 << 20;
const SNDBUF = 1 << 20;
/** Per-chunk bounds: bytes per send() and messages whose acks must fit the receive buffer. */
const CHUNK_BYTES = 64 << 10;
const ACK_TRUESIZE = 2048; // generous per-ack skb truesize estimate
const RECV_BUF = 256 << 10;

export interface SocketOptions {
  /** Path of the netns to bind to (/var/run/netns/x, /proc/<pid>/ns/net); default: ours. */
  netnsPath?: string;
  /** An open netns fd to bind to (takes precedence over netnsPath; not closed here). */
  netnsFd?: number;
  /** RTNLGRP_* multicast groups to join (makes it a notification socket: non-blocking). */
  groups?: readonly number[];
  /** Reply timeout of a request socket (SO_RCVTIMEO), ms; default 5000. */
  timeoutMs?: number;
  /** Receive buffer size (default 8 MiB); small values let tests provoke ENOBUFS. */
  rcvbufBytes?: number;
  /**
   * Notification sockets: drop, in the kernel, notifications caused by the socket with this
   * port id (nlmsg_pid) — except link changes and nexthop deletions (see ownEchoFilter).
   */
  ignorePortId?: number;
}

/** Result of one message in a transaction: errno 0 = acked. */
export interface Ack {
  readonly errno: number;
  readonly extack?: string;
}

const ACK_OK: Ack = Object.freeze({ errno: 0 });

const u32buf = (v: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); return b; };

function sysError(code: 'NETLINK' | 'NETNS', what: string, errno: number): TwillError {
  return new TwillError(code, `${what}: ${errnoCode(errno)}`, { errno });
}

/**
 * A classic BPF program that drops notifications whose nlmsg_pid is `portId` — the echoes of
 * our own requests, which the requester already knows from its acks (a 20k-peer apply echoes
 * 60k of them: receiving and decoding them cost more than the apply). Link messages and nexthop
 * deletions pass: their side effects (a device going down, routes the kernel drops silently
 * with their nexthop) are not in the ack. BPF loads are big-endian, the header is host order
 * (little-endian), hence the byte swaps.
 */
export function ownEchoFilter(portId: number): Buffer {
  const insns: [number, number, number, number][] = [
    [0x28, 0, 0, 4],                                   // ldh [4]         nlmsg_type
    [0x15, 5, 0, swap16(RTM_NEWLINK)],               // jeq NEWLINK     → accept
    [0x15, 4, 0, swap16(RTM_DELLINK)],               // jeq DELLINK     → accept
    [0x15, 3, 0, swap16(RTM_DELNEXTHOP)],            // jeq DELNEXTHOP  → accept
    [0x20, 0, 0, 12],                                  // ld [12]         nlmsg_pid
    [0x15, 0, 1, swap32(portId)],                      // jeq portId      → drop : accept
    [0x06, 0, 0, 0],                                   // drop
    [0x06, 0, 0, 0xffffffff],                          // accept
  ];
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => { b.writeUInt16LE(code, i * 8); b[i * 8 + 2] = jt; b[i * 8 + 3] = jf; b.writeUInt32LE(k >>> 0, i * 8 + 4); });
  return b;
}

const swap16 = (v: number) => ((v & 0xff) << 8) | ((v >> 8) & 0xff);
const swap32 = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

/**
 * Runs `fn` with the calling thread inside the netns of `nsFd`, then switches back. Synchronous by
 * design: nothing may be awaited while the thread is in the other namespace.
 */
export function inNetns<T>(nsFd: number, fn: () => T): T {
  const c = getLibc();
  const self = c.open('/proc/thread-self/ns/net', O_RDONLY | O_CLOEXEC);
  if (self < 0) throw sysError('NETNS', 'open /proc/thread-self/ns/net', c.errno());
  try {
    if (c.setns(nsFd, CLONE_NEWNET) !== 0) throw sysError('NETNS', 'setns into target netns', c.errno());
    let out: { value: T } | { error: unknown };
    try {
      out = { value: fn() };
    } catch (error) {
      out = { error };
    }
    if (c.setns(self, CLONE_NEWNET) !== 0) {
      // Continuing in the wrong namespace would program the wrong kernel state: stop here.
      throw new TwillError('NETNS', `setns back to the original netns failed: ${errnoCode(c.errno())}; refusing to continue`);
    }
    if ('error' in out) throw out.error;
    return out.value;
  } finally {
    c.close(self);
  }
}

/** Opens a netns file (caller closes the fd). */
export function openNetns(path: string): number {
  const c = getLibc();
  const fd = c.open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw sysError('NETNS', `open netns ${path}`, c.errno());
  return fd;
}

export class NetlinkSocket {
  private fd: number;
  private readonly c: Libc;
  private seq: number;
  private readonly rbuf = Buffer.allocUnsafe(RECV_BUF);
  /** Max messages per chunk, from the receive buffer the kernel actually granted. */
  readonly window: number;
  readonly notify: boolean;
  /** Whether a kernel filter drops the echoes of `ignorePortId` (else the caller must skip them). */
  readonly echoFiltered: boolean;

  private constructor(fd: number, c: Libc, window: number, notify: boolean, echoFiltered: boolean) {
    this.fd = fd;
    this.c = c;
    this.window = window;
    this.notify = notify;
    this.echoFiltered = echoFiltered;
    this.seq = (Date.now() & 0x3fffffff) + 1;
  }

  static open(opts: SocketOptions = {}): NetlinkSocket {
    const c = getLibc();
    const notify = (opts.groups?.length ?? 0) > 0;
    const type = SOCK_RAW | SOCK_CLOEXEC | (notify ? SOCK_NONBLOCK : 0);
    const create = () => c.socket(AF_NETLINK, type, NETLINK_ROUTE);
    let fd: number;
    if (opts.netnsFd !== undefined) {
      fd = inNetns(opts.netnsFd, create);
    } else if (opts.netnsPath !== undefined) {
      const ns = openNetns(opts.netnsPath);
      try { fd = inNetns(ns, create); } finally { c.close(ns); }
    } else {
      fd = create();
    }
    if (fd < 0) throw sysError('NETLINK', 'socket(AF_NETLINK)', c.errno());
    try {
      return NetlinkSocket.configure(fd, c, opts, notify);
    } catch (err) {
      c.close(fd);
      throw err;
    }
  }

  private static configure(fd: number, c: Libc, opts: SocketOptions, notify: boolean): NetlinkSocket {
    const set = (level: number, name: number, v: Buffer) => c.setsockopt(fd, level, name, v, v.length) === 0;
    const rcvbuf = opts.rcvbufBytes ?? RCVBUF;
    if (!set(SOL_SOCKET, SO_RCVBUFFORCE, u32buf(rcvbuf))) set(SOL_SOCKET, SO_RCVBUF, u32buf(rcvbuf));
    if (!set(SOL_SOCKET, SO_SNDBUFFORCE, u32buf(SNDBUF))) set(SOL_SOCKET, SO_SNDBUF, u32buf(SNDBUF));
    set(SOL_NETLINK, NETLINK_EXT_ACK, u32buf(1));
    set(SOL_NETLINK, NETLINK_CAP_ACK, u32buf(1));
    if (!notify) {
      set(SOL_NETLINK, NETLINK_GET_STRICT_CHK, u32buf(1));
      const tv = Buffer.alloc(16);
      const ms = opts.timeoutMs ?? 5000;
      tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
      tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
      set(SOL_SOCKET, SO_RCVTIMEO, tv);
    }
    const sa = Buffer.alloc(12);
    sa.writeUInt16LE(AF_NETLINK, 0);
    if (c.bind(fd, sa, sa.length) !== 0) throw sysError('NETLINK', 'bind(AF_NETLINK)', c.errno());
    for (const g of opts.groups ?? []) {
      if (!set(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, u32buf(g))) throw sysError('NETLINK', `join multicast group ${g}`, c.errno());
    }
    const rcv = Buffer.alloc(4);
    const len = [4];
    const granted = c.getsockopt(fd, SOL_SOCKET, SO_RCVBUF, rcv, len) === 0 ? rcv.readUInt32LE(0) : 212992;
    const window = Math.max(16, Math.min(2048, Math.floor(granted / 2 / ACK_TRUESIZE)));
    const filtered = notify && opts.ignorePortId !== undefined && c.attachFilter !== undefined
      && c.attachFilter(fd, ownEchoFilter(opts.ignorePortId)) === 0;
    return new NetlinkSocket(fd, c, window, notify, filtered);
  }

  get closed(): boolean { return this.fd < 0; }

  /** The file descriptor (for readiness polling only; -1 once closed). */
  get fileno(): number { return this.fd; }

  /** The kernel-assigned port id (nl_pid) of this socket. */
  portId(): number {
    const sa = Buffer.alloc(12);
    if (this.c.getsockname(this.fd, sa, [12]) !== 0) throw sysError('NETLINK', 'getsockname', this.c.errno());
    return sa.readUInt32LE(4);
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  close(): void {
    if (this.fd >= 0) this.c.close(this.fd);
    this.fd = -1;
  }

  private assertOpen(): void {
    if (this.fd < 0) throw new TwillError('NETLINK', 'netlink socket is closed');
  }

  private sendAll(buf: Buffer): number {
    for (;;) {
      const n = this.c.send(this.fd, buf, buf.length, 0);
      if (n >= 0) return 0;
      const e = this.c.errno();
      if (e !== EINTR) return e;
    }
  }

  /** One datagram into rbuf; returns its length or -errno. */
  private recvOnce(flags = 0): number {
    for (;;) {
      const n = this.c.recv(this.fd, this.rbuf, this.rbuf.length, flags | MSG_TRUNC);
      if (n >= 0) {
        if (n > this.rbuf.length) throw new TwillError('NETLINK', `netlink datagram of ${n} bytes exceeds the ${this.rbuf.length}-byte receive buffer`);
        return n;
      }
      const e = this.c.errno();
      if (e !== EINTR) return -e;
    }
  }

  /**
   * Sends every message in `w` (seq numbers are assigned here) in bounded chunks and
   * returns one Ack per message. Replies other than acks (GET answers) go to `onReply` with the
   * message's index. Never throws for per-message errors. `quiet` (writes only: no message may
   * expect a reply other than its ack) asks the kernel to answer only failures and each chunk's
   * last message; a message with no answer once that last ack is in succeeded.
   */
  async transact(w: NlWriter, opts: { onReply?: (m: NlMsg, index: number) => void; quiet?: boolean } = {}): Promise<Ack[]> {
    this.assertOpen();
    const starts = w.starts;
    const acks: Ack[] = new Array<Ack>(starts.length);
    if (starts.length === 0) return acks;
    // Sequence numbers are ours to assign: consecutive from firstSeq, so index = seq - firstSeq.
    const firstSeq = (this.seq + 1) >>> 0;
    for (let k = 0; k < starts.length; k++) w.buf.writeUInt32LE((firstSeq + k) >>> 0, starts[k]! + 8);
    this.seq = (firstSeq + starts.length) >>> 0;
    let i = 0;
    while (i < starts.length) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r));
      const from = starts[i]!;
      let j = i + 1; // messages [i, j) form the chunk: at least one, then while within bounds
      while (j < starts.length && j - i < this.window) {
        const endOfNext = j + 1 < starts.length ? starts[j + 1]! : w.off;
        if (endOfNext - from > CHUNK_BYTES) break;
        j++;
      }
      const to = j < starts.length ? starts[j]! : w.off;
      if (opts.quiet) {
        for (let k = i; k < j; k++) {
          const at = starts[k]! + 6;
          const flags = w.buf.readUInt16LE(at);
          w.buf.writeUInt16LE(k === j - 1 ? flags | NLM_F_ACK : flags & ~NLM_F_ACK, at);
        }
      }
      this.exchange(w.view(from, to), i, j, firstSeq, acks, opts);
      i = j;
    }
    return acks;
  }

  private exchange(chunk: Buffer, lo: number, hi: number, firstSeq: number, acks: Ack[], opts: { onReply?: (m: NlMsg, index: number) => void; quiet?: boolean }): void {
    const sendErr = this.sendAll(chunk);
    if (sendErr) {
      for (let k = lo; k < hi; k++) acks[k] = { errno: sendErr, extack: 'send() failed' };
      return;
    }
    // Quiet: done when the chunk's last message is answered (answers come in message order).
    let remaining = opts.quiet ? 1 : hi - lo;
    let overflow = false;
    while (remaining > 0) {
      const n = this.recvOnce(overflow ? MSG_DONTWAIT : 0);
      if (n === -ENOBUFS) { overflow = true; continue; }
      if (n < 0) {
        const errno = overflow ? ENOBUFS : n === -EAGAIN ? ETIMEDOUT : -n;
        const why = overflow ? 'ack lost (receive buffer overflow): outcome unknown' : 'no ack from the kernel';
        for (let k = lo; k < hi; k++) if (!acks[k]) acks[k] = { errno, extack: why };
        return;
      }
      const taken = this.takeAcks(n, lo, hi, firstSeq, acks, opts.onReply);
      remaining = opts.quiet ? (acks[hi - 1] ? 0 : 1) : remaining - taken;
    }
    if (opts.quiet) {
      // An unanswered message succeeded — unless the kernel dropped answers (then: unknown).
      const rest = overflow ? { errno: ENOBUFS, extack: 'failure report may be lost (receive buffer overflow): outcome unknown' } : ACK_OK;
      for (let k = lo; k < hi - 1; k++) if (!acks[k]) acks[k] = rest;
    }
  }

  /** Records the acks in one datagram without allocating for the common (errno 0) case. */
  private takeAcks(n: number, lo: number, hi: number, firstSeq: number, acks: Ack[], onReply?: (m: NlMsg, index: number) => void): number {
    const b = this.rbuf;
    let taken = 0;
    for (let off = 0; off + NLMSG_HDRLEN <= n;) {
      const mlen = b.readUInt32LE(off);
      if (mlen < NLMSG_HDRLEN || off + mlen > n) break;
      const type = b.readUInt16LE(off + 4);
      const idx = (b.readUInt32LE(off + 8) - firstSeq) >>> 0;
      if (idx >= lo && idx < hi && !acks[idx]) { // else: a stale reply of an earlier request
        const errno = type === NLMSG_ERROR && mlen >= NLMSG_HDRLEN + 4 ? -b.readInt32LE(off + NLMSG_HDRLEN) : -1;
        if (errno === 0) {
          acks[idx] = ACK_OK;
          taken++;
        } else {
          const m: NlMsg = { type, flags: b.readUInt16LE(off + 6), seq: b.readUInt32LE(off + 8), pid: b.readUInt32LE(off + 12), data: b.subarray(off + NLMSG_HDRLEN, off + mlen) };
          if (type === NLMSG_ERROR) {
            const e = decodeError(m);
            acks[idx] = e.extack ? { errno: e.errno, extack: e.extack } : { errno: e.errno };
            taken++;
          } else {
            onReply?.(m, idx);
          }
        }
      }
      off += (mlen + 3) & ~3;
    }
    return taken;
  }

  /**
   * Sends one dump request (the single message in `w`) and feeds every reply to `onMsg` until
   * NLMSG_DONE. Returns whether the kernel flagged the dump as interrupted (NLM_F_DUMP_INTR).
   * Throws TwillError('NETLINK') when the kernel refuses the dump.
   */
  dump(w: NlWriter, onMsg: (m: NlMsg) => void): { interrupted: boolean } {
    this.assertOpen();
    const seq = this.nextSeq();
    w.buf.writeUInt32LE(seq, 8);
    const sendErr = this.sendAll(w.view());
    if (sendErr) throw sysError('NETLINK', 'send dump request', sendErr);
    let interrupted = false;
    for (;;) {
      const n = this.recvOnce();
      if (n === -ENOBUFS) { interrupted = true; continue; }
      if (n < 0) throw sysError('NETLINK', 'receive dump', n === -EAGAIN ? ETIMEDOUT : -n);
      for (const m of parseMessages(this.rbuf, n)) {
        if (m.seq !== seq) continue;
        if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
        if (m.type === NLMSG_DONE) {
          const err = m.data.length >= 4 ? -m.data.readInt32LE(0) : 0;
          if (err > 0) throw sysError('NETLINK', 'dump', err);
          return { interrupted };
        }
        if (m.type === NLMSG_ERROR) {
          const e = decodeError(m);
          if (e.errno === 0) return { interrupted };
          throw new TwillError('NETLINK', `dump refused: ${errnoCode(e.errno)}${e.extack ? `: ${e.extack}` : ''}`, { errno: e.errno });
        }
        onMsg(m);
      }
    }
  }

  /**
   * Drains queued notifications without blocking (at most `max` datagrams). `overflow` means the
   * kernel dropped notifications (ENOBUFS): the consumer must resync.
   */
  readNotifications(onMsg: (m: NlMsg) => void, max = 1024): { count: number; overflow: boolean } {
    this.assertOpen();
    let count = 0;
    let overflow = false;
    while (count < max) {
      const n = this.recvOnce(MSG_DONTWAIT);
      if (n === -ENOBUFS) { overflow = true; continue; }
      if (n < 0) {
        if (n === -EAGAIN) break;
        throw sysError('NETLINK', 'receive notifications', -n);
      }
      count++;
      for (const m of parseMessages(this.rbuf, n)) onMsg(m);
    }
    return { count, overflow };
  }
}
