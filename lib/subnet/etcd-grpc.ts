// etcd's v3 API over gRPC, on node:http2 with the messages encoded by lib/subnet/etcd-proto.ts —
// the protocol etcdctl and every etcd client speak, without a gRPC library.
//
// Why not the etcd3 package: it brings @grpc/grpc-js, protobufjs and run-time-loaded .proto
// definitions, measured at +24 MiB RSS in the agent (a quarter of the 96 MiB budget at 20k
// peers), for the eight calls twill makes: range, txn, lease grant / revoke / time-to-live /
// keepalive, a prefix watch, and authenticate.
// Why not etcd's JSON gateway (what twill used before): producing JSON costs etcd ≈10× the CPU
// of protobuf — listing 20k leases took etcd 270–420 ms against 30–50 ms over gRPC — and the
// gateway reaches etcd with etcd's *server* certificate as its client certificate, so under
// client-certificate auth it failed unless that certificate also allowed clientAuth
// (etcd-io/etcd#16590). gRPC talks to etcd directly: neither applies.
//
// gRPC over HTTP/2, the parts used here: a POST to /<service>/<method> with content-type
// application/grpc; each message framed as 1 byte (0: not compressed) + 4 bytes big-endian
// length + protobuf; the outcome in the grpc-status / grpc-message trailers (or headers, for an
// answer without messages). One HTTP/2 session per endpoint carries every call as a stream.
//
// Endpoints are tried in order from the last one that answered; a failure before etcd answers
// (no connection, reset, no response headers within the deadline) moves on to the next, an
// answer from etcd (even an error) does not. Every unary call has a deadline (also sent as
// grpc-timeout). With --etcd-username, a token from Auth/Authenticate rides in the `token`
// metadata and is renewed once when etcd calls it invalid. Failures are plain Errors carrying
// etcd's message: the subnet manager wraps them (etcdError) with endpoints and the call.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import {
  decodeAuthenticate, decodeLeaseResponse, decodeRange, decodeTxn, decodeWatch, encodeAuthenticate, encodeLeaseGrant,
  encodeLeaseId, encodeRange, encodeTxn, encodeWatchCreate,
  type RangeRequest, type RangeResponse, type TxnRequest, type TxnResponse, type WatchCreate, type WatchResponse,
} from './etcd-proto.js';

export type { Compare, EtcdKeyValue, RangeRequest, RangeResponse, RequestOp, TxnRequest, WatchCreate, WatchEvent, WatchResponse } from './etcd-proto.js';

export interface EtcdTls { ca: Buffer; cert?: Buffer; key?: Buffer }

export interface EtcdGrpcOptions {
  endpoints: readonly string[];
  tls?: EtcdTls | undefined;
  auth?: { username: string; password: string } | undefined;
  /** Deadline of each unary call, and of each stream's response headers (default 5000 ms). */
  timeoutMs?: number;
}

/** A running stream: responses and its end (error or close) arrive through the callbacks. */
export interface WatchStream { cancel(): void }

const AUTHENTICATE = '/etcdserverpb.Auth/Authenticate';

/** A call that failed before etcd answered: the next endpoint may. */
class NoAnswer extends Error {}

interface Sink {
  /** One complete message. */
  message(b: Buffer): void;
  /** The call ended: undefined on grpc-status 0, else why. */
  end(err: Error | undefined): void;
}

export class EtcdGrpc {
  private readonly endpoints: readonly URL[];
  private current = 0;
  private session: ClientHttp2Session | undefined;
  private sessionAt = -1;
  private readonly timeoutMs: number;
  private token: string | undefined;
  private readonly o: EtcdGrpcOptions;

  constructor(o: EtcdGrpcOptions) {
    this.o = o;
    this.endpoints = o.endpoints.map((e) => new URL(e));
    this.timeoutMs = o.timeoutMs ?? 5000;
  }

  /** The endpoint the last call went to (calls fail over in order). */
  get endpoint(): string { return this.endpoints[this.current]!.href; }

  async range(r: RangeRequest): Promise<RangeResponse> {
    return decodeRange(await this.unary('/etcdserverpb.KV/Range', encodeRange(r)));
  }

  async txn(t: TxnRequest): Promise<TxnResponse> {
    return decodeTxn(await this.unary('/etcdserverpb.KV/Txn', encodeTxn(t)));
  }

  /** A new etcd lease: its ID and the TTL etcd granted (seconds, as decimal strings). */
  async leaseGrant(ttlSec: number): Promise<{ ID: string; TTL: string }> {
    const res = decodeLeaseResponse(await this.unary('/etcdserverpb.Lease/LeaseGrant', encodeLeaseGrant(ttlSec)));
    if (res.error) throw new Error(`lease grant: ${res.error}`);
    if (res.ID === '0') throw new Error('lease grant: etcd returned no lease ID');
    return { ID: res.ID, TTL: res.TTL };
  }

  async leaseRevoke(id: string): Promise<void> {
    await this.unary('/etcdserverpb.Lease/LeaseRevoke', encodeLeaseId(id));
  }

