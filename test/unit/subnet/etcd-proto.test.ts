// lib/subnet/etcd-proto.ts against an independent protobuf implementation: protobufjs with etcd's
// own .proto files (both come with the etcd3 package, a dev dependency used by the benchmark).
// What we encode must decode there to the same fields, and what it encodes we must read back.
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import {
  PbReader, PbWriter, decodeLeaseResponse, decodeRange, decodeTxn, decodeWatch, encodeLeaseGrant, encodeLeaseId, encodeRange,
  encodeTxn, encodeWatchCreate,
} from '../../../lib/subnet/etcd-proto.js';

const require = createRequire(import.meta.url);
const protoDir = join(dirname(require.resolve('etcd3/package.json')), 'proto');
// keepCase: etcd's field names as written (create_revision, not createRevision). The etcd3
// package's copy spells enum values in CamelCase (Equal, Create, Put); the numbers are etcd's.
const root = new protobuf.Root().loadSync(join(protoDir, 'rpc.proto'), { keepCase: true });
const T = (name: string) => root.lookupType(name);
const decodeWith = (name: string, b: Buffer) => T(name).toObject(T(name).decode(b), { longs: String, bytes: Buffer, defaults: true, enums: String, oneofs: true });
const encodeWith = (name: string, o: Record<string, unknown>) => Buffer.from(T(name).encode(T(name).fromObject(o)).finish());

const B = (s: string) => Buffer.from(s);
const BIG = '9223372036854775805';   // etcd lease ids use all 63 bits

describe('etcd messages we send, read by protobufjs', () => {
  it('RangeRequest', () => {
    const o = decodeWith('etcdserverpb.RangeRequest', encodeRange({ key: B('/a/'), range_end: B('/a0'), limit: 2000, revision: '123456789012' }));
    expect(o).toMatchObject({ key: B('/a/'), range_end: B('/a0'), limit: '2000', revision: '123456789012' });
  });

  it('TxnRequest: compares (CREATE = 0 written, as the oneof needs), puts with 63-bit leases, deletes', () => {
    const b = encodeTxn({
      compare: [
        { key: B('/k1'), target: 'CREATE', result: 'EQUAL', create_revision: 0 },
        { key: B('/k2'), target: 'MOD', result: 'LESS', mod_revision: '77' },
        { key: B('/k3'), target: 'VERSION', result: 'GREATER', version: 0 },
        { key: B('/k4'), target: 'LEASE', result: 'NOT_EQUAL', lease: BIG },
      ],
      success: [{ request_put: { key: B('/k1'), value: B('{"x":1}'), lease: BIG } }],
      failure: [{ request_delete_range: { key: B('/k2'), range_end: B('/k3') } }],
    });
    const o = decodeWith('etcdserverpb.TxnRequest', b) as { compare: Record<string, unknown>[]; success: Record<string, unknown>[]; failure: Record<string, unknown>[] };
    expect(o.compare[0]).toMatchObject({ key: B('/k1'), target: 'Create', result: 'Equal', create_revision: '0', target_union: 'create_revision' });
    expect(o.compare[1]).toMatchObject({ target: 'Mod', result: 'Less', mod_revision: '77' });
    expect(o.compare[2]).toMatchObject({ target: 'Version', result: 'Greater', version: '0', target_union: 'version' });
    expect(o.compare[3]).toMatchObject({ target: 'Lease', result: 'NotEqual', lease: BIG });
    expect(o.success[0]).toMatchObject({ request_put: { key: B('/k1'), value: B('{"x":1}'), lease: BIG } });
    expect(o.failure[0]).toMatchObject({ request_delete_range: { key: B('/k2'), range_end: B('/k3') } });
  });

  it('lease and watch requests', () => {
    expect(decodeWith('etcdserverpb.LeaseGrantRequest', encodeLeaseGrant(86400))).toMatchObject({ TTL: '86400', ID: '0' });
    expect(decodeWith('etcdserverpb.LeaseKeepAliveRequest', encodeLeaseId(BIG))).toMatchObject({ ID: BIG });
    const w = decodeWith('etcdserverpb.WatchRequest', encodeWatchCreate({ key: B('/p/'), range_end: B('/p0'), start_revision: '42', prev_kv: true }));
    expect(w).toMatchObject({ create_request: { key: B('/p/'), range_end: B('/p0'), start_revision: '42', prev_kv: true } });
  });
});

