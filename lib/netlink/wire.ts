// Netlink framing, pure: a writer that appends many messages into ONE growable buffer (a batch is
// encoded without a Buffer allocation per message — at 20,000 messages that allocation pressure
// was measurable), and readers for nlmsghdr, attributes and nlmsgerr (with the kernel's extended
// ack text). Every message and attribute is padded to 4 bytes so that messages can be
// concatenated into one send().
import { constants as osConstants } from 'node:os';
import {
  NLA_F_NESTED, NLA_TYPE_MASK, NLMSG_HDRLEN, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSGERR_ATTR_MSG,
  NLMSGERR_ATTR_OFFS,
} from './consts.js';
import { parseIp, parseMacInto, parseV4Into } from './ipaddr.js';

export const align4 = (n: number): number => (n + 3) & ~3;

export class NlWriter {
  buf: Buffer;
  off = 0;
  private msgStart = -1;
  /** Offsets of every message begun in this writer (for seq patching and chunking). */
  readonly starts: number[] = [];

  constructor(size = 4096) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.off + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  /** Starts a message: nlmsghdr with the length patched in by end(). */
  begin(type: number, flags: number, seq: number): void {
    this.ensure(NLMSG_HDRLEN);
    this.msgStart = this.off;
    this.starts.push(this.off);
    const b = this.buf;
    b.writeUInt32LE(0, this.off);
    b.writeUInt16LE(type, this.off + 4);
    b.writeUInt16LE(flags, this.off + 6);
    b.writeUInt32LE(seq >>> 0, this.off + 8);
    b.writeUInt32LE(0, this.off + 12);
    this.off += NLMSG_HDRLEN;
  }

  end(): void {
    this.buf.writeUInt32LE(this.off - this.msgStart, this.msgStart);
    this.msgStart = -1;
  }

  /** Reserves `n` zeroed bytes (a family header) and returns their offset. */
  zeros(n: number): number {
    const len = align4(n);
    this.ensure(len);
    const at = this.off;
    const b = this.buf;
    for (let i = at; i < at + len; i++) b[i] = 0; // Buffer.fill is a native call: slow for a few bytes
    this.off += len;
    return at;
  }

  private attrHeader(type: number, payloadLen: number): number {
    const total = align4(4 + payloadLen);
    this.ensure(total);
    const at = this.off;
    this.buf.writeUInt16LE(4 + payloadLen, at);
    this.buf.writeUInt16LE(type, at + 2);
    for (let i = at + 4 + payloadLen; i < at + total; i++) this.buf[i] = 0;
    this.off += total;
    return at + 4;
  }

  // NB: take the offset BEFORE touching this.buf — attrHeader() may replace the buffer.
  u8(type: number, v: number): void { const at = this.attrHeader(type, 1); this.buf.writeUInt8(v & 0xff, at); }
  u16be(type: number, v: number): void { const at = this.attrHeader(type, 2); this.buf.writeUInt16BE(v & 0xffff, at); }
  u32(type: number, v: number): void { const at = this.attrHeader(type, 4); this.buf.writeUInt32LE(v >>> 0, at); }
  s32(type: number, v: number): void { const at = this.attrHeader(type, 4); this.buf.writeInt32LE(v | 0, at); }
  flag(type: number): void { this.attrHeader(type, 0); }
  bytes(type: number, v: Buffer): void { const at = this.attrHeader(type, v.length); v.copy(this.buf, at); }
  str(type: number, v: string): void {
    const n = Buffer.byteLength(v);
    const at = this.attrHeader(type, n + 1);
    this.buf.write(v, at);
    this.buf[at + n] = 0;
  }

  /**
   * An address attribute from text (s[from..to)); returns the family written, or 0 when the text
   * is malformed — the caller must then abandon the message (a partial attribute was written).
   */
  ip(type: number, s: string, from = 0, to = s.length): 0 | 4 | 6 {
    if (s.indexOf(':', from) < 0 || s.indexOf(':', from) >= to) {
      const at = this.attrHeader(type, 4);
      return parseV4Into(s, this.buf, at, from, to) ? 4 : 0;
    }
    const ip = parseIp(from === 0 && to === s.length ? s : s.slice(from, to));
    if (!ip) return 0;
    this.bytes(type, ip.bytes);
    return ip.family;
  }

  /** A MAC attribute from text; false when malformed (abandon the message). */
  mac(type: number, s: string): boolean {
    const at = this.attrHeader(type, 6);
    return parseMacInto(s, this.buf, at);
  }

  /** Opens a nested attribute; close it with nestEnd(token). */
  nest(type: number, nested = false): number {
    this.ensure(4);
    const at = this.off;
    this.buf.writeUInt16LE(type | (nested ? NLA_F_NESTED : 0), at + 2);
    this.off += 4;
    return at;
  }

  nestEnd(at: number): void {
    this.buf.writeUInt16LE(this.off - at, at);
  }

  /** The bytes written so far (a view, valid until the next write). */
  view(from = 0, to = this.off): Buffer {
    return this.buf.subarray(from, to);
  }

  reset(): void {
    this.off = 0;
    this.starts.length = 0;
  }
}

/** One received message; `data` is a view of the payload after the header (copy to keep it). */
export interface NlMsg {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  data: Buffer;
}

