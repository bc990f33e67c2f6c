// Kube mode (`--kube-subnet-mgr`): the subnet is the Node's spec.podCIDR(s), assigned by
// kube-controller-manager; twill never allocates. The agent publishes its VXLAN endpoint as Node
// annotations (flannel's keys under a configurable prefix) and marks the node's network up with
// the NetworkUnavailable=False condition; peers are discovered by watching all Nodes.
//
// Writes go to the nodes/status subresource as one strategic merge patch, like flanneld, so the
// ClusterRole needs only nodes get/list/watch and nodes/status patch (annotations are metadata,
// which kube-apiserver accepts through /status; the status strategy only resets spec). The patch
// carries the resourceVersion we read and is sent only when an annotation or the condition
// differs: a conflict (409) means someone changed the node since we read it, so we re-read,
// recompute and retry. There is no TTL: Lease.expiration is null; renew re-checks the annotations.
import { readFile } from 'node:fs/promises';
import type { V1Node } from '@kubernetes/client-node';
import type { NetConf } from '../config/types.js';
import { parseNetConf } from '../config/net-conf.js';
import { TwillError, abortError, errorMessage, invalid, isTwillError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, retry, systemClock, type Clock } from '../retry.js';
import { contains, parsePrefix } from '../ip/prefix.js';
import type { Lease, LeaseAttrs, LeaseEvent, SubnetManager } from './types.js';
import {
  annotationChanges, annotationKeys, desiredAnnotations, networkAvailableCondition, type AnnotationKeys,
} from './kube-annotations.js';
import { podCidrs, publishedVtepMac, type PodCidrs } from './kube-node.js';
import {
  KubeNodeClient, buildKubeConfig, httpStatus, isRetryable, kubeError, kubeErrorMessage,
} from './kube-client.js';
import { watchNodeLeases, type WatcherState } from './kube-watch.js';

export const DEFAULT_ANNOTATION_PREFIX = 'twill.io';

export interface KubeSubnetManagerOptions {
  kubeApiUrl?: string | undefined;
  kubeconfigFile?: string | undefined;
  nodeName: string;
  /** Node annotation prefix (default "twill.io"; "flannel.alpha.coreos.com" for flannel interop). */
  annotationPrefix?: string | undefined;
  netConfigPath: string;
  logger: Logger;
  clock?: Clock;
  /** Retry pacing for API calls and watches (default 250 ms doubling to 10 s). */
  newBackoff?: () => Backoff;
  /** Longest single wait for the pod CIDR before re-reading the node (default 30 s). */
  podCidrWaitMs?: number;
  /** Server-side timeout of a node watch, randomised up to 2× (default 300 s). */
  watchTimeoutSeconds?: number;
  /** Prefix for the in-cluster service-account files (tests). */
  pathPrefix?: string;
}

type Publish = 'unchanged' | 'patched' | 'conflict';

/**
 * Our Node has no spec.podCIDR yet. Thrown once per wait so the caller can report it; calling
 * acquireLease again then waits for the assignment. Retryable (code KUBE, field spec.podCIDR).
 */
export class PodCidrPendingError extends TwillError {
  readonly missing: string[];
  constructor(message: string, missing: string[]) {
    super('KUBE', message, { field: 'spec.podCIDR', value: '', rule: 'assigned by kube-controller-manager' });
    this.name = 'PodCidrPendingError';
    this.missing = missing;
  }
}

const MAX_CONFLICTS = 5;

export class KubeSubnetManager implements SubnetManager {
  readonly name = 'kube' as const;
  readonly nodeName: string;
  readonly keys: AnnotationKeys;
  readonly client: KubeNodeClient;
  /** The node watch's lifecycle (for status and readiness). */
  watcherState: WatcherState = 'pending';
  /** Why the node watch is 'lost'. */
  watcherError: string | undefined;
  private readonly o: KubeSubnetManagerOptions;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly closed = new AbortController();
  private conf: NetConf | undefined;
  private pendingReported = false;

