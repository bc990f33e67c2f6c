// The NetworkPolicy compiler: (policies, namespaces, pods, local node) → PolicyModel, a pure
// function with no kernel in sight. The semantics are networking.k8s.io/v1's, field by field:
//
// - A pod is isolated for a direction when at least one policy in its namespace selects it
//   (spec.podSelector, `{}` = every pod of the namespace) and that policy's policyTypes include
//   the direction. policyTypes missing or empty defaults to Ingress, plus Egress when the policy
//   has a non-empty `egress` list. Isolated traffic passes when any rule of any selecting policy
//   allows it (policies are unioned; there is no deny rule).
// - A rule matches when its peers AND its ports match. `from`/`to` missing or empty: every peer.
//   `ports` missing or empty: every port of every protocol (ICMP too).
// - A peer is exactly one of: podSelector alone (pods of the policy's namespace), namespaceSelector
//   alone (every pod of the selected namespaces; `{}` = all namespaces), both (the selected pods
//   of the selected namespaces), or ipBlock (the CIDR minus its excepts, matched on addresses).
// - A port has a protocol (TCP by default; UDP, SCTP); no port = every port of that protocol; a
//   number with an optional endPort range; or a name, resolved on each pod to the containerPort
//   of that name and protocol: on the selected (destination) pod for ingress, on the peer pod
//   for egress. A pod without that name does not match.
// - Host-network pods, pods without an IP and finished pods (Succeeded/Failed, their IP may be
//   reused) have no pod IP of their own: they are neither isolated nor matched as peers. Traffic
//   from the node itself is always allowed by the enforcer (kubelet probes), not by a rule.
// - A policy with a field twill cannot express is reported in `rejected` and left out whole
//   (it neither isolates nor allows), so it is never half-applied.
import { formatIp, tryParseIp, type Family } from '../ip/addr.js';
import { tryParsePrefix } from '../ip/prefix.js';
import { normalize, prefixInterval, subtract, type Interval } from './addrset.js';
import { compileSelector, selectorProblem, type LabelPredicate, type Labels } from './selector.js';
import type {
  AddrRange, AddrSet, CompiledPolicy, CompiledPorts, CompiledRule, LabelSelector, LocalPodPolicy, Namespace, NetworkPolicy, NetworkPolicyPeer,
  NetworkPolicyPort, Pod, PolicyModel, PolicyProblem, PortRange, Protocol, ResolvedPort,
} from './types.js';

export interface CompileInput {
  policies: readonly NetworkPolicy[];
  namespaces: readonly Namespace[];
  pods: readonly Pod[];
  /** The local node: its pods (spec.nodeName) are the ones isolated here. */
  nodeName: string;
}

/** The label the API server puts on every namespace; added when an input lacks it. */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

const PROTOCOLS: readonly Protocol[] = ['TCP', 'UDP', 'SCTP'];

/** A pod address, with its peer-set element made once per compile rather than once per rule. */
interface PodIp { family: Family; value: bigint; text: string; range: AddrRange }

/** A pod reduced to what matching needs. */
interface PodView {
  namespace: string;
  name: string;
  labels: Labels;
  nsLabels: Labels;
  ips: PodIp[];
  /** `${protocol}/${name}` → containerPort. */
  named: Map<string, number>;
  local: boolean;
  deleting: boolean;
}

type PortSpec = { protocol: Protocol; kind: 'range'; from: number; to: number } | { protocol: Protocol; kind: 'name'; name: string };

/** A peer: an ipBlock, or pods chosen by namespace (by name, or by selector) and pod labels. */
interface PeerSpec { block?: Interval[]; nsName?: string; nsSel?: LabelPredicate; podSel?: LabelPredicate }

/** The pods, indexed the way peers look them up: by namespace, with the namespace's labels. */
interface PodIndex { all: readonly PodView[]; byNs: Map<string, { nsLabels: Labels; pods: PodView[] }> }

interface RuleSpec { peers: PeerSpec[] | 'any'; ports: PortSpec[] | 'any' }

