// An in-process fake Kubernetes API server for Node objects, speaking the real wire protocol so
// the real @kubernetes/client-node (and kubectl, curl) talk to it unchanged: list with
// metadata.resourceVersion, `watch=true` streaming JSON lines from a resourceVersion (headers
// flushed at once, bookmarks, timeoutSeconds), 410 Expired when the version is older than the
// retained history, merge / strategic-merge / JSON patch on nodes and nodes/status (each with
// the subresource's field reset: /status ignores spec, the main resource ignores status),
// 409 Conflict on a stale metadata.resourceVersion, create/update/delete, discovery.
//
// Why a fake and not envtest: no kube-apiserver binary or etcd-backed storage is needed, the
// history window and connection drops are under the test's control, and it runs inside a netns
// (see fake-apiserver-main.ts). The test plays kube-controller-manager through the control API
// (createNode, assignPodCIDR, deleteNode, compactHistory, dropAllWatches, failRequests).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  applyPatch, clone, isObject, PATCH_CONTENT_TYPES, PatchError, type Json, type JsonObject,
} from './fake-apiserver-patch.js';
import { fieldMatcher, labelMatcher, SelectorError, type Matcher } from './fake-apiserver-select.js';

export type { Json, JsonObject };

export interface FakeNodeSpec {
  name: string;
  podCIDR?: string;
  podCIDRs?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** status.addresses, e.g. [{ type: 'InternalIP', address: '10.0.0.1' }] */
  addresses?: { type: string; address: string }[];
}

export interface FakeApiServerOptions {
  host?: string;                 // default 127.0.0.1
  port?: number;                 // default 0 (ephemeral)
  /** Watch events retained for resuming watches; older versions get 410 Expired. */
  historyLimit?: number;         // default 1000
  /** How an expired watch is refused: 'event' (HTTP 200 + ERROR event, like kube-apiserver) or 'http' (HTTP 410). */
  watchExpired?: 'event' | 'http';
  /** Send a BOOKMARK to bookmark-enabled watches this often (0 = only on sendBookmarks()). */
  bookmarkIntervalMs?: number;
}

export interface RequestRecord {
  method: string;
  path: string;                  // without the query
  query: string;
  contentType: string | undefined;
  status: number;
  watch: boolean;
}

export interface RequestFilter {
  method?: string;
  path?: string | RegExp;
  watch?: boolean;
  status?: number;
  contentType?: string;
}

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEvent { type: EventType; rv: number; object: JsonObject; prev: JsonObject | null }

interface Watcher {
  res: ServerResponse;
  match: Matcher;
  bookmarks: boolean;
  timer: NodeJS.Timeout | undefined;
}

