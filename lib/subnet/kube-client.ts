// The only file that talks to the Kubernetes API. It speaks the five calls twill needs (get/list/
// watch a Node, patch nodes/status, get a Pod) over node:https itself, so that RBAC stays
// least-privilege by construction, every call is cancellable by an AbortSignal, and client errors
// become one readable line.
//
// Why not @kubernetes/client-node at run time: loading it takes the agent from ≈39 to ≈116 MiB
// RSS (its config module alone pulls in every generated model and the cloud auth providers,
// ≈107 MiB; no entry point loads less than ≈59 MiB), against a 96 MiB budget for the whole agent
// at 5k Nodes (README, issue 17). Its types still describe the objects (type-only imports, erased
// at build), and the kubeconfig is parsed by js-yaml, the YAML parser client-node itself uses.
// What we do by hand is small and tested against the real kube-apiserver (the kube-* e2e suites,
// test/harness/store-kube-real.ts) and the fake one (test/unit/kube).
//
// Connection: --kubeconfig-file wins (with --kube-api-url overriding its server, like flanneld);
// --kube-api-url alone uses the pod's service-account token and CA when they are mounted (so a
// DaemonSet can point at the API server directly before kube-proxy and the service IP work) and
// plain, unauthenticated requests otherwise (tests, `kubectl proxy`); neither → in-cluster config.
// Kubeconfig users: token, tokenFile, client certificate/key (file or -data); exec and
// auth-provider plugins are refused with a clear error (a DaemonSet uses its service account).
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { dirname, isAbsolute, join } from 'node:path';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import yaml from 'js-yaml';
import { TwillError, abortError } from '../errors.js';
import type { NodeLike } from './kube-node.js';
import { ListScanner } from './kube-list.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnectOptions {
  kubeApiUrl?: string | undefined;
  kubeconfigFile?: string | undefined;
  /** Prepended to the service-account directory (tests use a temporary root). */
  pathPrefix?: string;
  /** Environment for in-cluster detection (tests pass their own). */
  env?: NodeJS.ProcessEnv;
}

/** Where the API server is and how we authenticate: what buildKubeConfig resolves. */
export interface KubeConnection {
  /** Base URL without a trailing slash (may carry a path prefix). */
  server: string;
  skipTLSVerify: boolean;
  /** PEM: the CA that signs the server's certificate (default: Node's trust store). */
  ca?: Buffer;
  /** PEM client certificate and key (kubeconfig client-certificate / client-key). */
  cert?: Buffer;
  key?: Buffer;
  /** Name to verify the server's certificate against (kubeconfig tls-server-name). */
  tlsServerName?: string;
  /** Bearer token, fixed. */
  token?: string;
  /** Bearer token re-read from this file (service-account tokens rotate). */
  tokenFile?: string;
}

const invalidKubeconfig = (file: string, why: string, cause?: unknown) => new TwillError('CONFIG_INVALID',
  `--kubeconfig-file: ${JSON.stringify(file)} is invalid: ${why}`,
  { field: '--kubeconfig-file', value: file, rule: 'must be a readable kubeconfig', ...(cause === undefined ? {} : { cause }) });

export function buildKubeConfig(o: KubeConnectOptions): KubeConnection {
  const env = o.env ?? process.env;
  const prefix = o.pathPrefix ?? '';
  const saDir = `${prefix}${SERVICE_ACCOUNT_DIR}`;
  const hasToken = existsSync(`${saDir}/token`);
  if (o.kubeconfigFile) {
    const c = loadKubeconfig(o.kubeconfigFile);
    return o.kubeApiUrl ? withServer(c, o.kubeApiUrl) : c;
  }
  if (o.kubeApiUrl && hasToken) return withServer(serviceAccount(saDir, 'https://kubernetes.default.svc'), o.kubeApiUrl);
  if (o.kubeApiUrl) {
    validateUrl(o.kubeApiUrl);
    // Plain http has no TLS to verify.
    return { server: o.kubeApiUrl.replace(/\/+$/, ''), skipTLSVerify: isPlainHttp(o.kubeApiUrl) };
  }
  if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
    throw new TwillError('CONFIG_INVALID', '--kube-subnet-mgr: no API server to talk to: pass --kube-api-url or --kubeconfig-file, or run in a pod (KUBERNETES_SERVICE_HOST/PORT are unset)', { field: '--kube-api-url', value: '', rule: 'required outside a pod' });
  }
  if (!hasToken) {
    throw new TwillError('CONFIG_INVALID', `--kube-subnet-mgr: in a pod but ${saDir}/token is missing: mount the service-account token (automountServiceAccountToken) or pass --kubeconfig-file`, { field: '--kube-api-url', value: '', rule: 'in-cluster needs the service-account token' });
  }
  return serviceAccount(saDir, inClusterUrl(env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT));
}