  constructor(o: KubeSubnetManagerOptions) {
    if (!o.nodeName) {
      throw invalid('NODE_NAME', o.nodeName ?? '', 'required in kube mode: set NODE_NAME from the pod\'s spec.nodeName (fieldRef), or POD_NAME + POD_NAMESPACE');
    }
    this.o = o;
    this.nodeName = o.nodeName;
    this.keys = annotationKeys(o.annotationPrefix ?? DEFAULT_ANNOTATION_PREFIX);
    this.client = new KubeNodeClient(buildKubeConfig({ kubeApiUrl: o.kubeApiUrl, kubeconfigFile: o.kubeconfigFile, ...(o.pathPrefix === undefined ? {} : { pathPrefix: o.pathPrefix }) }));
    this.log = o.logger.child({ component: 'kube-subnet', node: o.nodeName });
    this.clock = o.clock ?? systemClock;
  }

  /**
   * Reads and validates net-conf.json (mounted from the ConfigMap). CONFIG_MISSING when absent.
   * The agent also calls this periodically as its "lease store reachable?" probe; in kube mode the
   * store is the API server, so while the node watch is failing this rejects (KUBE) with the
   * watch's error — the probe then costs no API request, which matters with thousands of nodes.
   */
  async getNetworkConfig(signal: AbortSignal): Promise<NetConf> {
    if (signal.aborted) throw abortError(signal);
    let text: string;
    try {
      text = await readFile(this.o.netConfigPath, { encoding: 'utf8', signal });
    } catch (err) {
      if (signal.aborted) throw abortError(signal);
      const code = (err as NodeJS.ErrnoException).code;
      throw new TwillError(code === 'ENOENT' ? 'CONFIG_MISSING' : 'CONFIG_INVALID',
        `--net-config-path: ${JSON.stringify(this.o.netConfigPath)} cannot be read (${code ?? errorMessage(err)}); in a DaemonSet it is mounted from the twill ConfigMap's net-conf.json`,
        { field: '--net-config-path', value: this.o.netConfigPath, rule: 'must be a readable net-conf.json', cause: err });
    }
    if (this.conf?.raw !== text) this.conf = parseNetConf(text, this.log); // warnings once per change
    if (this.watcherState === 'lost') {
      throw new TwillError('KUBE', `Kubernetes API ${this.client.server} unreachable: node watch failing (${this.watcherError ?? 'unknown error'})`);
    }
    return this.conf;
  }

  /**
   * Takes spec.podCIDR(s) as our subnet (checked against the network), publishes our annotations
   * and the NetworkUnavailable=False condition when they differ, and returns the lease (key =
   * node name). No pod CIDR yet: rejects once with PodCidrPendingError ("pod CIDR not assigned
   * yet"), and the next call waits until kube-controller-manager assigns one.
   */
  async acquireLease(attrs: LeaseAttrs, opts: { previousSubnet?: string; signal: AbortSignal }): Promise<Lease> {
    const signal = this.linked(opts.signal);
    const conf = this.conf ?? await this.getNetworkConfig(signal);
    return this.retrying('acquire lease', signal, async () => {
      for (let conflicts = 0; ; conflicts++) {
        const node = await this.nodeWithPodCidr(conf, signal);
        const lease = this.leaseFor(node, conf, attrs);
        const r = await this.publish(node, attrs, signal);
        if (r !== 'conflict') {
          this.log.info({ subnet: lease.subnet, ipv6Subnet: lease.ipv6Subnet, published: r === 'patched' }, 'kube: lease from spec.podCIDR');
          return lease;
        }
        if (conflicts + 1 >= MAX_CONFLICTS) throw new TwillError('KUBE', `node ${this.nodeName}: ${MAX_CONFLICTS} write conflicts in a row publishing annotations`);
        this.log.debug({ conflicts: conflicts + 1 }, 'kube: node changed while publishing (409); re-reading');
      }
    });
  }

  /** No TTL in kube mode: re-publishes the annotations if someone removed or changed them. */
  async renewLease(lease: Lease, signal: AbortSignal): Promise<Lease> {
    const s = this.linked(signal);
    for (let conflicts = 0; conflicts < MAX_CONFLICTS; conflicts++) {
      const node = await this.call(`get node ${this.nodeName}`, () => this.client.getNode(this.nodeName, s));
      if (await this.publish(node, lease.attrs, s) !== 'conflict') return lease;
    }
    throw new TwillError('KUBE', `node ${this.nodeName}: ${MAX_CONFLICTS} write conflicts in a row re-publishing annotations`);
  }