class HttpError extends Error {
  readonly status: number;
  readonly reason: string;
  constructor(status: number, reason: string, message: string) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export function statusObject(code: number, reason: string, message: string): JsonObject {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

const rvOf = (o: JsonObject): string => {
  const m = o['metadata'];
  return isObject(m) && typeof m['resourceVersion'] === 'string' ? m['resourceVersion'] : '';
};

const meta = (o: JsonObject): JsonObject => {
  if (!isObject(o['metadata'])) o['metadata'] = {};
  return o['metadata'] as JsonObject;
};

export class FakeApiServer {
  private readonly server: Server;
  private readonly opts: Required<FakeApiServerOptions>;
  private readonly nodes = new Map<string, JsonObject>();
  private readonly pods = new Map<string, JsonObject>();
  private history: HistoryEvent[] = [];
  /** Every event with rv <= compactedThrough is gone: watching from an older version is 410. */
  private compactedThrough = 0;
  private rv = 1;
  private readonly watchers = new Set<Watcher>();
  private bookmarkTimer: NodeJS.Timeout | undefined;
  private failure: { status: number; match: (method: string, path: string) => boolean } | null = null;
  /** Every request served, in order. */
  readonly requests: RequestRecord[] = [];
  /** Called before a PATCH/PUT of a node is applied (a test can change the node to force a 409). */
  beforeWrite: ((name: string, method: string, subresource: string) => void | Promise<void>) | null = null;

  private constructor(opts: FakeApiServerOptions) {
    this.opts = { host: '127.0.0.1', port: 0, historyLimit: 1000, watchExpired: 'event', bookmarkIntervalMs: 0, ...opts };
    this.server = createServer((req, res) => { void this.handle(req, res); });
  }

  static async start(opts: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const s = new FakeApiServer(opts);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(s.opts.port, s.opts.host, () => { s.server.off('error', reject); resolve(); });
    });
    if (s.opts.bookmarkIntervalMs > 0) {
      s.bookmarkTimer = setInterval(() => s.sendBookmarks(), s.opts.bookmarkIntervalMs);
      s.bookmarkTimer.unref();
    }
    return s;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  /** The current (latest) resourceVersion. */
  get resourceVersion(): number { return this.rv; }
  get activeWatches(): number { return this.watchers.size; }
  get oldestWatchableVersion(): number { return this.compactedThrough; }

  // ---- control API (the test plays kube-controller-manager and other controllers) ----

  createNode(spec: FakeNodeSpec): JsonObject {
    if (this.nodes.has(spec.name)) throw new Error(`node ${spec.name} already exists`);
    const node = this.newNode(spec);
    this.store('ADDED', node, null);
    return clone(node);
  }

  /** Sets spec.podCIDR (first) and spec.podCIDRs, as the node-ipam controller does. */
  assignPodCIDR(name: string, cidrs: string | string[]): JsonObject {
    const list = Array.isArray(cidrs) ? cidrs : [cidrs];
    return this.updateNode(name, (n) => {
      const spec = isObject(n['spec']) ? n['spec'] : (n['spec'] = {});
      if (list.length === 0) { delete spec['podCIDR']; delete spec['podCIDRs']; return; }
      spec['podCIDR'] = list[0]!;
      spec['podCIDRs'] = [...list];
    });
  }

  /** Mutates a node in place (any field) and emits MODIFIED with a new resourceVersion. */
  updateNode(name: string, mutate: (node: JsonObject) => void): JsonObject {
    const old = this.mustGet(name);
    const next = clone(old);
    mutate(next);
    this.store('MODIFIED', next, old);
    return clone(next);
  }

  deleteNode(name: string): JsonObject {
    const old = this.mustGet(name);
    this.nodes.delete(name);
    const gone = clone(old);
    this.store('DELETED', gone, old);
    return gone;
  }

  getNode(name: string): JsonObject | undefined {
    const n = this.nodes.get(name);
    return n === undefined ? undefined : clone(n);
  }

  listNodes(): JsonObject[] {
    return [...this.nodes.values()].map((n) => clone(n));
  }

  /** A pod, only so that a node name can be looked up from POD_NAME + POD_NAMESPACE. */
  createPod(namespace: string, name: string, nodeName: string): JsonObject {
    const pod: JsonObject = {
      kind: 'Pod', apiVersion: 'v1',
      metadata: { name, namespace, uid: randomUUID(), resourceVersion: String(++this.rv) },
      spec: { nodeName },
    };
    this.pods.set(`${namespace}/${name}`, pod);
    return clone(pod);
  }

  /**
   * Drops retained watch history so that only the newest `keep` events remain; a watch from an
   * older resourceVersion then gets 410 Expired. Returns the oldest version still watchable.
   */
  compactHistory(keep = 0): number {
    const drop = Math.max(0, this.history.length - keep);
    const dropped = this.history.splice(0, drop);
    const last = dropped[dropped.length - 1];
    if (last) this.compactedThrough = last.rv;
    if (keep === 0) this.compactedThrough = this.rv;
    return this.compactedThrough;
  }

  setHistoryLimit(n: number): void {
    this.opts.historyLimit = n;
    this.trimHistory();
  }

  /** Ends every open watch: 'close' ends the stream cleanly, 'reset' destroys the socket. */
  dropAllWatches(mode: 'close' | 'reset' = 'reset'): number {
    const n = this.watchers.size;
    for (const w of [...this.watchers]) this.endWatch(w, mode);
    return n;
  }

  /** Sends a BOOKMARK (current resourceVersion) to every watch that allowed bookmarks. */
  sendBookmarks(): number {
    let n = 0;
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      this.writeEvent(w.res, 'BOOKMARK', { kind: 'Node', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) } });
      n++;
    }
    return n;
  }

  /**
   * Makes matching requests fail with `status` (e.g. 503) until called with null. Open watches
   * are not touched (combine with dropAllWatches to simulate an outage).
   */
  failRequests(status: number | null, match: (method: string, path: string) => boolean = () => true): void {
    this.failure = status === null ? null : { status, match };
  }

  count(f: RequestFilter = {}): number {
    return this.requests.filter((r) =>
      (f.method === undefined || r.method === f.method) &&
      (f.watch === undefined || r.watch === f.watch) &&
      (f.status === undefined || r.status === f.status) &&
      (f.contentType === undefined || r.contentType === f.contentType) &&
      (f.path === undefined || (typeof f.path === 'string' ? r.path === f.path : f.path.test(r.path)))).length;
  }

  resetCounters(): void { this.requests.length = 0; }

  async close(): Promise<void> {
    if (this.bookmarkTimer) clearInterval(this.bookmarkTimer);
    this.dropAllWatches('reset');
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- storage ----

  private newNode(spec: FakeNodeSpec): JsonObject {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const s: JsonObject = {};
    const cidrs = spec.podCIDRs ?? (spec.podCIDR ? [spec.podCIDR] : []);
    if (cidrs.length > 0) { s['podCIDR'] = cidrs[0]!; s['podCIDRs'] = cidrs; }
    const m: JsonObject = { name: spec.name, uid: randomUUID(), creationTimestamp: now };
    if (spec.labels) m['labels'] = { ...spec.labels };
    if (spec.annotations) m['annotations'] = { ...spec.annotations };
    return {
      kind: 'Node', apiVersion: 'v1', metadata: m, spec: s,
      status: {
        conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: now, lastTransitionTime: now }],
        addresses: (spec.addresses ?? []).map((a) => ({ ...a })),
      },
    };
  }

  private mustGet(name: string): JsonObject {
    const n = this.nodes.get(name);
    if (!n) throw new HttpError(404, 'NotFound', `nodes "${name}" not found`);
    return n;
  }

  private store(type: EventType, obj: JsonObject, prev: JsonObject | null): void {
    this.rv++;
    obj['kind'] = 'Node';
    obj['apiVersion'] = 'v1';
    meta(obj)['resourceVersion'] = String(this.rv);
    if (type !== 'DELETED') this.nodes.set(String(meta(obj)['name']), obj);
    const ev: HistoryEvent = { type, rv: this.rv, object: clone(obj), prev: prev ? clone(prev) : null };
    this.history.push(ev);
    this.trimHistory();
    for (const w of this.watchers) this.deliver(w, ev);
  }

  private trimHistory(): void {
    const excess = this.history.length - this.opts.historyLimit;
    if (excess > 0) {
      const dropped = this.history.splice(0, excess);
      this.compactedThrough = dropped[dropped.length - 1]!.rv;
    }
  }

  /** Delivers one change to a watch, translating selector transitions like the real server. */
  private deliver(w: Watcher, ev: HistoryEvent): void {
    const now = ev.type !== 'DELETED' && w.match(ev.object);
    const before = ev.prev !== null && w.match(ev.prev);
    if (ev.type === 'DELETED') { if (before) this.writeEvent(w.res, 'DELETED', ev.object); return; }
    if (now && (before || ev.type === 'ADDED')) this.writeEvent(w.res, ev.type, ev.object);
    else if (now) this.writeEvent(w.res, 'ADDED', ev.object);
    else if (before) this.writeEvent(w.res, 'DELETED', ev.object);
  }

  private writeEvent(res: ServerResponse, type: string, object: JsonObject): void {
    if (!res.writableEnded && !res.destroyed) res.write(JSON.stringify({ type, object }) + '\n');
  }

  private endWatch(w: Watcher, mode: 'close' | 'reset'): void {
    this.watchers.delete(w);
    if (w.timer) clearTimeout(w.timer);
    if (mode === 'reset') w.res.socket?.destroy();
    else w.res.end();
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const q = url.searchParams;
    const isWatch = req.method === 'GET' && (q.get('watch') === 'true' || q.get('watch') === '1');
    const rec: RequestRecord = {
      method: req.method ?? 'GET', path: url.pathname, query: url.search,
      contentType: req.headers['content-type']?.split(';')[0]?.trim(), status: 0, watch: isWatch,
    };
    this.requests.push(rec);
    res.on('finish', () => { rec.status = res.statusCode; });
    rec.status = 200;
    try {
      if (this.failure && this.failure.match(rec.method, rec.path)) {
        throw new HttpError(this.failure.status, this.failure.status === 503 ? 'ServiceUnavailable' : 'InternalError', `injected failure ${this.failure.status}`);
      }
      if (isWatch) return this.watch(url.pathname, q, res);
      const body = await readBody(req);
      const out = await this.route(rec.method, url.pathname, q, body, rec.contentType);
      send(res, out.status, out.body);
    } catch (err) {
      const e = err instanceof HttpError ? err
        : err instanceof PatchError ? new HttpError(err.status, err.status === 400 ? 'BadRequest' : 'Invalid', err.message)
          : err instanceof SelectorError ? new HttpError(400, 'BadRequest', err.message)
            : new HttpError(500, 'InternalError', (err as Error).message);
      rec.status = e.status;
      if (!res.headersSent) send(res, e.status, statusObject(e.status, e.reason, e.message));
      else res.end();
    }
  }

  private async route(method: string, path: string, q: URLSearchParams, body: string, ctype: string | undefined): Promise<{ status: number; body: Json }> {
    if (method === 'GET') {
      const d = this.discovery(path);
      if (d !== undefined) return { status: 200, body: d };
    }
    if (path === '/api/v1/nodes') {
      if (method === 'GET') return { status: 200, body: this.list(q) };
      if (method === 'POST') return { status: 201, body: this.create(parseJson(body)) };
      throw new HttpError(405, 'MethodNotAllowed', `${method} not allowed on nodes`);
    }
    let m = /^\/api\/v1\/nodes\/([^/]+)(?:\/(status))?$/.exec(path);
    if (m) {
      const name = decodeURIComponent(m[1]!);
      const sub = m[2] ?? '';
      if (method === 'GET') return { status: 200, body: clone(this.mustGet(name)) };
      if (method === 'PATCH') return { status: 200, body: await this.patch(name, sub, ctype, parseJson(body)) };
      if (method === 'PUT') return { status: 200, body: await this.put(name, sub, parseJson(body)) };
      if (method === 'DELETE' && sub === '') return { status: 200, body: this.deleteNode(name) };
      throw new HttpError(405, 'MethodNotAllowed', `${method} not allowed on nodes/${sub}`);
    }
    m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
    if (m && method === 'GET') {
      const pod = this.pods.get(`${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`);
      if (!pod) throw new HttpError(404, 'NotFound', `pods "${m[2]}" not found`);
      return { status: 200, body: clone(pod) };
    }
    throw new HttpError(404, 'NotFound', `the server could not find the requested resource (${method} ${path})`);
  }

  private discovery(path: string): Json | undefined {
    switch (path) {
      case '/version':
        return { major: '1', minor: '31', gitVersion: 'v1.31.0-twill-fake', platform: 'linux/amd64' };
      case '/api':
        return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: new URL(this.url).host }] };
      case '/apis':
        return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
      case '/api/v1':
        return {
          kind: 'APIResourceList', groupVersion: 'v1', resources: [
            { name: 'nodes', singularName: 'node', namespaced: false, kind: 'Node', shortNames: ['no'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] },
            { name: 'nodes/status', singularName: '', namespaced: false, kind: 'Node', verbs: ['get', 'patch', 'update'] },
            { name: 'pods', singularName: 'pod', namespaced: true, kind: 'Pod', verbs: ['get'] },
          ],
        };
      case '/healthz': case '/readyz': case '/livez':
        return 'ok';
      default:
        return undefined;
    }
  }

  private list(q: URLSearchParams): Json {
    const match = and(labelMatcher(q.get('labelSelector')), fieldMatcher(q.get('fieldSelector')));
    const items = [...this.nodes.values()].filter(match).sort(byName).map((n) => clone(n));
    return { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: String(this.rv) }, items };
  }

  private create(body: Json): Json {
    if (!isObject(body)) throw new HttpError(400, 'BadRequest', 'body must be a Node object');
    const m = isObject(body['metadata']) ? body['metadata'] : {};
    const name = typeof m['name'] === 'string' ? m['name'] : '';
    if (name === '') throw new HttpError(422, 'Invalid', 'Node "" is invalid: metadata.name: Required value');
    if (this.nodes.has(name)) throw new HttpError(409, 'AlreadyExists', `nodes "${name}" already exists`);
    const node = clone(body);
    Object.assign(meta(node), { uid: randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z') });
    if (!isObject(node['spec'])) node['spec'] = {};
    if (!isObject(node['status'])) node['status'] = { conditions: [], addresses: [] };
    this.store('ADDED', node, null);
    return clone(node);
  }

  private async patch(name: string, sub: string, ctype: string | undefined, body: Json): Promise<Json> {
    const type = ctype === undefined ? undefined : PATCH_CONTENT_TYPES[ctype];
    if (type === undefined) {
      throw new HttpError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCH_CONTENT_TYPES).join(', ')}`);
    }
    await this.beforeWrite?.(name, 'PATCH', sub);
    const old = this.mustGet(name);
    const next = applyPatch(type, clone(old), body);
    if (!isObject(next)) throw new HttpError(422, 'Invalid', 'the patch produced something that is not a Node');
    return this.commit(name, sub, old, next);
  }

  private async put(name: string, sub: string, body: Json): Promise<Json> {
    if (!isObject(body)) throw new HttpError(400, 'BadRequest', 'body must be a Node object');
    await this.beforeWrite?.(name, 'PUT', sub);
    const old = this.mustGet(name);
    const bodyName = isObject(body['metadata']) ? body['metadata']['name'] : undefined;
    if (bodyName !== name) throw new HttpError(400, 'BadRequest', `the name of the object (${String(bodyName)}) does not match the name on the URL (${name})`);
    return this.commit(name, sub, old, clone(body));
  }

  /** Optimistic concurrency, subresource field reset, no-op detection, then store. */
  private commit(name: string, sub: string, old: JsonObject, next: JsonObject): Json {
    const want = rvOf(next);
    if (want !== '' && want !== rvOf(old)) {
      throw new HttpError(409, 'Conflict', `Operation cannot be fulfilled on nodes "${name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    if (sub === 'status') next['spec'] = clone(old['spec'] ?? {});
    else next['status'] = clone(old['status'] ?? {});
    const m = meta(next);
    const om = meta(old);
    for (const k of ['name', 'uid', 'creationTimestamp']) m[k] = om[k] ?? null;
    m['resourceVersion'] = om['resourceVersion'] ?? null;
    next['kind'] = 'Node';
    next['apiVersion'] = 'v1';
    if (JSON.stringify(next) === JSON.stringify(old)) return clone(old);
    this.store('MODIFIED', next, old);
    return clone(next);
  }

  private watch(path: string, q: URLSearchParams, res: ServerResponse): void {
    if (path !== '/api/v1/nodes') throw new HttpError(404, 'NotFound', `cannot watch ${path}`);
    const match = and(labelMatcher(q.get('labelSelector')), fieldMatcher(q.get('fieldSelector')));
    const from = q.get('resourceVersion') ?? '';
    const start = from === '' || from === '0' ? null : Number(from);
    if (start !== null && !Number.isInteger(start)) throw new HttpError(400, 'BadRequest', `invalid resourceVersion ${JSON.stringify(from)}`);
    const expired = start !== null && start < this.compactedThrough;
    if (expired && this.opts.watchExpired === 'http') {
      throw new HttpError(410, 'Expired', `too old resource version: ${start} (${this.compactedThrough + 1})`);
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    if (expired) {
      this.writeEvent(res, 'ERROR', statusObject(410, 'Expired', `too old resource version: ${start} (${this.compactedThrough + 1})`));
      res.end();
      return;
    }
    const w: Watcher = { res, match, bookmarks: q.get('allowWatchBookmarks') === 'true', timer: undefined };
    if (start === null) {
      for (const n of [...this.nodes.values()].filter(match).sort(byName)) this.writeEvent(res, 'ADDED', n);
    } else {
      for (const ev of this.history) if (ev.rv > start) this.deliver(w, ev);
    }
    this.watchers.add(w);
    const timeout = Number(q.get('timeoutSeconds') ?? '0');
    if (timeout > 0) w.timer = setTimeout(() => this.endWatch(w, 'close'), timeout * 1000);
    res.on('close', () => { this.watchers.delete(w); if (w.timer) clearTimeout(w.timer); });
  }
}

function and(a: Matcher, b: Matcher): Matcher {
  return (o) => a(o) && b(o);
}

function byName(a: JsonObject, b: JsonObject): number {
  return String(meta(a)['name']).localeCompare(String(meta(b)['name']));
}

function parseJson(body: string): Json {
  try {
    return JSON.parse(body === '' ? 'null' : body) as Json;
  } catch (err) {
    throw new HttpError(400, 'BadRequest', `invalid JSON body: ${(err as Error).message}`);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > 8 << 20) { reject(new HttpError(413, 'RequestEntityTooLarge', 'request body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: Json): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}