interface PolicySpec {
  namespace: string;
  name: string;
  key: string;
  selects: LabelPredicate;
  ingress: RuleSpec[] | undefined;
  egress: RuleSpec[] | undefined;
}

class Problem extends Error {
  readonly field: string;
  readonly reason: string;
  constructor(field: string, reason: string) {
    super(reason);
    this.field = field;
    this.reason = reason;
  }
}

const IANA_SVC_NAME = /^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/;

function checkSelector(sel: LabelSelector | null | undefined, field: string): LabelPredicate {
  if (sel === null || sel === undefined || typeof sel !== 'object') throw new Problem(field, 'must be a label selector');
  const p = selectorProblem(sel);
  if (p) throw new Problem(field + p[0], p[1]);
  return compileSelector(sel);
}

function parsePort(p: NetworkPolicyPort, field: string): PortSpec {
  const protocol = (p.protocol ?? 'TCP') as Protocol;
  if (!PROTOCOLS.includes(protocol)) throw new Problem(`${field}.protocol`, `"${String(p.protocol)}" is not TCP, UDP or SCTP`);
  const end = p.endPort ?? undefined;
  if (p.port === null || p.port === undefined) {
    if (end !== undefined) throw new Problem(`${field}.endPort`, 'needs a numeric port');
    return { protocol, kind: 'range', from: 0, to: 65535 };
  }
  if (typeof p.port === 'string') {
    if (end !== undefined) throw new Problem(`${field}.endPort`, 'cannot be used with a named port');
    if (!IANA_SVC_NAME.test(p.port) || p.port.includes('--')) throw new Problem(`${field}.port`, `"${p.port}" is not a valid port name (IANA_SVC_NAME)`);
    return { protocol, kind: 'name', name: p.port };
  }
  if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535) throw new Problem(`${field}.port`, `${String(p.port)} is not a port number 1-65535`);
  if (end !== undefined && (!Number.isInteger(end) || end < p.port || end > 65535)) {
    throw new Problem(`${field}.endPort`, `${String(end)} must be an integer from port (${p.port}) to 65535`);
  }
  return { protocol, kind: 'range', from: p.port, to: end ?? p.port };
}

function parseBlock(b: NonNullable<NetworkPolicyPeer['ipBlock']>, field: string): Interval[] {
  const cidr = tryParsePrefix(b.cidr, { normalize: true });
  if (!cidr) throw new Problem(`${field}.cidr`, `"${String(b.cidr)}" is not a CIDR`);
  const base = prefixInterval(cidr);
  const cut = (b.except ?? []).map((e, i) => {
    const ex = tryParsePrefix(e, { normalize: true });
    const at = `${field}.except[${i}]`;
    if (!ex) throw new Problem(at, `"${String(e)}" is not a CIDR`);
    const iv = prefixInterval(ex);
    if (iv.family !== base.family || iv.from < base.from || iv.to > base.to) throw new Problem(at, `"${e}" is not inside cidr ${b.cidr}`);
    return iv;
  });
  return subtract(base, cut);
}

function parsePeer(peer: NetworkPolicyPeer, policyNs: string, field: string): PeerSpec {
  if (peer === null || typeof peer !== 'object') throw new Problem(field, 'must be an object');
  const hasPod = peer.podSelector !== undefined && peer.podSelector !== null;
  const hasNs = peer.namespaceSelector !== undefined && peer.namespaceSelector !== null;
  const hasBlock = peer.ipBlock !== undefined && peer.ipBlock !== null;
  if (hasBlock) {
    if (hasPod || hasNs) throw new Problem(field, 'ipBlock cannot be combined with podSelector or namespaceSelector');
    return { block: parseBlock(peer.ipBlock as NonNullable<NetworkPolicyPeer['ipBlock']>, `${field}.ipBlock`) };
  }
  if (!hasPod && !hasNs) throw new Problem(field, 'must set podSelector, namespaceSelector or ipBlock');
  const podSel = hasPod ? checkSelector(peer.podSelector, `${field}.podSelector`) : () => true;
  if (!hasNs) return { nsName: policyNs, podSel };
  return { nsSel: checkSelector(peer.namespaceSelector, `${field}.namespaceSelector`), podSel };
}