  watchLeases(signal: AbortSignal): AsyncIterable<LeaseEvent> {
    return watchNodeLeases({
      client: this.client, keys: this.keys, clock: this.clock, log: this.log,
      ...(this.o.newBackoff ? { backoff: this.o.newBackoff() } : {}),
      ...(this.o.watchTimeoutSeconds === undefined ? {} : { watchTimeoutSeconds: this.o.watchTimeoutSeconds }),
      onState: (s, detail) => { this.watcherState = s; this.watcherError = s === 'lost' ? detail : undefined; },
    }, this.linked(signal));
  }

  /**
   * The VTEP MAC we published before (our backend-data annotation), so a restarted agent keeps
   * its MAC and peers need no reprogramming. Undefined when the node has none (first start).
   */
  async previousVtepMac(opts: { signal?: AbortSignal; family?: 4 | 6 } = {}): Promise<string | undefined> {
    const signal = this.linked(opts.signal ?? new AbortController().signal);
    return this.retrying('read previous VTEP MAC', signal, async () => {
      try {
        return publishedVtepMac(await this.client.getNode(this.nodeName, signal), this.keys, opts.family ?? 4);
      } catch (err) {
        if (httpStatus(err) === 404) return undefined;
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    this.closed.abort(new TwillError('ABORTED', 'subnet manager closed'));
  }

  // ---- internals ----

  private linked(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, this.closed.signal]);
  }

  /** Retries transient API failures with backoff; config errors and 4xx (but 404/409) are final. */
  private retrying<T>(what: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    return retry(fn, {
      clock: this.clock, signal,
      backoff: this.o.newBackoff?.() ?? new Backoff({ initialMs: 250, maxMs: 10_000 }),
      onError: (err, attempt, delayMs) => {
        if (err instanceof PodCidrPendingError || isTwillError(err, 'CONFIG_INVALID') || isTwillError(err, 'ABORTED')) return false;
        const cause = isTwillError(err, 'KUBE') ? (err.cause ?? err) : err;
        if (!isRetryable(cause)) throw isTwillError(err) ? err : kubeError(`${what} (node ${this.nodeName})`, err);
        this.log.warn({ err: kubeErrorMessage(cause), attempt, retryInMs: delayMs, server: this.client.server }, `kube: ${what} failed; retrying`);
        return true;
      },
    });
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try { return await fn(); } catch (err) { throw kubeError(what, err); }
  }

  /** Families net-conf.json asks for that spec.podCIDR(s) does not (yet) have. */
  private missing(conf: NetConf, c: PodCidrs): string[] {
    const out: string[] = [];
    if (conf.enableIPv4 && c.v4 === undefined) out.push('IPv4');
    if (conf.enableIPv6 && c.v6 === undefined) out.push('IPv6');
    return out;
  }

  /**
   * GETs our node until kube-controller-manager has assigned the pod CIDR(s) we need. The first
   * time they are missing we throw PodCidrPendingError at once, so the caller can show the reason
   * (the agent's /readyz and `twilld status` say "pod CIDR not assigned yet"); the next call
   * waits here, woken by a watch on our node, so the lease follows the assignment within a
   * round trip instead of a retry backoff.
   */
  private async nodeWithPodCidr(conf: NetConf, signal: AbortSignal): Promise<V1Node> {
    for (let round = 0; ; round++) {
      const node = await this.client.getNode(this.nodeName, signal);
      const missing = this.missing(conf, podCidrs(node));
      if (missing.length === 0) { this.pendingReported = false; return node; }
      const msg = `pod CIDR not assigned yet on node ${this.nodeName} (${missing.join(' and ')}); waiting for kube-controller-manager (--allocate-node-cidrs, --cluster-cidr) to set spec.podCIDR`;
      if (!this.pendingReported) {
        this.pendingReported = true;
        throw new PodCidrPendingError(msg, missing);
      }
      if (round % 10 === 0) this.log.warn({ missing, podCIDRs: node.spec?.podCIDRs ?? node.spec?.podCIDR ?? null }, `kube: ${msg}`);
      await this.waitForNodeChange(node.metadata?.resourceVersion ?? '', signal);
    }
  }

  /** Returns at the next change of our node (watch), or after podCidrWaitMs at the latest. */
  private async waitForNodeChange(rv: string, signal: AbortSignal): Promise<void> {
    const ctl = new AbortController();
    const both = AbortSignal.any([signal, ctl.signal]);
    const limit = this.o.podCidrWaitMs ?? 30_000;
    this.clock.sleep(limit, both).then(() => ctl.abort(), () => undefined);
    const started = this.clock.now();
    const outcome = await this.client.watchNodes(
      { resourceVersion: rv, fieldSelector: `metadata.name=${this.nodeName}`, timeoutSeconds: Math.ceil(limit / 1000) },
      (type) => { if (type !== 'BOOKMARK') ctl.abort(); },
      both,
    );
    ctl.abort();
    if (signal.aborted) throw abortError(signal);
    // A watch that fails at once (e.g. RBAC, or a server without watch) must not make us spin.
    if (outcome.kind === 'error' || (outcome.kind === 'closed' && this.clock.now() - started < 1000)) {
      await this.clock.sleep(Math.min(limit, 1000), signal);
    }
  }

  private leaseFor(node: V1Node, conf: NetConf, attrs: LeaseAttrs): Lease {
    const c = podCidrs(node);
    const lease: Lease = { subnet: '', attrs, expiration: null, key: this.nodeName };
    if (conf.enableIPv4 && c.v4 !== undefined) {
      this.checkInside(c.v4, conf.network, 'Network');
      lease.subnet = c.v4;
    }
    if (conf.enableIPv6 && c.v6 !== undefined) {
      this.checkInside(c.v6, conf.ipv6Network, 'IPv6Network');
      lease.ipv6Subnet = c.v6;
    }
    return lease;
  }

  private checkInside(cidr: string, network: string | undefined, key: string): void {
    const field = `node ${this.nodeName} spec.podCIDR`;
    if (network === undefined || !contains(parsePrefix(network), parsePrefix(cidr))) {
      throw invalid(field, cidr, `must lie inside ${key} ${JSON.stringify(network ?? null)} of ${this.o.netConfigPath}; kube-controller-manager --cluster-cidr (kubeadm --pod-network-cidr) must equal ${key}`);
    }
  }

  /** One strategic merge patch on nodes/status, only when an annotation or the condition differs. */
  private async publish(node: V1Node, attrs: LeaseAttrs, signal: AbortSignal): Promise<Publish> {
    const current = node.metadata?.annotations ?? {};
    const changes = annotationChanges(current, desiredAnnotations(attrs, this.keys, current));
    const condition = networkAvailableCondition(node.status?.conditions, new Date(this.clock.now()));
    if (Object.keys(changes).length === 0 && condition === undefined) return 'unchanged';
    const body: { metadata: Record<string, unknown>; status?: unknown } = {
      metadata: { resourceVersion: node.metadata?.resourceVersion },
    };
    if (Object.keys(changes).length > 0) body.metadata['annotations'] = changes;
    if (condition) body.status = { conditions: [condition] };
    try {
      await this.client.patchNodeStatus(this.nodeName, body, 'strategic', signal);
    } catch (err) {
      if (httpStatus(err) === 409) return 'conflict';
      throw err;
    }
    this.log.info({ annotations: Object.keys(changes), networkUnavailableFalse: condition !== undefined }, 'kube: published node annotations/condition');
    return 'patched';
  }
}

/**
 * The node name for kube mode: NODE_NAME, else the node of pod POD_NAMESPACE/POD_NAME (which
 * needs `pods get` in the ClusterRole; the shipped DaemonSet sets NODE_NAME and does without).
 */
export async function resolveNodeName(o: {
  nodeName?: string | undefined; podName?: string | undefined; podNamespace?: string | undefined;
  kubeApiUrl?: string | undefined; kubeconfigFile?: string | undefined; pathPrefix?: string;
}, signal: AbortSignal): Promise<string> {
  if (o.nodeName) return o.nodeName;
  if (!o.podName || !o.podNamespace) {
    throw invalid('NODE_NAME', '', 'kube mode needs NODE_NAME, or POD_NAME and POD_NAMESPACE to look the node up');
  }
  const client = new KubeNodeClient(buildKubeConfig(o));
  let name: string;
  try {
    name = await client.podNodeName(o.podNamespace, o.podName, signal);
  } catch (err) {
    throw kubeError(`get pod ${o.podNamespace}/${o.podName} (to find NODE_NAME)`, err);
  }
  if (!name) throw invalid(`pod ${o.podNamespace}/${o.podName} spec.nodeName`, '', 'is empty (pod not scheduled yet)');
  return name;
}