describe('etcd messages we read, written by protobufjs', () => {
  const header = { cluster_id: '14841639068965178418', member_id: '10276657743932975437', revision: '991', raft_term: '7' };
  const kv = (k: string, lease: string) => ({ key: B(k), value: B(`v${k}`), create_revision: '5', mod_revision: '9', version: '2', lease });

  it('RangeResponse with 64-bit header ids, leases and a field we do not know (count)', () => {
    const b = encodeWith('etcdserverpb.RangeResponse', { header, kvs: [kv('/a', BIG), kv('/b', '0')], more: true, count: '2' });
    const r = decodeRange(b);
    expect(r.revision).toBe('991');
    expect(r.more).toBe(true);
    expect(r.kvs.map((x) => ({ ...x, key: x.key.toString(), value: x.value.toString() }))).toEqual([
      { key: '/a', value: 'v/a', create_revision: '5', mod_revision: '9', version: '2', lease: BIG },
      { key: '/b', value: 'v/b', create_revision: '5', mod_revision: '9', version: '2', lease: '0' },
    ]);
  });

  it('TxnResponse, lease responses (TTL -1 is ten bytes on the wire), LeaseGrant error', () => {
    expect(decodeTxn(encodeWith('etcdserverpb.TxnResponse', { header, succeeded: true, responses: [{ response_put: { header } }] }))).toEqual({ revision: '991', succeeded: true });
    expect(decodeLeaseResponse(encodeWith('etcdserverpb.LeaseTimeToLiveResponse', { header, ID: BIG, TTL: '-1', grantedTTL: '60' }))).toEqual({ ID: BIG, TTL: '-1', error: '' });
    expect(decodeLeaseResponse(encodeWith('etcdserverpb.LeaseGrantResponse', { header, ID: '5', TTL: '60', error: 'lease exists' }))).toEqual({ ID: '5', TTL: '60', error: 'lease exists' });
  });

  it('WatchResponse: created, events with prev_kv, cancel with compact revision', () => {
    const w = decodeWatch(encodeWith('etcdserverpb.WatchResponse', {
      header, watch_id: '3', created: false, events: [{ type: 'Put', kv: kv('/a', BIG) }, { type: 'Delete', kv: kv('/b', '0'), prev_kv: kv('/b', '12') }],
    }));
    expect(w.events.map((e) => [e.type, e.kv.key.toString(), e.kv.lease, e.prev_kv?.lease])).toEqual([['PUT', '/a', BIG, undefined], ['DELETE', '/b', '0', '12']]);
    expect(decodeWatch(encodeWith('etcdserverpb.WatchResponse', { header, created: true }))).toMatchObject({ created: true, canceled: false, events: [] });
    expect(decodeWatch(encodeWith('etcdserverpb.WatchResponse', { header, canceled: true, compact_revision: '500', cancel_reason: 'gone' })))
      .toMatchObject({ canceled: true, compact_revision: '500', cancel_reason: 'gone' });
  });
});

describe('PbReader / PbWriter', () => {
  it('round-trips int64 edge values', () => {
    for (const v of ['0', '1', '127', '128', '16383', '16384', String(2 ** 49 - 1), String(2 ** 49), String(2 ** 53 + 1), BIG, '9223372036854775807', '-1', '-9223372036854775808']) {
      const r = new PbReader(new PbWriter().int(1, v, true).finish());
      expect(r.next()).toBe(true);
      expect(r.int64()).toBe(v);
    }
  });

  it('skips fields of every wire type, including 10-byte varints', () => {
    // field 9 fixed64, field 10 fixed32, field 11 varint 2^64-1, field 12 bytes, then field 2 = 7
    const b = Buffer.concat([
      Buffer.from([(9 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8, (10 << 3) | 5, 1, 2, 3, 4, (11 << 3) | 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      Buffer.from([(12 << 3) | 2, 3, 0x61, 0x62, 0x63, (2 << 3) | 0, 7]),
    ]);
    const r = new PbReader(b);
    const seen: number[] = [];
    let two = '';
    while (r.next()) { seen.push(r.field); if (r.field === 2) two = r.int64(); else r.skip(); }
    expect(seen).toEqual([9, 10, 11, 12, 2]);
    expect(two).toBe('7');
  });

  it('refuses truncated input instead of reading past the message', () => {
    const full = encodeWith('etcdserverpb.RangeResponse', { kvs: [{ key: B('/abc'), value: B('xyz') }] });
    for (let cut = 1; cut < full.length; cut++) expect(() => decodeRange(full.subarray(0, cut)), `cut at ${cut}`).toThrow(/protobuf: truncated/);
  });
});
