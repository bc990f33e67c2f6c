// The protobuf wire format of the etcd v3 messages twill sends and reads (etcd's
// api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto), by hand: varints, length-delimited
// fields, nothing else. Field numbers are etcd's; a field this file does not know is skipped,
// as protobuf requires, so newer etcd versions stay readable.
//
// Why by hand: a generated or reflective codec (protobufjs, as the etcd3 package loads it) is
// megabytes of resident code for eleven messages, and decoding a 20k-key listing through it
// cost ≈100–200 ms of CPU here against ≈20 ms for the loop below.
//
// 64-bit integers travel as decimal strings (revisions, lease ids: etcd's lease ids use all 63
// bits), like protobuf's JSON mapping, so callers never meet a bigint.

/** Protobuf wire types used by etcd's messages. */
const VARINT = 0;
const LEN = 2;

/** Builds one message; fields at their default value are left out, as proto3 does. */
export class PbWriter {
  private readonly parts: Buffer[] = [];
  private size = 0;
  private scratch: number[] = [];

  /** An unsigned or signed integer field (int64 as number, bigint or decimal string). */
  int(field: number, v: number | bigint | string | undefined, always = false): this {
    if (v === undefined) return this;
    const big = typeof v === 'bigint' ? v : typeof v === 'string' ? BigInt(v) : BigInt(Math.trunc(v));
    if (big === 0n && !always) return this;
    this.key(field, VARINT);
    this.varint(BigInt.asUintN(64, big));
    return this;
  }

  bool(field: number, v: boolean | undefined): this {
    return v ? this.int(field, 1) : this;
  }

  bytes(field: number, v: Buffer | string | undefined): this {
    if (v === undefined || v.length === 0) return this;
    const b = typeof v === 'string' ? Buffer.from(v) : v;
    this.key(field, LEN);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }

  /** An embedded message (written even when empty: presence matters in a oneof). */
  message(field: number, m: PbWriter): this {
    const b = m.finish();
    this.key(field, LEN);
    this.varint(BigInt(b.length));
    this.push(b);
    return this;
  }