function parseRule(rule: { peers: NetworkPolicyPeer[] | null | undefined; ports: NetworkPolicyPort[] | null | undefined }, ns: string, field: string, peerField: string): RuleSpec {
  const peers = rule.peers ?? [];
  const ports = rule.ports ?? [];
  if (!Array.isArray(peers)) throw new Problem(`${field}.${peerField}`, 'must be a list');
  if (!Array.isArray(ports)) throw new Problem(`${field}.ports`, 'must be a list');
  return {
    peers: peers.length === 0 ? 'any' : peers.map((p, i) => parsePeer(p, ns, `${field}.${peerField}[${i}]`)),
    ports: ports.length === 0 ? 'any' : ports.map((p, i) => parsePort(p, `${field}.ports[${i}]`)),
  };
}

function parsePolicy(np: NetworkPolicy): PolicySpec {
  const ns = np.metadata.namespace;
  const spec = np.spec;
  if (!spec || typeof spec !== 'object') throw new Problem('spec', 'is missing');
  // Newer API servers treat spec.podSelector as optional and may omit an empty one: missing
  // means `{}`, every pod of the namespace (a default-deny policy must never be dropped as bad).
  const selects = checkSelector(spec.podSelector ?? {}, 'spec.podSelector');
  const types = spec.policyTypes ?? [];
  for (const [i, t] of types.entries()) if (t !== 'Ingress' && t !== 'Egress') throw new Problem(`spec.policyTypes[${i}]`, `"${String(t)}" is not Ingress or Egress`);
  const egressList = spec.egress ?? [];
  const affectsIngress = types.length === 0 ? true : types.includes('Ingress');
  const affectsEgress = types.length === 0 ? egressList.length > 0 : types.includes('Egress');
  return {
    namespace: ns,
    name: np.metadata.name,
    key: `${ns}/${np.metadata.name}`,
    selects,
    // Rules of a direction the policy does not affect are ignored, as upstream does.
    ingress: affectsIngress ? (spec.ingress ?? []).map((r, i) => parseRule({ peers: r.from, ports: r.ports }, ns, `spec.ingress[${i}]`, 'from')) : undefined,
    egress: affectsEgress ? egressList.map((r, i) => parseRule({ peers: r.to, ports: r.ports }, ns, `spec.egress[${i}]`, 'to')) : undefined,
  };
}

function podIps(pod: Pod): string[] {
  const list = (pod.status?.podIPs ?? []).map((x) => x.ip);
  if (list.length === 0 && pod.status?.podIP) list.push(pod.status.podIP);
  return list;
}

function viewPods(pods: readonly Pod[], nsLabels: Map<string, Labels>, nodeName: string): PodView[] {
  const out: PodView[] = [];
  for (const pod of pods) {
    if (pod.spec?.hostNetwork) continue;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') continue;
    const ips: PodView['ips'] = [];
    for (const text of podIps(pod)) {
      const ip = tryParseIp(text);
      if (!ip) continue;
      const canonical = formatIp(ip);
      ips.push({ family: ip.family, value: ip.value, text: canonical, range: { from: canonical, to: canonical } });
    }
    if (ips.length === 0) continue;
    const named = new Map<string, number>();
    const containers = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? []).filter((c) => c.restartPolicy === 'Always')];
    for (const c of containers) {
      for (const p of c.ports ?? []) {
        if (!p.name) continue;
        const k = `${p.protocol ?? 'TCP'}/${p.name}`;
        if (!named.has(k)) named.set(k, p.containerPort);
      }
    }
    const ns = pod.metadata.namespace;
    out.push({
      namespace: ns,
      name: pod.metadata.name,
      labels: pod.metadata.labels ?? {},
      nsLabels: nsLabels.get(ns) ?? { [NAMESPACE_NAME_LABEL]: ns },
      ips,
      named,
      local: pod.spec.nodeName === nodeName,
      deleting: pod.metadata.deletionTimestamp !== undefined && pod.metadata.deletionTimestamp !== null,
    });
  }
  return out;
}

