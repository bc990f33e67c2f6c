// The only file that talks to the Kubernetes API (through @kubernetes/client-node 1.4.x — 2.x does
// not load on Node 20). It narrows the client to the five calls twill needs (get/list/watch a
// Node, patch nodes/status, get a Pod) so that RBAC stays least-privilege by construction, makes
// every call cancellable by an AbortSignal, and turns client errors into one readable line.
//
// Connection: --kubeconfig-file wins (with --kube-api-url overriding its server, like flanneld);
// --kube-api-url alone uses the pod's service-account token and CA when they are mounted (so a
// DaemonSet can point at the API server directly before kube-proxy and the service IP work) and
// plain, unauthenticated requests otherwise (tests, `kubectl proxy`); neither → in-cluster config.
import { existsSync } from 'node:fs';
import {
  CoreV1Api, KubeConfig, Observable, Watch, type ConfigurationOptions, type ObservableMiddleware, type V1Node,
} from '@kubernetes/client-node';
import { TwillError, abortError } from '../errors.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnectOptions {
  kubeApiUrl?: string | undefined;
  kubeconfigFile?: string | undefined;
  /** Prepended to the service-account directory (tests use a temporary root). */
  pathPrefix?: string;
  /** Environment for in-cluster detection (tests pass their own). */
  env?: NodeJS.ProcessEnv;
}

export function buildKubeConfig(o: KubeConnectOptions): KubeConfig {
  const kc = new KubeConfig();
  const env = o.env ?? process.env;
  const prefix = o.pathPrefix ?? '';
  const hasToken = existsSync(`${prefix}${SERVICE_ACCOUNT_DIR}/token`);
  if (o.kubeconfigFile) {
    try {
      kc.loadFromFile(o.kubeconfigFile);
    } catch (err) {
      throw new TwillError('CONFIG_INVALID', `--kubeconfig-file: ${JSON.stringify(o.kubeconfigFile)} is invalid: cannot be loaded (${(err as Error).message})`, { field: '--kubeconfig-file', value: o.kubeconfigFile, rule: 'must be a readable kubeconfig', cause: err });
    }
    if (o.kubeApiUrl) overrideServer(kc, o.kubeApiUrl);
  } else if (o.kubeApiUrl && hasToken) {
    kc.loadFromCluster(prefix);
    overrideServer(kc, o.kubeApiUrl);
  } else if (o.kubeApiUrl) {
    validateUrl(o.kubeApiUrl);
    kc.loadFromOptions({
      // client-node refuses http:// unless skipTLSVerify is set; there is no TLS to verify then.
      clusters: [{ name: 'twill', server: o.kubeApiUrl.replace(/\/+$/, ''), skipTLSVerify: isPlainHttp(o.kubeApiUrl) }],
      users: [{ name: 'twill' }],
      contexts: [{ name: 'twill', cluster: 'twill', user: 'twill' }],
      currentContext: 'twill',
    });
  } else {
    if (!env.KUBERNETES_SERVICE_HOST || !env.KUBERNETES_SERVICE_PORT) {
      throw new TwillError('CONFIG_INVALID', '--kube-subnet-mgr: no API server to talk to: pass --kube-api-url or --kubeconfig-file, or run in a pod (KUBERNETES_SERVICE_HOST/PORT are unset)', { field: '--kube-api-url', value: '', rule: 'required outside a pod' });
    }
    kc.loadFromCluster(prefix);
    overrideServer(kc, inClusterUrl(env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT));
  }
  return kc;
}