  finish(): Buffer {
    this.flush();
    return this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  private varint(v: bigint): void {
    while (v > 0x7fn) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private push(b: Buffer): void {
    this.flush();
    this.parts.push(b);
    this.size += b.length;
  }

  private flush(): void {
    if (this.scratch.length === 0) return;
    const b = Buffer.from(this.scratch);
    this.parts.push(b);
    this.size += b.length;
    this.scratch = [];
  }
}

/** Reads one message's fields in order: `while (r.next()) switch (r.field) { … default: r.skip() }`. */
export class PbReader {
  field = 0;
  /** Wire type of the current field (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32). */
  wire = 0;
  private pos: number;
  private readonly end: number;
  private readonly buf: Buffer;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  next(): boolean {
    if (this.pos >= this.end) return false;
    const k = this.uint();
    this.field = k >>> 3;
    this.wire = k & 7;
    return true;
  }

  /** A varint that fits in 2^53 (tags, lengths, booleans, enums, revisions in practice). */
  uint(): number {
    const b = this.buf;
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('protobuf: truncated varint');
      const c = b[this.pos++]!;
      v += (c & 0x7f) * mul;
      if (c < 0x80) {
        if (v > Number.MAX_SAFE_INTEGER) throw new Error('protobuf: varint too large');
        return v;
      }
      mul *= 128;
    }
    throw new Error('protobuf: varint longer than 10 bytes');
  }

  /** An int64 field as a decimal string (two's complement: -1 arrives as 10 bytes). */
  int64(): string {
    const start = this.pos;
    let n = 0;
    while (n < 10 && this.pos + n < this.end && this.buf[this.pos + n]! >= 0x80) n++;
    if (n < 7) return String(this.uint());   // ≤ 49 bits: exact as a number
    let v = 0n;
    for (let i = n; i >= 0; i--) v = (v << 7n) | BigInt(this.buf[start + i]! & 0x7f);
    this.pos = start + n + 1;
    if (this.pos > this.end) throw new Error('protobuf: truncated varint');
    return BigInt.asIntN(64, v).toString();
  }

  bool(): boolean {
    return this.uint() !== 0;
  }

  /** A length-delimited field, as a view into the message (no copy). */
  bytes(): Buffer {
    const len = this.uint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error('protobuf: truncated field');
    return this.buf.subarray(start, this.pos);
  }

  string(): string {
    const len = this.uint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error('protobuf: truncated field');
    return this.buf.toString('utf8', start, this.pos);
  }

  /** A reader over an embedded message. */
  message(): PbReader {
    const len = this.uint();
    const start = this.pos;
    this.pos += len;
    if (this.pos > this.end) throw new Error('protobuf: truncated message');
    return new PbReader(this.buf, start, this.pos);
  }

  skip(): void {
    switch (this.wire) {
      case VARINT:   // any size: cluster and member ids use all 64 bits
        for (let i = 0; i < 10; i++) if (this.pos >= this.end || this.buf[this.pos++]! < 0x80) break;
        break;
      case 1: this.pos += 8; break;
      case LEN: { const len = this.uint(); this.pos += len; break; }   // not `pos += uint()`: that adds to the pos read before the length
      case 5: this.pos += 4; break;
      default: throw new Error(`protobuf: unsupported wire type ${this.wire}`);
    }
    if (this.pos > this.end) throw new Error('protobuf: truncated field');
  }
}

// ---- etcd's messages -------------------------------------------------------------------------

export interface EtcdKeyValue {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  /** etcd lease id, '0' when the key has none. */
  lease: string;
}

export interface RangeRequest { key: Buffer; range_end?: Buffer; limit?: number; revision?: string }
export interface RangeResponse { revision: string; kvs: EtcdKeyValue[]; more: boolean }

export interface Compare {
  key: Buffer;
  range_end?: Buffer;
  target: 'CREATE' | 'MOD' | 'LEASE' | 'VERSION';
  result: 'EQUAL' | 'LESS' | 'GREATER' | 'NOT_EQUAL';
  create_revision?: string | number;
  mod_revision?: string | number;
  version?: string | number;
  lease?: string;
}
export type RequestOp =
  | { request_put: { key: Buffer; value: Buffer; lease?: string } }
  | { request_delete_range: { key: Buffer; range_end?: Buffer } };
export interface TxnRequest { compare: Compare[]; success: RequestOp[]; failure: RequestOp[] }
export interface TxnResponse { revision: string; succeeded: boolean }

export interface WatchEvent { type: 'PUT' | 'DELETE'; kv: EtcdKeyValue; prev_kv?: EtcdKeyValue }
export interface WatchResponse {
  revision: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  events: WatchEvent[];
}
export interface WatchCreate { key: Buffer; range_end: Buffer; start_revision: string; prev_kv: boolean }

// Enums of etcdserverpb.Compare.
const COMPARE_RESULT = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const;
const COMPARE_TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const;

export function encodeRange(r: RangeRequest): Buffer {
  return new PbWriter().bytes(1, r.key).bytes(2, r.range_end).int(3, r.limit).int(4, r.revision).finish();
}

function compareMessage(c: Compare): PbWriter {
  const w = new PbWriter().int(1, COMPARE_RESULT[c.result]).int(2, COMPARE_TARGET[c.target]).bytes(3, c.key);
  // target_union is a oneof: the chosen member is written even at 0 ("created at revision 0" = absent).
  switch (c.target) {
    case 'VERSION': w.int(4, c.version ?? 0, true); break;
    case 'CREATE': w.int(5, c.create_revision ?? 0, true); break;
    case 'MOD': w.int(6, c.mod_revision ?? 0, true); break;
    case 'LEASE': w.int(8, c.lease ?? 0, true); break;
  }
  return w.bytes(64, c.range_end);
}

function requestOpMessage(op: RequestOp): PbWriter {
  if ('request_put' in op) {
    const p = op.request_put;
    return new PbWriter().message(2, new PbWriter().bytes(1, p.key).bytes(2, p.value).int(3, p.lease));
  }
  const d = op.request_delete_range;
  return new PbWriter().message(3, new PbWriter().bytes(1, d.key).bytes(2, d.range_end));
}

export function encodeTxn(t: TxnRequest): Buffer {
  const w = new PbWriter();
  for (const c of t.compare) w.message(1, compareMessage(c));
  for (const op of t.success) w.message(2, requestOpMessage(op));
  for (const op of t.failure) w.message(3, requestOpMessage(op));
  return w.finish();
}

/** LeaseGrantRequest {TTL = 1, ID = 2}. */
export const encodeLeaseGrant = (ttlSec: number): Buffer => new PbWriter().int(1, ttlSec).finish();
/** LeaseRevoke/LeaseTimeToLive/LeaseKeepAlive requests: {ID = 1}. */
export const encodeLeaseId = (id: string): Buffer => new PbWriter().int(1, id).finish();
/** AuthenticateRequest {name = 1, password = 2}. */
export const encodeAuthenticate = (name: string, password: string): Buffer => new PbWriter().bytes(1, name).bytes(2, password).finish();

/** WatchRequest {create_request = 1: {key 1, range_end 2, start_revision 3, prev_kv 6}}. */
export function encodeWatchCreate(c: WatchCreate): Buffer {
  const create = new PbWriter().bytes(1, c.key).bytes(2, c.range_end).int(3, c.start_revision).bool(6, c.prev_kv);
  return new PbWriter().message(1, create).finish();
}

/** ResponseHeader {cluster_id 1, member_id 2, revision 3, raft_term 4} → revision. */
function headerRevision(r: PbReader): string {
  let revision = '0';
  while (r.next()) if (r.field === 3) revision = r.int64(); else r.skip();
  return revision;
}

const EMPTY = Buffer.alloc(0);

/** mvccpb.KeyValue {key 1, create_revision 2, mod_revision 3, version 4, value 5, lease 6}. */
function keyValue(r: PbReader): EtcdKeyValue {
  const kv: EtcdKeyValue = { key: EMPTY, value: EMPTY, create_revision: '0', mod_revision: '0', version: '0', lease: '0' };
  while (r.next()) {
    switch (r.field) {
      case 1: kv.key = r.bytes(); break;
      case 2: kv.create_revision = r.int64(); break;
      case 3: kv.mod_revision = r.int64(); break;
      case 4: kv.version = r.int64(); break;
      case 5: kv.value = r.bytes(); break;
      case 6: kv.lease = r.int64(); break;
      default: r.skip();
    }
  }
  return kv;
}

/** RangeResponse {header 1, kvs 2, more 3, count 4}. */
export function decodeRange(b: Buffer): RangeResponse {
  const out: RangeResponse = { revision: '0', kvs: [], more: false };
  const r = new PbReader(b);
  while (r.next()) {
    switch (r.field) {
      case 1: out.revision = headerRevision(r.message()); break;
      case 2: out.kvs.push(keyValue(r.message())); break;
      case 3: out.more = r.bool(); break;
      default: r.skip();
    }
  }
  return out;
}

/** TxnResponse {header 1, succeeded 2, responses 3}. */
export function decodeTxn(b: Buffer): TxnResponse {
  const out: TxnResponse = { revision: '0', succeeded: false };
  const r = new PbReader(b);
  while (r.next()) {
    if (r.field === 1) out.revision = headerRevision(r.message());
    else if (r.field === 2) out.succeeded = r.bool();
    else r.skip();
  }
  return out;
}

/**
 * The int64 fields of LeaseGrantResponse {header 1, ID 2, TTL 3, error 4},
 * LeaseTimeToLiveResponse {header 1, ID 2, TTL 3, grantedTTL 4} and
 * LeaseKeepAliveResponse {header 1, ID 2, TTL 3}; LeaseGrant's error string too.
 */
export function decodeLeaseResponse(b: Buffer): { ID: string; TTL: string; error: string } {
  const out = { ID: '0', TTL: '0', error: '' };
  const r = new PbReader(b);
  while (r.next()) {
    if (r.field === 2) out.ID = r.int64();
    else if (r.field === 3) out.TTL = r.int64();
    else if (r.field === 4 && r.wire === LEN) out.error = r.string();   // grantedTTL (varint) in TimeToLive
    else r.skip();
  }
  return out;
}

/** AuthenticateResponse {header 1, token 2}. */
export function decodeAuthenticate(b: Buffer): string {
  const r = new PbReader(b);
  let token = '';
  while (r.next()) if (r.field === 2) token = r.string(); else r.skip();
  return token;
}

/** mvccpb.Event {type 1 (PUT 0, DELETE 1), kv 2, prev_kv 3}. */
function watchEvent(r: PbReader): WatchEvent {
  let type: WatchEvent['type'] = 'PUT';
  let kv: EtcdKeyValue | undefined;
  let prev: EtcdKeyValue | undefined;
  while (r.next()) {
    switch (r.field) {
      case 1: type = r.uint() === 1 ? 'DELETE' : 'PUT'; break;
      case 2: kv = keyValue(r.message()); break;
      case 3: prev = keyValue(r.message()); break;
      default: r.skip();
    }
  }
  const ev: WatchEvent = { type, kv: kv ?? keyValue(new PbReader(EMPTY)) };
  if (prev) ev.prev_kv = prev;
  return ev;
}

/** WatchResponse {header 1, watch_id 2, created 3, canceled 4, compact_revision 5, cancel_reason 6, fragment 7, events 11}. */
export function decodeWatch(b: Buffer): WatchResponse {
  const out: WatchResponse = { revision: '0', created: false, canceled: false, compact_revision: '0', cancel_reason: '', events: [] };
  const r = new PbReader(b);
  while (r.next()) {
    switch (r.field) {
      case 1: out.revision = headerRevision(r.message()); break;
      case 3: out.created = r.bool(); break;
      case 4: out.canceled = r.bool(); break;
      case 5: out.compact_revision = r.int64(); break;
      case 6: out.cancel_reason = r.string(); break;
      case 11: out.events.push(watchEvent(r.message())); break;
      default: r.skip();
    }
  }
  return out;
}