function inBlock(p: PodView, block: readonly Interval[]): boolean {
  return p.ips.some((ip) => block.some((b) => b.family === ip.family && ip.value >= b.from && ip.value <= b.to));
}

function mergeRanges(list: PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  for (const proto of PROTOCOLS) {
    const sorted = list.filter((r) => r.protocol === proto).sort((a, b) => a.from - b.from);
    let last: PortRange | undefined;
    for (const r of sorted) {
      if (last && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
      else { last = { ...r }; out.push(last); }
    }
  }
  return out;
}

function resolveNamed(ports: PortSpec[], on: readonly PodView[]): ResolvedPort[] {
  const seen = new Map<string, ResolvedPort>();
  for (const spec of ports) {
    if (spec.kind !== 'name') continue;
    for (const pod of on) {
      const port = pod.named.get(`${spec.protocol}/${spec.name}`);
      if (port === undefined) continue;
      for (const ip of pod.ips) seen.set(`${ip.text} ${spec.protocol} ${port}`, { ip: ip.text, protocol: spec.protocol, port });
    }
  }
  return [...seen.values()].sort((a, b) => cmp(a.ip, b.ip) || cmp(a.protocol, b.protocol) || a.port - b.port);
}

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

/**
 * The peer addresses of a rule: ipBlock ranges (merged), plus each selected pod address not
 * already inside one of them, as a single element of its own. Pod addresses are never merged
 * with each other, so a pod coming or going is exactly one element added or deleted.
 */
function peerAddrSet(blocks: Interval[], chosen: Iterable<PodView>): AddrSet {
  const out: AddrSet = { v4: [], v6: [] };
  for (const family of [4, 6] as const) {
    const ranges = normalize(blocks.filter((b) => b.family === family));
    const items: { at: bigint; r: AddrRange }[] = ranges.map((r) => ({
      at: r.from,
      r: { from: formatIp({ family, value: r.from }), to: formatIp({ family, value: r.to }) },
    }));
    const seen = new Set<PodIp>();
    for (const p of chosen) {
      for (const ip of p.ips) {
        if (ip.family !== family || seen.has(ip)) continue;
        seen.add(ip);
        if (ranges.length === 0 || !covered(ranges, ip.value)) items.push({ at: ip.value, r: ip.range });
      }
    }
    items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
    out[family === 4 ? 'v4' : 'v6'] = items.map((i) => i.r);
  }
  return out;
}

/** Binary search in sorted, disjoint ranges. */
function covered(ranges: readonly Interval[], v: bigint): boolean {
  let lo = 0, hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid] as Interval;
    if (v < r.from) hi = mid - 1;
    else if (v > r.to) lo = mid + 1;
    else return true;
  }
  return false;
}

function compileRule(rule: RuleSpec, dir: 'ingress' | 'egress', selectedLocal: readonly PodView[], index: PodIndex): CompiledRule {
  const all = index.all;
  const named = rule.ports !== 'any' && rule.ports.some((p) => p.kind === 'name');
  let peerPods: readonly PodView[] = all;
  let peers: CompiledRule['peers'] = 'any';
  if (rule.peers !== 'any') {
    const blocks: Interval[] = [];
    const chosen: PodView[] = [];
    const blockPods: PodView[] = [];
    for (const peer of rule.peers) {
      if (peer.block) {
        blocks.push(...peer.block);
        // a named port towards an ipBlock resolves on the pods whose address lies in the block
        if (dir === 'egress' && named) for (const p of all) if (inBlock(p, peer.block)) blockPods.push(p);
      } else if (peer.podSel) {
        // scan only the pods of the namespaces the peer can match
        const podSel = peer.podSel;
        const scan = (e: { pods: PodView[] } | undefined) => { for (const p of e?.pods ?? []) if (podSel(p.labels)) chosen.push(p); };
        if (peer.nsName !== undefined) scan(index.byNs.get(peer.nsName));
        else for (const e of index.byNs.values()) if (peer.nsSel?.(e.nsLabels)) scan(e);
      }
    }
    peers = peerAddrSet(blocks, chosen);
    if (named) peerPods = [...new Set([...chosen, ...blockPods])];
  }
  let ports: CompiledPorts = 'any';
  if (rule.ports !== 'any') {
    const ranges = mergeRanges(rule.ports.flatMap((p) => (p.kind === 'range' ? [{ protocol: p.protocol, from: p.from, to: p.to }] : [])));
    ports = { ranges, named, resolved: named ? resolveNamed(rule.ports, dir === 'ingress' ? selectedLocal : peerPods) : [] };
  }
  return { peers, ports };
}