/** The pod's service account: its rotating token file and the cluster CA. */
function serviceAccount(saDir: string, server: string): KubeConnection {
  const caFile = `${saDir}/ca.crt`;
  return { server, skipTLSVerify: false, tokenFile: `${saDir}/token`, ...(existsSync(caFile) ? { ca: readFileSync(caFile) } : {}) };
}

type Named<T> = { name?: unknown } & Record<string, T | unknown>;

/** Reads the current context's cluster and user from a kubeconfig (paths relative to its directory, as kubectl does). */
function loadKubeconfig(file: string): KubeConnection {
  let doc: unknown;
  try {
    doc = yaml.load(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalidKubeconfig(file, `cannot be loaded (${(err as Error).message.split('\n')[0]})`, err);
  }
  if (typeof doc !== 'object' || doc === null) throw invalidKubeconfig(file, 'not a kubeconfig (no mapping)');
  const kc = doc as Record<string, unknown>;
  const pick = (list: string, name: unknown, inner: string): Record<string, unknown> => {
    const items = Array.isArray(kc[list]) ? kc[list] as Named<unknown>[] : [];
    const found = items.find((x) => x?.name === name)?.[inner];
    if (typeof found !== 'object' || found === null) throw invalidKubeconfig(file, `${list}: no entry named ${JSON.stringify(name)}`);
    return found as Record<string, unknown>;
  };
  const currentContext = kc['current-context'];
  if (typeof currentContext !== 'string' || currentContext === '') throw invalidKubeconfig(file, 'no current-context');
  const context = pick('contexts', currentContext, 'context');
  const cluster = pick('clusters', context['cluster'], 'cluster');
  const user = context['user'] === undefined ? {} : pick('users', context['user'], 'user');
  const str = (o: Record<string, unknown>, k: string): string | undefined => (typeof o[k] === 'string' && o[k] !== '' ? o[k] : undefined);
  const path = (p: string) => (isAbsolute(p) ? p : join(dirname(file), p));
  const read = (o: Record<string, unknown>, k: string): Buffer | undefined => {
    const data = str(o, `${k}-data`);
    if (data !== undefined) return Buffer.from(data, 'base64');
    const f = str(o, k);
    if (f === undefined) return undefined;
    try { return readFileSync(path(f)); } catch (err) { throw invalidKubeconfig(file, `${k}: cannot read ${JSON.stringify(path(f))} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, err); }
  };
  const server = str(cluster, 'server');
  if (server === undefined) throw invalidKubeconfig(file, `cluster ${JSON.stringify(context['cluster'])} has no server`);
  validateUrl(server, '--kubeconfig-file');
  for (const k of ['exec', 'auth-provider', 'username'] as const) {
    if (user[k] !== undefined) throw invalidKubeconfig(file, `user ${JSON.stringify(context['user'])}: "${k}" credentials are not supported by twilld; use a token, tokenFile or client certificate (in a DaemonSet, the service account)`);
  }
  if (cluster['proxy-url'] !== undefined) throw invalidKubeconfig(file, `cluster ${JSON.stringify(context['cluster'])}: proxy-url is not supported by twilld`);
  const out: KubeConnection = { server: server.replace(/\/+$/, ''), skipTLSVerify: cluster['insecure-skip-tls-verify'] === true || isPlainHttp(server) };
  const ca = read(cluster, 'certificate-authority');
  const cert = read(user, 'client-certificate');
  const key = read(user, 'client-key');
  if ((cert === undefined) !== (key === undefined)) throw invalidKubeconfig(file, `user ${JSON.stringify(context['user'])}: client-certificate and client-key go together`);
  const tlsServerName = str(cluster, 'tls-server-name');
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  return {
    ...out, ...(ca ? { ca } : {}), ...(cert && key ? { cert, key } : {}), ...(tlsServerName ? { tlsServerName } : {}),
    ...(token ? { token } : tokenFile ? { tokenFile: path(tokenFile) } : {}),
  };
}

function validateUrl(url: string, field = '--kube-api-url'): void {
  let u: URL;
  try { u = new URL(url); } catch {
    throw new TwillError('CONFIG_INVALID', `${field}: ${JSON.stringify(url)} is invalid: must be an http(s) URL`, { field, value: url, rule: 'must be an http(s) URL' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TwillError('CONFIG_INVALID', `${field}: ${JSON.stringify(url)} is invalid: must be an http(s) URL`, { field, value: url, rule: 'must be an http(s) URL' });
  }
}

/** The API server as a pod sees it (client-go's rule, but from the env we were given). */
function inClusterUrl(host: string, port: string): string {
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const isPlainHttp = (url: string): boolean => url.startsWith('http://');

function withServer(c: KubeConnection, url: string): KubeConnection {
  validateUrl(url);
  return { ...c, server: url.replace(/\/+$/, ''), skipTLSVerify: c.skipTLSVerify || isPlainHttp(url) };
}

/** A failed call: the HTTP status and the server's body (a Status object when it sent one). */
export class KubeHttpError extends Error {
  readonly code: number;
  readonly body: unknown;
  constructor(code: number, body: unknown, what: string) {
    const b = body as { message?: unknown } | undefined;
    super(`${what}: HTTP ${code}${typeof b?.message === 'string' ? ` ${b.message}` : ''}`);
    this.name = 'KubeHttpError';
    this.code = code;
    this.body = body;
  }
}

/** HTTP status of a failed call (ApiException.code, Watch's statusCode), if any. */
export function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

/** "409 Conflict: Operation cannot be fulfilled …" instead of client-node's multi-line dump. */
export function kubeErrorMessage(err: unknown): string {
  const status = httpStatus(err);
  if (status === undefined) return err instanceof Error ? err.message : String(err);
  let body = (err as { body?: unknown }).body;
  if (typeof body === 'string') { try { body = JSON.parse(body); } catch { /* plain text */ } }
  if (typeof body === 'object' && body !== null) {
    const b = body as { reason?: unknown; message?: unknown };
    return `${status} ${String(b.reason ?? '')}: ${String(b.message ?? '')}`.trim();
  }
  return `${status} ${typeof body === 'string' && body !== '' ? body : (err as Error).message.split('\n')[0] ?? ''}`;
}

/** A KUBE TwillError for a failed call, naming what we tried. */
export function kubeError(what: string, err: unknown): TwillError {
  const status = httpStatus(err);
  let hint = '';
  if (status === 401) hint = ' (credentials rejected: check the service-account token or kubeconfig)';
  if (status === 403) hint = ' (forbidden: the twill ClusterRole needs nodes get/list/watch, nodes/status patch and, for NetworkPolicy, pods, namespaces and networkpolicies get/list/watch; see deploy/rbac.yaml)';
  return new TwillError('KUBE', `${what}: ${kubeErrorMessage(err)}${hint}`, { cause: err });
}

/** Transient failures worth retrying with backoff (network, 5xx, 429, 409); anything else is final. */
export function isRetryable(err: unknown): boolean {
  const s = httpStatus(err);
  return s === undefined || s >= 500 || s === 429 || s === 409 || s === 404;
}

export type PatchKind = 'merge' | 'strategic';
const CONTENT_TYPE: Record<PatchKind, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
};

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK';

/** How one watch request ended. */
export type WatchOutcome =
  | { kind: 'closed'; events: number }              // the server ended the stream cleanly
  | { kind: 'expired' }                             // 410 Gone (HTTP or ERROR event): relist
  | { kind: 'error'; error: unknown; events: number }
  | { kind: 'aborted' };

export interface WatchParams {
  resourceVersion: string;
  fieldSelector?: string;
  timeoutSeconds?: number;
}

/** Re-read interval of a token file (client-go's: a minute; kubelet rotates at 80 % of ≥ 1 h). */
const TOKEN_FILE_TTL_MS = 60_000;
/** A unary call with no byte in this long is dead (a list of 5k Nodes streams well within it). */
const REQUEST_IDLE_MS = 30_000;

interface Sent { status: number; body: string }

/** Node operations, each cancellable. */
export class KubeNodeClient {
  readonly connection: KubeConnection;
  private readonly agent: http.Agent;
  private readonly secure: boolean;
  private tokenCache: { token: string; readAt: number } | undefined;

  constructor(connection: KubeConnection) {
    this.connection = connection;
    this.secure = connection.server.startsWith('https:');
    const c = connection;
    this.agent = this.secure
      ? new https.Agent({
        keepAlive: true, rejectUnauthorized: !c.skipTLSVerify,
        ...(c.ca ? { ca: c.ca } : {}), ...(c.cert ? { cert: c.cert } : {}), ...(c.key ? { key: c.key } : {}),
        ...(c.tlsServerName ? { servername: c.tlsServerName } : {}),
      })
      : new http.Agent({ keepAlive: true });
  }

  get server(): string { return this.connection.server; }

  getNode(name: string, signal: AbortSignal): Promise<V1Node> {
    return this.json<V1Node>('GET', `/api/v1/nodes/${encodeURIComponent(name)}`, signal);
  }

  /**
   * Every Node, in one request (as client-go's reflector lists), read as it streams in and each
   * Node cut down to what a lease is made of as soon as it is parsed (kube-list.ts): a full Node
   * (managedFields, status, images) is several KiB, and holding thousands of them at once is
   * what set the agent's peak memory in kube mode.
   */
  listNodes(signal: AbortSignal): Promise<{ items: NodeLike[]; resourceVersion: string }> {
    return this.list('/api/v1/nodes', (n) => slimNode(n as V1Node), signal);
  }

  /** Every object of a collection (one request, streamed), each passed through `slim` as it is parsed. */
  list<T>(path: string, slim: (item: unknown) => T, signal: AbortSignal): Promise<{ items: T[]; resourceVersion: string }> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    const what = `GET ${path}`;
    return new Promise((resolve, reject) => {
      let req: http.ClientRequest;
      const onAbort = () => { req.destroy(); reject(abortError(signal)); };
      try {
        req = this.send('GET', path, {}, undefined, undefined, (res) => {
          if (res.statusCode !== 200) {
            readBody(res).then((text) => reject(new KubeHttpError(res.statusCode ?? 0, parseBody(text), what)), reject);
            return;
          }
          const items: T[] = [];
          const scanner = new ListScanner((n) => items.push(slim(n)));
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            try { scanner.push(chunk); } catch (err) { req.destroy(); reject(new Error(`${what}: ${(err as Error).message}`)); }
          });
          res.on('end', () => {
            try {
              const list = scanner.end() as { metadata?: { resourceVersion?: string } };
              resolve({ items, resourceVersion: list.metadata?.resourceVersion ?? '' });
            } catch (err) { reject(new Error(`${what}: ${(err as Error).message}`)); }
          });
          res.on('error', reject);
          res.on('aborted', () => reject(new Error(`${what}: connection closed mid-answer`)));
        });
      } catch (err) {
        reject(err);
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      req.setTimeout(REQUEST_IDLE_MS, () => req.destroy(new Error(`${what}: no answer in ${REQUEST_IDLE_MS / 1000} s`)));
      req.on('error', reject);
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      req.end();
    });
  }

  patchNodeStatus(name: string, body: object, kind: PatchKind, signal: AbortSignal): Promise<V1Node> {
    return this.json<V1Node>('PATCH', `/api/v1/nodes/${encodeURIComponent(name)}/status`, signal, { body, contentType: CONTENT_TYPE[kind] });
  }

  async podNodeName(namespace: string, name: string, signal: AbortSignal): Promise<string> {
    const pod = await this.json<V1Pod>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, signal);
    return pod.spec?.nodeName ?? '';
  }

  /** Drops idle keep-alive connections (open watches end with their signals). */
  close(): void { this.agent.destroy(); }

  /**
   * One watch request on /api/v1/nodes from `resourceVersion`, resolved when it ends. Events are
   * passed as parsed JSON. A 410 — as HTTP status or as an ERROR event in the stream, which is
   * how kube-apiserver reports it — resolves as 'expired'.
   */
  watchNodes(p: WatchParams, onEvent: (type: WatchEventType, obj: V1Node) => void, signal: AbortSignal, onConnect?: () => void): Promise<WatchOutcome> {
    return this.watch<V1Node>('/api/v1/nodes', p, onEvent, signal, onConnect);
  }

  /** One watch request on a collection; see watchNodes. */
  watch<T>(path: string, p: WatchParams, onEvent: (type: WatchEventType, obj: T) => void, signal: AbortSignal, onConnect?: () => void): Promise<WatchOutcome> {
    if (signal.aborted) return Promise.resolve({ kind: 'aborted' });
    const query: Record<string, string> = { watch: 'true', resourceVersion: p.resourceVersion, allowWatchBookmarks: 'true' };
    if (p.fieldSelector !== undefined) query['fieldSelector'] = p.fieldSelector;
    if (p.timeoutSeconds !== undefined) query['timeoutSeconds'] = String(p.timeoutSeconds);
    return new Promise((resolve) => {
      let events = 0;
      let streamError: { code?: number; message?: string } | undefined;
      let settled = false;
      let req: http.ClientRequest | undefined;
      const finish = (o: WatchOutcome) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        req?.destroy();
        resolve(o);
      };
      const onAbort = () => finish({ kind: 'aborted' });
      signal.addEventListener('abort', onAbort, { once: true });
      const onLine = (line: string) => {
        if (settled || line.trim() === '') return;
        const ev = JSON.parse(line) as { type?: string; object?: unknown };
        const type = ev.type;
        if (type === 'ERROR') { streamError = (ev.object ?? {}) as { code?: number; message?: string }; return; }
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK') return;
        events++;
        onEvent(type, ev.object as T);
      };
      const ended = (err: unknown) => {
        if (signal.aborted) return finish({ kind: 'aborted' });
        if (httpStatus(err) === 410 || streamError?.code === 410) return finish({ kind: 'expired' });
        if (streamError) return finish({ kind: 'error', error: Object.assign(new Error(streamError.message ?? 'watch ERROR event'), { code: streamError.code }), events });
        if (err) return finish({ kind: 'error', error: err, events });
        finish({ kind: 'closed', events });
      };
      try {
        req = this.send('GET', path, query, undefined, undefined, (res) => {
          if (res.statusCode !== 200) {
            readBody(res).then((text) => ended(new KubeHttpError(res.statusCode ?? 0, parseBody(text), `watch ${path}`)), ended);
            return;
          }
          if (settled) return;
          onConnect?.();
          // Lines are split by hand: readline would buffer a whole 5k-Node burst as strings too.
          let buf = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let from = 0;
            for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n', from)) {
              const line = buf.slice(from, nl);
              from = nl + 1;
              try { onLine(line); } catch (err) { ended(err); return; }
            }
            buf = buf.slice(from);
          });
          res.on('end', () => {
            try { onLine(buf); } catch (err) { ended(err); return; }
            ended(undefined);
          });
          res.on('error', ended);
          res.on('aborted', () => ended(new Error('watch connection aborted by the server')));
        });
      } catch (err) {
        ended(err);
        return;
      }
      // A watch may be quiet for minutes: TCP keepalive notices a dead peer; the server-side
      // timeoutSeconds (and bookmarks) bound everything else.
      req.on('socket', (s) => s.setKeepAlive(true, 30_000));
      req.on('error', ended);
      req.end();
    });
  }

  /** A unary call: resolves with the parsed JSON of a 2xx answer, rejects with KubeHttpError otherwise. */
  private json<T>(method: string, path: string, signal: AbortSignal, o: { body?: object; contentType?: string; query?: Record<string, string> } = {}): Promise<T> {
    if (signal.aborted) return Promise.reject(abortError(signal));
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    return new Promise<Sent>((resolve, reject) => {
      let req: http.ClientRequest;
      const onAbort = () => { req.destroy(); reject(abortError(signal)); };
      try {
        req = this.send(method, path, o.query ?? {}, body, o.contentType, (res) => {
          readBody(res).then((text) => resolve({ status: res.statusCode ?? 0, body: text }), reject);
        });
      } catch (err) {
        reject(err);
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      req.setTimeout(REQUEST_IDLE_MS, () => req.destroy(new Error(`${method} ${path}: no answer in ${REQUEST_IDLE_MS / 1000} s`)));
      req.on('error', reject);
      req.on('close', () => signal.removeEventListener('abort', onAbort));
      req.end(body);
    }).then((r) => {
      const parsed = parseBody(r.body);
      if (r.status < 200 || r.status >= 300) throw new KubeHttpError(r.status, parsed, `${method} ${path}`);
      if (typeof parsed !== 'object' || parsed === null) throw new Error(`${method} ${path}: answer is not a JSON object`);
      return parsed as T;
    });
  }

  private send(method: string, path: string, query: Record<string, string>, body: string | undefined, contentType: string | undefined, onResponse: (res: http.IncomingMessage) => void): http.ClientRequest {
    const url = new URL(this.connection.server + path);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    const headers: http.OutgoingHttpHeaders = { accept: 'application/json', 'user-agent': 'twilld' };
    const token = this.token();
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (body !== undefined) {
      headers['content-type'] = contentType ?? 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    return (this.secure ? https : http).request(url, { method, headers, agent: this.agent }, onResponse);
  }

  private token(): string | undefined {
    const c = this.connection;
    if (c.token !== undefined) return c.token;
    if (c.tokenFile === undefined) return undefined;
    const now = Date.now();
    if (!this.tokenCache || now - this.tokenCache.readAt >= TOKEN_FILE_TTL_MS) {
      try {
        this.tokenCache = { token: readFileSync(c.tokenFile, 'utf8').trim(), readAt: now };
      } catch (err) {
        // Keep the last token while the file is being replaced; none yet → the call fails with 401.
        if (!this.tokenCache) throw new TwillError('KUBE', `cannot read the service-account token ${c.tokenFile} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
      }
    }
    return this.tokenCache?.token;
  }
}

/** The fields of a Node that leases are made of (NodeLike), copied out of the full object. */
export function slimNode(n: V1Node): NodeLike {
  const m = n.metadata;
  const out: NodeLike = {};
  if (m) {
    out.metadata = {};
    if (m.name !== undefined) out.metadata.name = m.name;
    if (m.resourceVersion !== undefined) out.metadata.resourceVersion = m.resourceVersion;
    if (m.creationTimestamp !== undefined) out.metadata.creationTimestamp = m.creationTimestamp;
    if (m.annotations) out.metadata.annotations = m.annotations;
  }
  if (n.spec) {
    out.spec = {};
    if (n.spec.podCIDR !== undefined) out.spec.podCIDR = n.spec.podCIDR;
    if (n.spec.podCIDRs !== undefined) out.spec.podCIDRs = n.spec.podCIDRs;
  }
  return out;
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed mid-answer')));
  });
}

/** JSON when it parses, else the text (an answer that is not a Status object). */
function parseBody(text: string): unknown {
  try { return JSON.parse(text); } catch { return text; }
}
