// etcd's v3 API through its JSON gateway (the `/v3/...` HTTP endpoints every etcd ≥ 3.4 serves on
// its client port), on node:http(s) — no gRPC stack in the agent.
//
// Why not the etcd3 package: it brings gRPC, protobuf and their run-time-loaded .proto
// definitions, measured at +24 MiB RSS in the agent (a quarter of the 96 MiB budget at 20k
// peers), for the eight calls twill makes: range, txn, lease grant / revoke / time-to-live /
// one keepalive, a prefix watch, and authenticate. The gateway speaks the same messages as gRPC
// (protobuf's JSON mapping: bytes as base64, 64-bit integers as strings, enums by name, fields
// at their default value omitted), so the request and response shapes below are etcd's own.
//
// Endpoints are tried in order from the last one that answered; a connection failure moves on to
// the next, an answer from etcd (even an error) does not. Every unary call has a deadline. With
// --etcd-username, a token from /v3/auth/authenticate rides in the Authorization header and is
// renewed once when etcd calls it invalid. TLS: the CA (and client certificate) of the options.
// Failures are plain Errors: the subnet manager wraps them (etcdError) with endpoints and the call.
import { request as httpRequest, Agent as HttpAgent, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';

export interface EtcdTls { ca: Buffer; cert?: Buffer; key?: Buffer }

export interface EtcdGatewayOptions {
  endpoints: readonly string[];
  tls?: EtcdTls | undefined;
  auth?: { username: string; password: string } | undefined;
  /** Deadline of each unary call (default 5000 ms). */
  timeoutMs?: number;
}

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

/** A running watch: responses and its end (error or close) arrive through the callbacks. */
export interface WatchStream { cancel(): void }

type Json = Record<string, unknown>;

export class EtcdGateway {
  private readonly endpoints: readonly URL[];
  private current = 0;
  private readonly agent: HttpAgent;
  private readonly timeoutMs: number;
  private token: string | undefined;
  private readonly o: EtcdGatewayOptions;

  constructor(o: EtcdGatewayOptions) {
    this.o = o;
    this.endpoints = o.endpoints.map((e) => new URL(e));
    this.timeoutMs = o.timeoutMs ?? 5000;
    const tls = o.tls;
    this.agent = tls
      ? new HttpsAgent({ keepAlive: true, ca: tls.ca, ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) })
      : new HttpAgent({ keepAlive: true });
  }

  /** The endpoint the last call went to (calls fail over in order). */
  get endpoint(): string { return this.endpoints[this.current]!.href; }

  async range(r: RangeRequest): Promise<RangeResponse> {
    const res = await this.call('/v3/kv/range', r);
    return { revision: revisionOf(res), kvs: ((res.kvs ?? []) as Json[]).map(kvOf), more: res.more === true };
  }

  async txn(t: TxnRequest): Promise<{ revision: string; succeeded: boolean }> {
    const res = await this.call('/v3/kv/txn', t);
    return { revision: revisionOf(res), succeeded: res.succeeded === true };
  }

  /** A new etcd lease: its ID and the TTL etcd granted (seconds, as etcd's int64 strings). */
  async leaseGrant(ttlSec: number): Promise<{ ID: string; TTL: string }> {
    const res = await this.call('/v3/lease/grant', { TTL: ttlSec, ID: 0 });
    if (typeof res.ID !== 'string') throw new Error('lease grant: etcd returned no lease ID');
    return { ID: res.ID, TTL: int64(res.TTL) };
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id });
  }

  /** Remaining TTL in seconds; -1 when the lease does not exist. */
  async leaseTimeToLive(id: string): Promise<number> {
    const res = await this.call('/v3/lease/timetolive', { ID: id });
    return Number(res.TTL ?? 0);
  }

  /** One keepalive round trip; the new TTL in seconds (≤ 0: the lease is gone). */
  async leaseKeepAliveOnce(id: string): Promise<number> {
    const res = await this.call('/v3/lease/keepalive', { ID: id });
    const result = (res.result ?? {}) as Json;
    return Number(result.TTL ?? 0);
  }

  /**
   * Opens a watch. `onResponse` gets every response (the first confirms creation); `onEnd` is
   * called once when the stream ends for any reason other than cancel().
   */
  async watch(create: WatchCreate, onResponse: (r: WatchResponse) => void, onEnd: (err: Error) => void): Promise<WatchStream> {
    const { req, res } = await this.open('/v3/watch', { create_request: create }, undefined);
    let buf = '';
    let done = false;
    const end = (err: Error) => { if (!done) { done = true; onEnd(err); } };
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let msg: Json;
        try { msg = JSON.parse(line) as Json; } catch { end(new Error(`watch: unreadable message from etcd: ${line.slice(0, 200)}`)); req.destroy(); return; }
        if (msg.error !== undefined) { end(new Error(`watch: ${errorText(msg)}`)); req.destroy(); return; }
        onResponse(watchResponseOf((msg.result ?? {}) as Json));
      }
    });
    res.on('end', () => end(new Error('watch stream ended')));
    res.on('error', (err) => end(err));
    req.on('error', (err) => end(err));
    return { cancel: () => { done = true; req.destroy(); } };
  }

  close(): void {
    this.agent.destroy();
  }

  /** A unary call: JSON in, JSON out, with failover, deadline and (re-)authentication. */
  private async call(path: string, body: unknown, retried = false): Promise<Json> {
    const { res } = await this.open(path, body, this.timeoutMs);
    const text = await readAll(res, this.timeoutMs);
    let msg: Json;
    try { msg = JSON.parse(text) as Json; } catch { throw new Error(`${path}: HTTP ${res.statusCode ?? '?'}: ${text.slice(0, 200)}`); }
    if (msg.error === undefined && (res.statusCode ?? 500) < 300) return msg;
    const m = errorText(msg);
    if (!retried && this.o.auth && /invalid auth token|user name is empty/i.test(m)) {
      this.token = undefined;
      return this.call(path, body, true);
    }
    throw new Error(this.hinted(m));
  }

  /**
   * etcd's gateway reaches etcd's gRPC side with the server's own certificate as its client
   * certificate, so under --client-cert-auth that certificate needs the clientAuth extended key
   * usage (kubeadm's etcd certificates have it; etcd-io/etcd#16590). Without it every call fails
   * with a bare "connection closed": say what to fix.
   */
  private hinted(m: string): string {
    if (!this.o.tls?.cert || !/connection closed|bad certificate|authentication handshake/i.test(m)) return m;
    return `${m} (etcd's JSON gateway could not reach etcd: with client-certificate auth, etcd's server certificate must also allow client authentication — extendedKeyUsage clientAuth)`;
  }

  /** Sends one request to the first endpoint that accepts a connection; resolves on the response headers. */
  private async open(path: string, body: unknown, timeoutMs: number | undefined): Promise<{ req: ClientRequest; res: IncomingMessage }> {
    if (this.o.auth && this.token === undefined && path !== '/v3/auth/authenticate') await this.authenticate();
    const payload = JSON.stringify(body, (_k, v: unknown) => (isBufferJson(v) ? Buffer.from(v.data).toString('base64') : v));
    let lastErr: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.current + i) % this.endpoints.length;
      try {
        const r = await this.send(this.endpoints[at]!, path, payload, timeoutMs);
        this.current = at;
        return r;
      } catch (err) {
        lastErr = err;
      }
    }
    throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
  }

  private send(base: URL, path: string, payload: string, timeoutMs: number | undefined): Promise<{ req: ClientRequest; res: IncomingMessage }> {
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) };
    if (this.token !== undefined && path !== '/v3/auth/authenticate') headers.authorization = this.token;
    const url = new URL(path, base);
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'POST', agent: this.agent, headers }, (res) => resolve({ req, res }));
      if (timeoutMs !== undefined) {
        req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      }
      req.on('error', reject);
      req.end(payload);
    });
  }

  private async authenticate(): Promise<void> {
    const a = this.o.auth!;
    const res = await this.call('/v3/auth/authenticate', { name: a.username, password: a.password }, true);
    if (typeof res.token !== 'string') throw new Error('authenticate: etcd returned no token');
    this.token = res.token;
  }
}