/**
 * One local pod per address. Two pod objects can claim one address for a moment (a terminating
 * pod whose status still shows the address its successor was given); the kernel can dispatch an
 * address to one chain only, so the pod not being deleted wins, then the first by namespace/name.
 * The loser is not isolated here (it is still a peer).
 */
function localOwners(candidates: PodView[]): PodView[] {
  const order = [...candidates].sort((a, b) => Number(a.deleting) - Number(b.deleting) || cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
  const claimed = new Set<string>();
  const out: PodView[] = [];
  for (const p of order) {
    if (p.ips.some((ip) => claimed.has(ip.text))) continue;
    for (const ip of p.ips) claimed.add(ip.text);
    out.push(p);
  }
  return out;
}

export function compilePolicies(input: CompileInput): PolicyModel {
  const nsLabels = new Map<string, Labels>();
  for (const ns of input.namespaces) nsLabels.set(ns.metadata.name, { [NAMESPACE_NAME_LABEL]: ns.metadata.name, ...(ns.metadata.labels ?? {}) });
  const pods = viewPods(input.pods, nsLabels, input.nodeName);
  const local = localOwners(pods.filter((p) => p.local));
  const index: PodIndex = { all: pods, byNs: new Map() };
  for (const p of pods) {
    const e = index.byNs.get(p.namespace);
    if (e) e.pods.push(p);
    else index.byNs.set(p.namespace, { nsLabels: p.nsLabels, pods: [p] });
  }

  const rejected: PolicyProblem[] = [];
  const specs: PolicySpec[] = [];
  for (const np of input.policies) {
    try {
      specs.push(parsePolicy(np));
    } catch (err) {
      if (!(err instanceof Problem)) throw err;
      rejected.push({ namespace: np.metadata.namespace, name: np.metadata.name, field: err.field, reason: err.reason });
    }
  }
  specs.sort((a, b) => cmp(a.key, b.key));

  const byPod = new Map<PodView, { ingress: string[]; egress: string[] }>(local.map((p) => [p, { ingress: [], egress: [] }]));
  const policies: CompiledPolicy[] = [];
  const idle: string[] = [];
  for (const s of specs) {
    const selectedLocal = local.filter((p) => p.namespace === s.namespace && s.selects(p.labels));
    // a policy isolating no pod of this node has nothing to enforce here: not compiled further
    if (selectedLocal.length === 0) {
      idle.push(s.key);
      continue;
    }
    for (const p of selectedLocal) {
      const e = byPod.get(p);
      if (e && s.ingress) e.ingress.push(s.key);
      if (e && s.egress) e.egress.push(s.key);
    }
    policies.push({
      namespace: s.namespace,
      name: s.name,
      key: s.key,
      ingress: s.ingress?.map((r) => compileRule(r, 'ingress', selectedLocal, index)),
      egress: s.egress?.map((r) => compileRule(r, 'egress', selectedLocal, index)),
    });
  }

  const localPods: LocalPodPolicy[] = local
    .map((p) => ({ namespace: p.namespace, name: p.name, ips: p.ips.map((i) => i.text), ...(byPod.get(p) ?? { ingress: [], egress: [] }) }))
    .sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
  rejected.sort((a, b) => cmp(a.namespace, b.namespace) || cmp(a.name, b.name));
  return { policies, idle, rejected, localPods };
}
