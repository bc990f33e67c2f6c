// Node object → Lease, pure. The subnet is the node's spec.podCIDR(s), assigned by
// kube-controller-manager; the rest comes from the annotations the node's agent published.
// A node without `<prefix>/kube-subnet-manager=true` is not ours (no agent yet, or another
// network plugin) and is ignored; a node that has it but cannot be decoded is 'invalid' with a
// reason naming the field and value, so the agent can log and count it without programming it.
// Syntax only: whether the subnet lies in the cluster network or the MAC is unicast is the
// agent's peer validation, as in etcd mode.
import type { Lease, LeaseAttrs } from './types.js';
import type { AnnotationKeys, Annotations } from './kube-annotations.js';
import { formatPrefix, parsePrefix } from '../ip/prefix.js';
import { formatIp, tryParseIp } from '../ip/addr.js';
import { canonicalMac } from '../ip/mac.js';
import { TwillError } from '../errors.js';

/** The parts of a Node we read (V1Node and plain watch JSON both fit). */
export interface NodeLike {
  metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string>; creationTimestamp?: Date | string };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
}

export interface PodCidrs { v4?: string; v6?: string }

/**
 * spec.podCIDRs (or the older single spec.podCIDR): at most one IPv4 and one IPv6 prefix.
 * Throws CONFIG_INVALID naming the field and value.
 */
export function podCidrs(node: NodeLike): PodCidrs {
  const list = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  const field = node.spec?.podCIDRs?.length ? 'spec.podCIDRs' : 'spec.podCIDR';
  if (list.length > 2) throw new TwillError('CONFIG_INVALID', `${field}: ${JSON.stringify(list)} is invalid: at most one IPv4 and one IPv6 prefix`, { field, value: list, rule: 'at most one IPv4 and one IPv6 prefix' });
  const out: PodCidrs = {};
  list.forEach((s, i) => {
    const p = parsePrefix(s, { field: list.length > 1 || field === 'spec.podCIDRs' ? `${field}[${i}]` : field });
    const key = p.family === 4 ? 'v4' : 'v6';
    if (out[key] !== undefined) throw new TwillError('CONFIG_INVALID', `${field}: ${JSON.stringify(list)} is invalid: two IPv${p.family} prefixes`, { field, value: list, rule: 'at most one IPv4 and one IPv6 prefix' });
    out[key] = formatPrefix(p);
  });
  return out;
}

export type NodeLease =
  | { kind: 'ignored' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'lease'; lease: Lease };

type Result<T> = { ok: true; value: T } | { ok: false; reason: string };
type BackendData = { VNI: number; VtepMAC: string };

function backendData(a: Annotations, key: string): Result<BackendData> {
  const raw = a[key];
  if (raw === undefined) return { ok: false, reason: `annotation ${key} is missing` };
  let v: unknown;
  try { v = JSON.parse(raw); } catch { return { ok: false, reason: `annotation ${key}: ${JSON.stringify(raw)} is not JSON` }; }
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const vni = o['VNI'] ?? o['vni'];
  if (typeof vni !== 'number' || !Number.isInteger(vni) || vni < 0 || vni > 16_777_215) {
    return { ok: false, reason: `annotation ${key}: VNI ${JSON.stringify(vni) ?? 'missing'} is not an integer 0..16777215` };
  }
  const mac = o['VtepMAC'] ?? o['vtepMAC'];
  const canon = typeof mac === 'string' ? canonicalMac(mac) : undefined;
  if (!canon) return { ok: false, reason: `annotation ${key}: VtepMAC ${JSON.stringify(mac) ?? 'missing'} is not a MAC address` };
  return { ok: true, value: { VNI: vni, VtepMAC: canon } };
}

function ip(a: Annotations, key: string, family: 4 | 6): Result<string> {
  const raw = a[key];
  const p = raw === undefined ? undefined : tryParseIp(raw);
  if (!p || p.family !== family) return { ok: false, reason: `annotation ${key}: ${JSON.stringify(raw) ?? 'missing'} is not an IPv${family} address` };
  return { ok: true, value: formatIp(p) };
}

/** One family's public IP and backend data, the IP checked first. */
function published(a: Annotations, ipKey: string, dataKey: string, family: 4 | 6): Result<{ ip: string; data: BackendData }> {
  const pip = ip(a, ipKey, family);
  if (!pip.ok) return pip;
  const bd = backendData(a, dataKey);
  return bd.ok ? { ok: true, value: { ip: pip.value, data: bd.value } } : bd;
}

/** Decodes a Node into a peer lease (key = node name). */
export function nodeLease(node: NodeLike, keys: AnnotationKeys): NodeLease {
  const a = node.metadata?.annotations ?? {};
  if (a[keys.kubeSubnetManager] !== 'true') return { kind: 'ignored' };
  const name = node.metadata?.name ?? '';
  let cidrs: PodCidrs;
  try { cidrs = podCidrs(node); } catch (err) { return { kind: 'invalid', reason: (err as Error).message }; }
  const backendType = a[keys.backendType];
  if (!backendType) return { kind: 'invalid', reason: `annotation ${keys.backendType} is missing` };
  const hasV6 = cidrs.v6 !== undefined && a[keys.publicIPv6] !== undefined;
  if (cidrs.v4 === undefined && !hasV6) return { kind: 'invalid', reason: 'spec.podCIDR is empty (no pod CIDR assigned) or has no published address for its family' };
  const attrs: LeaseAttrs = { publicIP: '', publicIPv6: null, backendType, backendData: { VNI: 0, VtepMAC: '' }, backendV6Data: null };
  if (cidrs.v4 !== undefined) {
    const v4 = published(a, keys.publicIP, keys.backendData, 4);
    if (!v4.ok) return { kind: 'invalid', reason: v4.reason };
    attrs.publicIP = v4.value.ip;
    attrs.backendData = v4.value.data;
  }
  if (hasV6) {
    const v6 = published(a, keys.publicIPv6, keys.backendV6Data, 6);
    if (!v6.ok) return { kind: 'invalid', reason: v6.reason };
    attrs.publicIPv6 = v6.value.ip;
    attrs.backendV6Data = v6.value.data;
    if (cidrs.v4 === undefined) attrs.backendData = v6.value.data;
  }
  const lease: Lease = { subnet: cidrs.v4 ?? '', attrs, expiration: null, key: name };
  if (hasV6) lease.ipv6Subnet = cidrs.v6!;
  const created = creationMs(node);
  if (created !== undefined) lease.created = created;
  return { kind: 'lease', lease };
}

/**
 * metadata.creationTimestamp in ms: set once by the API server, the same for every reader and
 * across restarts, so every agent orders conflicting Nodes alike (agent/peers.ts; docs). The
 * client hands it over as a Date, raw watch JSON as RFC 3339 text.
 */
export function creationMs(node: NodeLike): number | undefined {
  const t = node.metadata?.creationTimestamp;
  const ms = t instanceof Date ? t.getTime() : typeof t === 'string' ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/** The VTEP MAC in our own backend-data annotation (to keep it across restarts), if well-formed. */
export function publishedVtepMac(node: NodeLike, keys: AnnotationKeys, family: 4 | 6 = 4): string | undefined {
  const r = backendData(node.metadata?.annotations ?? {}, family === 4 ? keys.backendData : keys.backendV6Data);
  return r.ok ? r.value.VtepMAC : undefined;
}