function readAll(res: IncomingMessage, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => { res.destroy(new Error(`response not complete within ${timeoutMs} ms`)); }, timeoutMs);
    res.setEncoding('utf8');
    res.on('data', (c: string) => { out += c; });
    res.on('end', () => { clearTimeout(t); resolve(out); });
    res.on('error', (err) => { clearTimeout(t); reject(err); });
  });
}

function isBufferJson(v: unknown): v is { type: 'Buffer'; data: number[] } {
  return typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data);
}

function errorText(msg: Json): string {
  const e = msg.message ?? msg.error;
  if (typeof e === 'string') return e;
  if (typeof e === 'object' && e !== null && typeof (e as Json).message === 'string') return (e as Json).message as string;
  return JSON.stringify(msg).slice(0, 200);
}

function revisionOf(res: Json): string {
  const h = (res.header ?? {}) as Json;
  return typeof h.revision === 'string' ? h.revision : '0';
}

const bytes = (v: unknown): Buffer => (typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.alloc(0));
const int64 = (v: unknown): string => (typeof v === 'string' || typeof v === 'number' ? String(v) : '0');

function kvOf(j: Json): EtcdKeyValue {
  return {
    key: bytes(j.key), value: bytes(j.value), create_revision: int64(j.create_revision),
    mod_revision: int64(j.mod_revision), version: int64(j.version), lease: int64(j.lease),
  };
}

function watchResponseOf(r: Json): WatchResponse {
  const events = ((r.events ?? []) as Json[]).map((e): WatchEvent => ({
    type: e.type === 'DELETE' ? 'DELETE' : 'PUT',
    kv: kvOf((e.kv ?? {}) as Json),
    ...(e.prev_kv ? { prev_kv: kvOf(e.prev_kv as Json) } : {}),
  }));
  return {
    revision: revisionOf(r), created: r.created === true, canceled: r.canceled === true,
    compact_revision: int64(r.compact_revision), cancel_reason: typeof r.cancel_reason === 'string' ? r.cancel_reason : '', events,
  };
}
