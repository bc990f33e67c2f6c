// The etcd client as twill configures it (lib/subnet/etcd-grpc.ts: etcd's gRPC API over
// node:http2), plus the few helpers the subnet manager needs (paginated list, TTL lookups).
//
// Fault handling: every call goes straight to etcd and fails fast while it is down (a per-call
// deadline bounds hung servers); the caller's Backoff decides when to try again, and reports why.
import { readFileSync } from 'node:fs';
import { EtcdGrpc, type EtcdKeyValue, type EtcdTls } from './etcd-grpc.js';
import { TwillError, errorMessage } from '../errors.js';

export type { EtcdKeyValue } from './etcd-grpc.js';

export interface EtcdConnectOptions {
  endpoints: string[];
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
  username?: string | undefined;
  password?: string | undefined;
  /** Deadline of each unary call (default 5000 ms). */
  requestTimeoutMs?: number | undefined;
}

function tlsOf(o: EtcdConnectOptions): EtcdTls | undefined {
  if (!o.caFile && !o.certFile && !o.keyFile) return undefined;
  if (!o.caFile) throw new TwillError('CONFIG_INVALID', 'etcd TLS: --etcd-cafile is required when a client certificate or key is given', { field: 'etcd-cafile' });
  if (!!o.certFile !== !!o.keyFile) throw new TwillError('CONFIG_INVALID', 'etcd TLS: --etcd-certfile and --etcd-keyfile must be given together', { field: o.certFile ? 'etcd-keyfile' : 'etcd-certfile' });
  const read = (path: string, what: string) => {
    try { return readFileSync(path); } catch (err) { throw new TwillError('CONFIG_INVALID', `etcd TLS: cannot read ${what} ${path}: ${errorMessage(err)}`, { field: what, value: path, cause: err }); }
  };
  return {
    ca: read(o.caFile, 'etcd-cafile'),
    ...(o.keyFile ? { key: read(o.keyFile, 'etcd-keyfile') } : {}),
    ...(o.certFile ? { cert: read(o.certFile, 'etcd-certfile') } : {}),
  };
}

export function createEtcdClient(o: EtcdConnectOptions): EtcdGrpc {
  if (o.endpoints.length === 0) throw new TwillError('CONFIG_INVALID', 'etcd: no endpoints given', { field: 'etcd-endpoints', value: o.endpoints });
  for (const e of o.endpoints) {
    let u: URL | undefined;
    try { u = new URL(e); } catch { u = undefined; }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      throw new TwillError('CONFIG_INVALID', `--etcd-endpoints: ${JSON.stringify(e)} is invalid: must be an http:// or https:// URL`, { field: 'etcd-endpoints', value: e, rule: 'http(s) URL' });
    }
  }
  const tls = tlsOf(o);
  return new EtcdGrpc({
    endpoints: o.endpoints,
    tls,
    ...(o.username ? { auth: { username: o.username, password: o.password ?? '' } } : {}),
    timeoutMs: o.requestTimeoutMs ?? 5000,
  });
}

/** The first key after every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) { const out = Buffer.from(b.subarray(0, i + 1)); out[i]! += 1; return out; }
  }
  return Buffer.from([0]);
}

/** All keys under `prefix` at one revision, fetched in pages (bounded message sizes). */
export async function listPrefix(client: EtcdGrpc, prefix: string, pageSize = 2000): Promise<{ revision: bigint; kvs: EtcdKeyValue[] }> {
  const end = prefixEnd(prefix);
  const kvs: EtcdKeyValue[] = [];
  let key = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    const res = await client.range({ key, range_end: end, limit: pageSize, ...(revision ? { revision } : {}) });
    revision ??= res.revision;
    kvs.push(...res.kvs);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || !last) break;
    key = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { revision: BigInt(revision), kvs };
}

/** Remaining TTL in seconds of an etcd lease; ≤ 0 when it is gone. */
export async function leaseTtl(client: EtcdGrpc, id: string): Promise<number> {
  try {
    return await client.leaseTimeToLive(id);
  } catch (err) {
    if (/lease not found|requested lease not found/i.test(errorMessage(err))) return -1;
    throw err;
  }
}

/** Runs `fn` with TTL lookups for many lease ids at bounded concurrency, deduplicated. */
export async function leaseTtls(client: EtcdGrpc, ids: Iterable<string>, concurrency = 64): Promise<Map<string, number>> {
  const todo = [...new Set(ids)];
  const out = new Map<string, number>();
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const id = todo[next++]!;
      out.set(id, await leaseTtl(client, id));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, todo.length) }, worker));
  return out;
}

/** Wraps a store failure as an ETCD TwillError that names the endpoints and the operation. */
export function etcdError(what: string, endpoints: readonly string[], err: unknown): TwillError {
  if (err instanceof TwillError) return err;
  return new TwillError('ETCD', `etcd ${endpoints.join(',')}: ${what}: ${errorMessage(err)}`, { cause: err });
}
