// The fields of Pods, Namespaces and NetworkPolicies the compiler reads (types.ts), copied out of
// the API's full objects as they are parsed. A Pod as served is several KiB (managedFields,
// conditions, container statuses, env, volumes); the agent keeps every Pod of the cluster (peer
// addresses and labels), so it keeps only these.
import type { Container, Namespace, NetworkPolicy, Pod } from './types.js';

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Obj : undefined);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const arr = (v: unknown): unknown[] | undefined => (Array.isArray(v) ? v : undefined);

function labels(v: unknown): Record<string, string> | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(o)) if (typeof x === 'string') out[k] = x;
  return out;
}

interface Meta { name: string; namespace: string; labels?: Record<string, string>; deletionTimestamp?: string }

function meta(v: unknown): Meta {
  const m = obj(v) ?? {};
  const out: Meta = { name: str(m['name']) ?? '', namespace: str(m['namespace']) ?? '' };
  const l = labels(m['labels']);
  if (l) out.labels = l;
  const d = str(m['deletionTimestamp']);
  if (d !== undefined) out.deletionTimestamp = d;
  return out;
}

/** Only containers that declare ports matter (named ports); sidecars keep their restartPolicy. */
function containers(v: unknown): Container[] | undefined {
  const out: Container[] = [];
  for (const c of arr(v) ?? []) {
    const co = obj(c);
    const ports = arr(co?.['ports']);
    if (!co || !ports || ports.length === 0) continue;
    const slim: Container = {
      ports: ports.map((p) => {
        const po = obj(p) ?? {};
        return { containerPort: Number(po['containerPort']), name: str(po['name']) ?? null, protocol: str(po['protocol']) ?? null };
      }),
    };
    const rp = str(co['restartPolicy']);
    if (rp !== undefined) slim.restartPolicy = rp;
    out.push(slim);
  }
  return out.length > 0 ? out : undefined;
}

export function slimPod(v: unknown): Pod {
  const o = obj(v) ?? {};
  const spec = obj(o['spec']) ?? {};
  const status = obj(o['status']) ?? {};
  const pod: Pod = { metadata: meta(o['metadata']), spec: {} };
  const nodeName = str(spec['nodeName']);
  if (nodeName !== undefined) pod.spec.nodeName = nodeName;
  if (spec['hostNetwork'] === true) pod.spec.hostNetwork = true;
  const cs = containers(spec['containers']);
  if (cs) pod.spec.containers = cs;
  const ics = containers(spec['initContainers']);
  if (ics) pod.spec.initContainers = ics;
  const phase = str(status['phase']);
  const podIP = str(status['podIP']);
  const podIPs = arr(status['podIPs'])?.map((x) => ({ ip: str(obj(x)?.['ip']) ?? '' })).filter((x) => x.ip !== '');
  if (phase !== undefined || podIP !== undefined || podIPs) {
    pod.status = {};
    if (phase !== undefined) pod.status.phase = phase;
    if (podIP !== undefined) pod.status.podIP = podIP;
    if (podIPs && podIPs.length > 0) pod.status.podIPs = podIPs;
  }
  return pod;
}

export function slimNamespace(v: unknown): Namespace {
  const m = meta(obj(v)?.['metadata']);
  const out: Namespace = { metadata: { name: m.name } };
  if (m.labels) out.metadata.labels = m.labels;
  return out;
}

/** A policy's spec is kept as served: the compiler validates it field by field. */
export function slimNetworkPolicy(v: unknown): NetworkPolicy {
  const o = obj(v) ?? {};
  const m = meta(o['metadata']);
  return { metadata: { name: m.name, namespace: m.namespace }, spec: (obj(o['spec']) ?? {}) as NetworkPolicy['spec'] };
}

/** `namespace/name`, the cache key of a namespaced object (a Namespace's is its name). */
export function objectKey(o: { metadata: { name: string; namespace?: string } }): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name;
}
