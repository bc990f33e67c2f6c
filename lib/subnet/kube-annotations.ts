// What a node publishes about itself in kube mode, as Node annotations under a prefix — the same
// keys flanneld uses (`flannel.alpha.coreos.com/backend-data` …), so with
// `--kube-annotation-prefix=flannel.alpha.coreos.com` twill and flannel nodes read each other and
// a cluster can migrate node by node. Pure: computes the desired annotations and the minimal
// change set; the caller decides whether a PATCH is needed at all (only when something differs).
import { invalid } from '../errors.js';
import type { LeaseAttrs } from './types.js';

export interface AnnotationKeys {
  backendType: string;
  backendData: string;
  backendV6Data: string;
  publicIP: string;
  publicIPv6: string;
  /** Set by an operator to advertise a different address (e.g. behind NAT); flannel's key. */
  publicIPOverwrite: string;
  publicIPv6Overwrite: string;
  kubeSubnetManager: string;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Keys under `prefix` ("twill.io", "flannel.alpha.coreos.com"); the prefix must be a DNS subdomain. */
export function annotationKeys(prefix: string): AnnotationKeys {
  if (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
    throw invalid('--kube-annotation-prefix', prefix, 'must be a DNS subdomain (lower-case letters, digits, "-" and "."), e.g. "twill.io" or "flannel.alpha.coreos.com"');
  }
  const k = (name: string) => `${prefix}/${name}`;
  return {
    backendType: k('backend-type'),
    backendData: k('backend-data'),
    backendV6Data: k('backend-v6-data'),
    publicIP: k('public-ip'),
    publicIPv6: k('public-ipv6'),
    publicIPOverwrite: k('public-ip-overwrite'),
    publicIPv6Overwrite: k('public-ipv6-overwrite'),
    kubeSubnetManager: k('kube-subnet-manager'),
  };
}

export type Annotations = Readonly<Record<string, string>>;

/** `{"VNI":1,"VtepMAC":"…"}` — flannel's Go field order, so equal data compares equal as text. */
export function encodeBackendData(d: { VNI: number; VtepMAC: string }): string {
  return JSON.stringify({ VNI: d.VNI, VtepMAC: d.VtepMAC });
}

/**
 * The annotations this node should carry. A `public-ip-overwrite` annotation set by the operator
 * wins over the detected address (flannel semantics).
 */
export function desiredAnnotations(attrs: LeaseAttrs, keys: AnnotationKeys, current: Annotations = {}): Record<string, string> {
  const out: Record<string, string> = {
    [keys.backendType]: attrs.backendType,
    [keys.kubeSubnetManager]: 'true',
  };
  const v4 = current[keys.publicIPOverwrite] || attrs.publicIP;
  if (v4) {
    out[keys.publicIP] = v4;
    out[keys.backendData] = encodeBackendData(attrs.backendData);
  }
  const v6 = current[keys.publicIPv6Overwrite] || attrs.publicIPv6;
  if (v6) {
    out[keys.publicIPv6] = v6;
    out[keys.backendV6Data] = encodeBackendData(attrs.backendV6Data ?? attrs.backendData);
  }
  return out;
}

/** The entries of `desired` that `current` lacks or holds with another value (empty: nothing to do). */
export function annotationChanges(current: Annotations | undefined, desired: Annotations): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(desired)) if (current?.[k] !== v) out[k] = v;
  return out;
}

export const NETWORK_UNAVAILABLE = 'NetworkUnavailable';
export const CONDITION_REASON = 'TwillIsUp';
export const CONDITION_MESSAGE = 'twill is running on this node';

export interface ConditionLike {
  type?: string;
  status?: string;
  reason?: string;
  lastTransitionTime?: Date | string;
}

/** The NetworkUnavailable=False condition to patch in, or undefined when it is already set. */
export function networkAvailableCondition(conditions: readonly ConditionLike[] | undefined, now: Date): Record<string, string> | undefined {
  const cur = conditions?.find((c) => c.type === NETWORK_UNAVAILABLE);
  if (cur && cur.status === 'False' && cur.reason === CONDITION_REASON) return undefined;
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const transition = cur && cur.status === 'False' && cur.lastTransitionTime
    ? (cur.lastTransitionTime instanceof Date ? cur.lastTransitionTime.toISOString().replace(/\.\d+Z$/, 'Z') : cur.lastTransitionTime)
    : stamp;
  return {
    type: NETWORK_UNAVAILABLE, status: 'False', reason: CONDITION_REASON, message: CONDITION_MESSAGE,
    lastTransitionTime: transition, lastHeartbeatTime: stamp,
  };
}