  /** Remaining TTL in seconds; -1 when the lease does not exist. */
  async leaseTimeToLive(id: string): Promise<number> {
    return Number(decodeLeaseResponse(await this.unary('/etcdserverpb.Lease/LeaseTimeToLive', encodeLeaseId(id))).TTL);
  }

  /** One keepalive round trip on LeaseKeepAlive's stream; the new TTL in seconds (≤ 0: the lease is gone). */
  async leaseKeepAliveOnce(id: string): Promise<number> {
    return this.authenticated(async () => {
      let timer: NodeJS.Timeout | undefined;
      let stream: WatchStream | undefined;
      let settled = false;
      try {
        return await new Promise<number>((resolve, reject) => {
          timer = setTimeout(() => reject(new Error(`no keepalive answer within ${this.timeoutMs} ms`)), this.timeoutMs);
          this.stream('/etcdserverpb.Lease/LeaseKeepAlive', encodeLeaseId(id), {
            message: (b) => resolve(Number(decodeLeaseResponse(b).TTL)),
            end: (err) => reject(err ?? new Error('keepalive stream ended without an answer')),
          }).then((s) => { stream = s; if (settled) s.cancel(); }, reject);
        });
      } finally {
        settled = true;
        clearTimeout(timer);
        stream?.cancel();
      }
    });
  }

  /**
   * Opens a watch. `onResponse` gets every response (the first confirms creation); `onEnd` is
   * called once when the stream ends for any reason other than cancel().
   */
  async watch(create: WatchCreate, onResponse: (r: WatchResponse) => void, onEnd: (err: Error) => void): Promise<WatchStream> {
    let done = false;
    const opened: { s?: WatchStream } = {};   // set once the open settles; a message may come first
    const end = (err: Error) => { if (!done) { done = true; opened.s?.cancel(); onEnd(err); } };
    const s = await this.authenticated(() => this.stream('/etcdserverpb.Watch/Watch', encodeWatchCreate(create), {
      message: (b) => {
        if (done) return;
        let res: WatchResponse;
        try { res = decodeWatch(b); } catch (err) { end(new Error(`watch: unreadable message from etcd: ${(err as Error).message}`)); return; }
        onResponse(res);
      },
      end: (err) => end(err ?? new Error('watch stream ended')),
    }));
    opened.s = s;
    if (done) s.cancel();   // ended while the open was settling
    return { cancel: () => { done = true; s.cancel(); } };
  }

  close(): void {
    this.session?.destroy();
    this.session = undefined;
  }

  /** A unary call with failover, deadline and (re-)authentication: the response message. */
  private unary(path: string, body: Buffer): Promise<Buffer> {
    return this.authenticated(() => this.unaryOnce(path, body));
  }

  /** A unary call with failover and deadline, with the current token if any. */
  private unaryOnce(path: string, body: Buffer): Promise<Buffer> {
    return this.failover((at) => new Promise<Buffer>((resolve, reject) => {
      let msg: Buffer | undefined;
      this.call(at, path, body, true, {
        message: (b) => { msg ??= b; },
        end: (err) => (err ? reject(err) : resolve(msg ?? Buffer.alloc(0))),
      });
    }));
  }

  /** Opens a long-lived stream (first message sent, request side left open); resolves once etcd answers. */
  private stream(path: string, first: Buffer, sink: Sink): Promise<WatchStream> {
    return this.failover((at) => new Promise<WatchStream>((resolve, reject) => {
      let opened = false;
      const s = this.call(at, path, first, false, {
        message: (b) => sink.message(b),
        end: (err) => { if (opened) sink.end(err); else reject(err ?? new Error(`${path}: stream ended before it opened`)); },
      }, () => { opened = true; resolve(s); });
    }));
  }