function validateUrl(url: string): void {
  let u: URL;
  try { u = new URL(url); } catch {
    throw new TwillError('CONFIG_INVALID', `--kube-api-url: ${JSON.stringify(url)} is invalid: must be an http(s) URL`, { field: '--kube-api-url', value: url, rule: 'must be an http(s) URL' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new TwillError('CONFIG_INVALID', `--kube-api-url: ${JSON.stringify(url)} is invalid: must be an http(s) URL`, { field: '--kube-api-url', value: url, rule: 'must be an http(s) URL' });
  }
}

/** The API server as a pod sees it (client-node's rule, but from the env we were given). */
function inClusterUrl(host: string, port: string): string {
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

const isPlainHttp = (url: string): boolean => url.startsWith('http://');

function overrideServer(kc: KubeConfig, url: string): void {
  validateUrl(url);
  const current = kc.getCurrentCluster();
  kc.loadFromOptions({
    clusters: kc.clusters.map((c) => (c.name === current?.name
      ? { ...c, server: url.replace(/\/+$/, ''), skipTLSVerify: c.skipTLSVerify || isPlainHttp(url) } : c)),
    users: kc.users,
    contexts: kc.contexts,
    currentContext: kc.currentContext,
  });
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
  if (status === 403) hint = ' (forbidden: the twill ClusterRole needs nodes get/list/watch and nodes/status patch; see deploy/rbac.yaml)';
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

/** Node operations, each cancellable. */
export class KubeNodeClient {
  readonly kubeConfig: KubeConfig;
  private readonly api: CoreV1Api;
  private readonly watcher: Watch;

  constructor(kubeConfig: KubeConfig) {
    this.kubeConfig = kubeConfig;
    this.api = kubeConfig.makeApiClient(CoreV1Api);
    this.watcher = new Watch(kubeConfig);
  }

  get server(): string { return this.kubeConfig.getCurrentCluster()?.server ?? ''; }

  getNode(name: string, signal: AbortSignal): Promise<V1Node> {
    return this.api.readNode({ name }, options(signal));
  }

  async listNodes(signal: AbortSignal): Promise<{ items: V1Node[]; resourceVersion: string }> {
    const list = await this.api.listNode({}, options(signal));
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  patchNodeStatus(name: string, body: object, kind: PatchKind, signal: AbortSignal): Promise<V1Node> {
    return this.api.patchNodeStatus({ name, body }, options(signal, CONTENT_TYPE[kind]));
  }

  async podNodeName(namespace: string, name: string, signal: AbortSignal): Promise<string> {
    const pod = await this.api.readNamespacedPod({ namespace, name }, options(signal));
    return pod.spec?.nodeName ?? '';
  }

  /**
   * One watch request on /api/v1/nodes from `resourceVersion`, resolved when it ends. Events are
   * passed raw (plain JSON, not client-node model classes). A 410 — as HTTP status or as an ERROR
   * event in the stream, which is how kube-apiserver reports it — resolves as 'expired'.
   */
  watchNodes(p: WatchParams, onEvent: (type: WatchEventType, obj: V1Node) => void, signal: AbortSignal, onConnect?: () => void): Promise<WatchOutcome> {
    if (signal.aborted) return Promise.resolve({ kind: 'aborted' });
    return new Promise((resolve) => {
      let controller: AbortController | undefined;
      let events = 0;
      let streamError: { code?: number; message?: string } | undefined;
      let settled = false;
      const finish = (o: WatchOutcome) => {
        if (settled) return;
        settled = true;
        signal.removeEventListener('abort', onAbort);
        controller?.abort();
        resolve(o);
      };
      const onAbort = () => finish({ kind: 'aborted' });
      signal.addEventListener('abort', onAbort, { once: true });
      const query: Record<string, string | number | boolean | undefined> = {
        resourceVersion: p.resourceVersion, allowWatchBookmarks: true,
        fieldSelector: p.fieldSelector, timeoutSeconds: p.timeoutSeconds,
      };
      const onLine = (type: string, obj: unknown) => {
        if (settled) return;
        if (type === 'ERROR') { streamError = (obj ?? {}) as { code?: number; message?: string }; return; }
        if (type !== 'ADDED' && type !== 'MODIFIED' && type !== 'DELETED' && type !== 'BOOKMARK') return;
        events++;
        onEvent(type, obj as V1Node);
      };
      const onDone = (err: unknown) => {
        if (signal.aborted) return finish({ kind: 'aborted' });
        if (httpStatus(err) === 410 || streamError?.code === 410) return finish({ kind: 'expired' });
        if (streamError) return finish({ kind: 'error', error: Object.assign(new Error(streamError.message ?? 'watch ERROR event'), { code: streamError.code }), events });
        if (err) return finish({ kind: 'error', error: err, events });
        finish({ kind: 'closed', events });
      };
      this.watcher.watch('/api/v1/nodes', query, onLine, onDone).then(
        // Resolved while still unsettled = the server answered 200 and the stream is open.
        (c) => { controller = c; if (settled) c.abort(); else onConnect?.(); },
        (err: unknown) => onDone(err),
      );
    });
  }
}

/** Per-call options: cancellation and, for patches, the patch dialect (client-node defaults to JSON patch). */
function options(signal: AbortSignal, contentType?: string): ConfigurationOptions {
  if (signal.aborted) throw abortError(signal);
  const mw: ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      if (contentType) ctx.setHeaderParam('Content-Type', contentType);
      return new Observable(Promise.resolve(ctx));
    },
    post: (rsp) => new Observable(Promise.resolve(rsp)),
  };
  return { middleware: [mw], middlewareMergeStrategy: 'append' };
}