/** Splits a received datagram into messages (stops at a malformed length). */
export function parseMessages(buf: Buffer, len = buf.length): NlMsg[] {
  const out: NlMsg[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    const mlen = buf.readUInt32LE(off);
    if (mlen < NLMSG_HDRLEN || off + mlen > len) break;
    out.push({
      type: buf.readUInt16LE(off + 4),
      flags: buf.readUInt16LE(off + 6),
      seq: buf.readUInt32LE(off + 8),
      pid: buf.readUInt32LE(off + 12),
      data: buf.subarray(off + NLMSG_HDRLEN, off + mlen),
    });
    off += align4(mlen);
  }
  return out;
}

/** Attributes of a region, by type (flags masked off); later duplicates win. */
export type Attrs = Map<number, Buffer>;

export function parseAttrs(buf: Buffer, start = 0, end = buf.length): Attrs {
  const m: Attrs = new Map();
  let off = start;
  while (off + 4 <= end) {
    const alen = buf.readUInt16LE(off);
    if (alen < 4 || off + alen > end) break;
    m.set(buf.readUInt16LE(off + 2) & NLA_TYPE_MASK, buf.subarray(off + 4, off + alen));
    off += align4(alen);
  }
  return m;
}

export const attrU8 = (a: Attrs, t: number): number | undefined => {
  const v = a.get(t);
  return v && v.length >= 1 ? v[0] : undefined;
};
export const attrU32 = (a: Attrs, t: number): number | undefined => {
  const v = a.get(t);
  return v && v.length >= 4 ? v.readUInt32LE(0) : undefined;
};
export const attrStr = (a: Attrs, t: number): string | undefined => {
  const v = a.get(t);
  if (!v) return undefined;
  const nul = v.indexOf(0);
  return v.toString('utf8', 0, nul < 0 ? v.length : nul);
};

/**
 * Allocation-free attribute index for the hot dump decoders (routes, neighbours, nexthops,
 * addresses arrive by the tens of thousands): records where each top-level attribute lies
 * instead of creating a Map and a Buffer view per attribute. Reused: not re-entrant, so each
 * decoder owns one instance.
 */
export class AttrScan {
  buf: Buffer = Buffer.alloc(0);
  private readonly at: Int32Array;
  private readonly len: Int32Array;

  constructor(maxType = 64) {
    this.at = new Int32Array(maxType + 1);
    this.len = new Int32Array(maxType + 1);
  }

  scan(buf: Buffer, start: number, end = buf.length): this {
    this.buf = buf;
    this.at.fill(-1);
    const max = this.at.length;
    let off = start;
    while (off + 4 <= end) {
      const alen = buf.readUInt16LE(off);
      if (alen < 4 || off + alen > end) break;
      const t = buf.readUInt16LE(off + 2) & NLA_TYPE_MASK;
      if (t < max) { this.at[t] = off + 4; this.len[t] = alen - 4; }
      off += align4(alen);
    }
    return this;
  }

  has(t: number): boolean { return this.at[t]! >= 0; }
  size(t: number): number { return this.at[t]! >= 0 ? this.len[t]! : -1; }
  offset(t: number): number { return this.at[t]!; }
  u8(t: number): number | undefined { return this.size(t) >= 1 ? this.buf[this.at[t]!] : undefined; }
  u32(t: number): number | undefined { return this.size(t) >= 4 ? this.buf.readUInt32LE(this.at[t]!) : undefined; }
  /** A view of the payload (allocates; for the rare nested attribute). */
  view(t: number): Buffer | undefined { return this.has(t) ? this.buf.subarray(this.at[t]!, this.at[t]! + this.len[t]!) : undefined; }
}

/** A decoded NLMSG_ERROR: errno 0 is an ACK. */
export interface NlErr {
  errno: number;
  /** seq of the request it answers (from the embedded original header). */
  seq: number;
  extack?: string;
  extackOffset?: number;
}

export function decodeError(msg: NlMsg): NlErr {
  const d = msg.data;
  const errno = d.length >= 4 ? -d.readInt32LE(0) : 0;
  const seq = d.length >= 20 ? d.readUInt32LE(4 + 8) : msg.seq;
  const out: NlErr = { errno, seq };
  if (!(msg.flags & NLM_F_ACK_TLVS) || d.length < 20) return out;
  const origLen = d.readUInt32LE(4);
  const tlvStart = 4 + (msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : align4(origLen));
  const a = parseAttrs(d, tlvStart, d.length);
  const text = attrStr(a, NLMSGERR_ATTR_MSG);
  if (text) out.extack = text;
  const offs = attrU32(a, NLMSGERR_ATTR_OFFS);
  if (offs !== undefined) out.extackOffset = offs;
  return out;
}

let errnoNames: Map<number, string> | undefined;

/** "EEXIST" for 17, "E<n>" when unknown. */
export function errnoCode(errno: number): string {
  if (!errnoNames) {
    errnoNames = new Map([[95, 'EOPNOTSUPP'], [11, 'EAGAIN']]);
    for (const [name, num] of Object.entries(osConstants.errno)) {
      if (!errnoNames.has(num)) errnoNames.set(num, name);
    }
  }
  return errnoNames.get(errno) ?? `E${errno}`;
}