  /** Runs `fn` with a token when auth is configured; once more with a fresh one if etcd rejected it. */
  private async authenticated<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.o.auth) return fn();
    if (this.token === undefined) await this.authenticate();
    try {
      return await fn();
    } catch (err) {
      if (!/invalid auth token|user name is empty/i.test((err as Error).message)) throw err;
      this.token = undefined;
      await this.authenticate();
      return fn();
    }
  }

  private async authenticate(): Promise<void> {
    const a = this.o.auth!;
    this.token = undefined;
    const token = decodeAuthenticate(await this.unaryOnce(AUTHENTICATE, encodeAuthenticate(a.username, a.password)));
    if (!token) throw new Error('authenticate: etcd returned no token');
    this.token = token;
  }

  /** Runs `attempt` against each endpoint in turn until one answers (an etcd error is an answer). */
  private async failover<T>(attempt: (at: number) => Promise<T>): Promise<T> {
    let lastErr: unknown;
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.current + i) % this.endpoints.length;
      try {
        const r = await attempt(at);
        this.current = at;
        return r;
      } catch (err) {
        if (!(err instanceof NoAnswer)) { this.current = at; throw err; }
        lastErr = err;
      }
    }
    throw new Error((lastErr as Error).message);
  }

  /**
   * One gRPC call on endpoint `at`: sends `body` (and ends the request side when `unary`; a
   * stream's stays open, as etcd ends a watch whose client half-closes), feeds each response
   * message to the sink and ends it with the call's status. Until etcd's response headers, every
   * failure is a NoAnswer. A unary call's deadline covers the whole call; a stream's, its
   * response headers. `onOpen` runs when a stream's headers arrive without a final status.
   */
  private call(at: number, path: string, body: Buffer, unary: boolean, sink: Sink, onOpen?: () => void): WatchStream {
    const headers: Record<string, string> = { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' };
    if (unary) headers['grpc-timeout'] = `${this.timeoutMs}m`;
    if (this.token !== undefined && path !== AUTHENTICATE) headers.token = this.token;
    const host = this.endpoints[at]!.host;
    let stream: ClientHttp2Stream;
    try {
      stream = this.sessionFor(at).request(headers, { endStream: false });
    } catch (err) {
      sink.end(new NoAnswer(`${host}: ${(err as Error).message}`));
      return { cancel: () => undefined };
    }
    let answered = false;
    let status: number | undefined;
    let message = '';
    let finished = false;
    const finish = (err: Error | undefined) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      if (err) stream.close(constants.NGHTTP2_CANCEL);
      sink.end(err && !answered && !(err instanceof NoAnswer) ? new NoAnswer(err.message) : err);
    };
    const timer = setTimeout(() => finish(new Error(`${host}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
    const readStatus = (h: IncomingHttpHeaders) => {
      if (h['grpc-status'] !== undefined) status = Number(h['grpc-status']);
      if (typeof h['grpc-message'] === 'string') message = grpcMessage(h['grpc-message']);
    };
    const frames = new Deframer();
    stream.on('response', (h) => {
      answered = true;
      readStatus(h);
      const http = Number(h[':status']);
      if (http !== 200) { finish(new Error(`${host}: HTTP ${http} (not an etcd gRPC endpoint?)`)); return; }
      if (!unary && status === undefined) { clearTimeout(timer); onOpen?.(); }
    });
    stream.on('trailers', readStatus);
    stream.on('data', (chunk: Buffer) => {
      try {
        frames.push(chunk, (m) => { if (!finished) sink.message(m); });
      } catch (err) {
        finish(err as Error);
      }
    });
    stream.on('error', (err) => finish(err));
    stream.on('close', () => {
      if (status === 0) finish(undefined);
      else if (status !== undefined) finish(new Error(message || `gRPC status ${status}`));
      else finish(new Error(`${host}: stream closed without a status (HTTP/2 code ${stream.rstCode ?? '?'})`));
    });
    if (unary) stream.end(frame(body)); else stream.write(frame(body));
    return { cancel: () => { finished = true; clearTimeout(timer); stream.close(constants.NGHTTP2_CANCEL); } };
  }

  private sessionFor(at: number): ClientHttp2Session {
    const s0 = this.session;
    if (s0 && this.sessionAt === at && !s0.closed && !s0.destroyed) return s0;
    s0?.destroy();
    const url = this.endpoints[at]!;
    const tls = this.o.tls;
    const s = connect(url.origin, tls ? { ca: tls.ca, ...(tls.cert ? { cert: tls.cert } : {}), ...(tls.key ? { key: tls.key } : {}) } : {});
    s.on('error', () => { /* surfaces on the session's streams */ });
    const drop = () => { if (this.session === s) this.session = undefined; };
    s.on('close', drop);
    s.on('goaway', drop);   // etcd going away: the next call reconnects
    // The agent's other work keeps the process alive; an idle etcd session must not.
    s.unref();
    this.session = s;
    this.sessionAt = at;
    return s;
  }
}

/** gRPC's length-prefixed message framing. */
function frame(msg: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + msg.length);
  out[0] = 0;
  out.writeUInt32BE(msg.length, 1);
  msg.copy(out, 5);
  return out;
}

/** Reassembles framed messages from DATA chunks; each message is copied once, when complete. */
class Deframer {
  private chunks: Buffer[] = [];
  private have = 0;
  private need = 5;

  push(chunk: Buffer, out: (m: Buffer) => void): void {
    this.chunks.push(chunk);
    this.have += chunk.length;
    if (this.have < this.need) return;
    // Every complete message in one pass; what remains is less than the next one needs.
    const buf = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.have);
    let pos = 0;
    this.need = 5;
    while (buf.length - pos >= 5) {
      if (buf[pos] !== 0) throw new Error('gRPC: compressed message (not requested)');
      const len = buf.readUInt32BE(pos + 1);
      if (buf.length - pos - 5 < len) { this.need = 5 + len; break; }
      out(buf.subarray(pos + 5, pos + 5 + len));
      pos += 5 + len;
    }
    const rest = buf.subarray(pos);
    this.chunks = rest.length ? [rest] : [];
    this.have = rest.length;
  }
}

/** grpc-message is percent-encoded. */
function grpcMessage(s: string): string {
  try { return decodeURIComponent(s); } catch { return s; }
}
