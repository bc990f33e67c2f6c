// The etcd3 client as twill configures it, plus the few raw RPC helpers the subnet manager
// needs (paginated list, guarded txn, one-shot keepalive, TTL lookup).
//
// Fault handling: etcd3's default wraps each host in a circuit breaker that stays open for 5 s
// after three failures, and retries every call three times. After an outage that delays the
// first successful call by ≈5 s, and it hides failures from our own retry loops, which already
// back off with jitter and report why. So both policies are pass-throughs: every call goes
// straight to gRPC, fails fast while etcd is down (a per-call deadline bounds hung servers),
// and the caller's Backoff decides when to try again. gRPC's own reconnect backoff is capped
// at 1 s and keepalive pings detect a dead or frozen server on idle watch streams.
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions, type IKeyValue, type IRangeResponse } from 'etcd3';
import { TwillError, errorMessage } from '../errors.js';

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

type FaultHandling = NonNullable<IOptions['faultHandling']>;
type Policy = NonNullable<FaultHandling['global']>;
type WatchBackoff = NonNullable<FaultHandling['watchBackoff']>;

const noEvent = () => ({ dispose() { /* nothing to unsubscribe */ } });

/** A cockatiel-compatible policy that just runs the call (etcd3 only ever calls execute). */
const passThrough: Policy = {
  _altReturn: undefined as never,
  onSuccess: noEvent,
  onFailure: noEvent,
  execute: async (fn, signal) => fn({ signal: signal ?? new AbortController().signal }),
};

/** Constant 500 ms watch reconnect backoff (we cancel our watch on disconnect anyway). */
const watchBackoff: WatchBackoff = { duration: 500, next: () => watchBackoff };

function credentials(o: EtcdConnectOptions): IOptions['credentials'] {
  if (!o.caFile && !o.certFile && !o.keyFile) return undefined;
  if (!o.caFile) throw new TwillError('CONFIG_INVALID', 'etcd TLS: --etcd-cafile is required when a client certificate or key is given', { field: 'etcd-cafile' });
  if (!!o.certFile !== !!o.keyFile) throw new TwillError('CONFIG_INVALID', 'etcd TLS: --etcd-certfile and --etcd-keyfile must be given together', { field: o.certFile ? 'etcd-keyfile' : 'etcd-certfile' });
  const read = (path: string, what: string) => {
    try { return readFileSync(path); } catch (err) { throw new TwillError('CONFIG_INVALID', `etcd TLS: cannot read ${what} ${path}: ${errorMessage(err)}`, { field: what, value: path, cause: err }); }
  };
  return {
    rootCertificate: read(o.caFile, 'etcd-cafile'),
    ...(o.keyFile ? { privateKey: read(o.keyFile, 'etcd-keyfile') } : {}),
    ...(o.certFile ? { certChain: read(o.certFile, 'etcd-certfile') } : {}),
  };
}

export function createEtcdClient(o: EtcdConnectOptions): Etcd3 {
  if (o.endpoints.length === 0) throw new TwillError('CONFIG_INVALID', 'etcd: no endpoints given', { field: 'etcd-endpoints', value: o.endpoints });
  const timeout = o.requestTimeoutMs ?? 5000;
  const creds = credentials(o);
  return new Etcd3({
    hosts: o.endpoints,
    ...(creds ? { credentials: creds } : {}),
    ...(o.username ? { auth: { username: o.username, password: o.password ?? '' } } : {}),
    dialTimeout: timeout,
    // gRPC deadlines are wall-clock by nature; the injected Clock does not apply here.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: { host: () => passThrough, global: passThrough, watchBackoff },
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      'grpc.keepalive_time_ms': 10_000,          // etcd's default enforcement minimum is 5 s
      'grpc.keepalive_timeout_ms': 5000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    },
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
export async function listPrefix(client: Etcd3, prefix: string, pageSize = 2000): Promise<{ revision: bigint; kvs: IKeyValue[] }> {
  const end = prefixEnd(prefix);
  const kvs: IKeyValue[] = [];
  let key = Buffer.from(prefix);
  let revision: string | undefined;
  for (;;) {
    const res: IRangeResponse = await client.kv.range({ key, range_end: end, limit: pageSize, ...(revision ? { revision } : {}) });
    revision ??= res.header.revision;
    kvs.push(...res.kvs);
    const last = res.kvs[res.kvs.length - 1];
    if (!res.more || !last) break;
    key = Buffer.concat([last.key, Buffer.from([0])]);
  }
  return { revision: BigInt(revision), kvs };
}

/** Remaining TTL in seconds of an etcd lease; ≤ 0 when it is gone. */
export async function leaseTtl(client: Etcd3, id: string): Promise<number> {
  try {
    const res = await client.leaseClient.leaseTimeToLive({ ID: id });
    return Number(res.TTL);
  } catch (err) {
    if (/lease not found|requested lease not found/i.test(errorMessage(err))) return -1;
    throw err;
  }
}

/** One keepalive round trip; returns the new TTL in seconds (≤ 0: the lease is gone). */
export async function keepaliveOnce(client: Etcd3, id: string, timeoutMs: number): Promise<number> {
  const stream = await client.leaseClient.leaseKeepAlive({ deadline: Date.now() + timeoutMs });
  try {
    return await new Promise<number>((resolve, reject) => {
      stream.on('data', (res: { TTL: string }) => resolve(Number(res.TTL)));
      stream.on('error', reject);
      stream.on('end', () => reject(new Error('keepalive stream ended without a reply')));
      stream.write({ ID: id });
    });
  } finally {
    stream.end();
    stream.cancel();
  }
}

/** Runs `fn` with TTL lookups for many lease ids at bounded concurrency, deduplicated. */
export async function leaseTtls(client: Etcd3, ids: Iterable<string>, concurrency = 64): Promise<Map<string, number>> {
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
