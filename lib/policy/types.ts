// The inputs of the NetworkPolicy compiler, shaped as the Kubernetes API serves them
// (networking.k8s.io/v1 NetworkPolicy, v1 Pod, v1 Namespace), reduced to the fields policy
// enforcement reads. Plain interfaces on purpose: objects from @kubernetes/client-node, from a
// JSON watch stream or from a test table all fit without conversion, and nothing here pulls the
// client library into lib/.

export interface LabelSelectorRequirement {
  key: string;
  /** In, NotIn, Exists, DoesNotExist (the only operators a NetworkPolicy selector accepts). */
  operator: string;
  values?: string[] | null;
}

/** A label selector. `{}` (nothing set) selects everything; a missing selector is `undefined`. */
export interface LabelSelector {
  matchLabels?: Record<string, string> | null;
  matchExpressions?: LabelSelectorRequirement[] | null;
}

export interface IPBlock {
  cidr: string;
  except?: string[] | null;
}

export interface NetworkPolicyPeer {
  podSelector?: LabelSelector | null;
  namespaceSelector?: LabelSelector | null;
  ipBlock?: IPBlock | null;
}

export interface NetworkPolicyPort {
  /** TCP (the default), UDP or SCTP. */
  protocol?: string | null;
  /** A number or an IANA_SVC_NAME (a container port name); missing = every port. */
  port?: number | string | null;
  endPort?: number | null;
}

export interface NetworkPolicyIngressRule {
  from?: NetworkPolicyPeer[] | null;
  ports?: NetworkPolicyPort[] | null;
}

export interface NetworkPolicyEgressRule {
  to?: NetworkPolicyPeer[] | null;
  ports?: NetworkPolicyPort[] | null;
}

export interface NetworkPolicySpec {
  /** Missing (newer API servers may omit an empty one) = `{}`: every pod of the namespace. */
  podSelector?: LabelSelector | null;
  policyTypes?: string[] | null;
  ingress?: NetworkPolicyIngressRule[] | null;
  egress?: NetworkPolicyEgressRule[] | null;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string> | null;
  /** Set while the object is being deleted (a terminating pod). */
  deletionTimestamp?: string | Date | null;
}

export interface NetworkPolicy {
  metadata: ObjectMeta & { namespace: string };
  spec: NetworkPolicySpec;
}

export interface Namespace {
  metadata: ObjectMeta;
}

export interface ContainerPort {
  name?: string | null;
  containerPort: number;
  /** TCP (the default), UDP or SCTP. */
  protocol?: string | null;
}

export interface Container {
  ports?: ContainerPort[] | null;
  /** Init containers with restartPolicy Always are sidecars: their ports are the pod's too. */
  restartPolicy?: string | null;
}

export interface Pod {
  metadata: ObjectMeta & { namespace: string };
  spec: {
    nodeName?: string | null;
    hostNetwork?: boolean | null;
    containers?: Container[] | null;
    initContainers?: Container[] | null;
  };
  status?: {
    phase?: string | null;
    podIP?: string | null;
    podIPs?: { ip: string }[] | null;
  } | null;
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP';
export type Direction = 'ingress' | 'egress';

// ---- the compiler's output: the desired state, independent of how it is enforced ----

/** A policy (or one field of it) twill cannot express: the whole policy is left out. */
export interface PolicyProblem {
  namespace: string;
  name: string;
  /** JSON-path-like location, e.g. `spec.ingress[0].from[1].ipBlock.except[0]`. */
  field: string;
  reason: string;
}

/** An inclusive address range; single addresses have from === to. Values are canonical text. */
export interface AddrRange { from: string; to: string }

/** Addresses per family, as sorted, disjoint, non-adjacent ranges. */
export interface AddrSet { v4: AddrRange[]; v6: AddrRange[] }

/** An inclusive port range of one protocol; "every port" is 0-65535. */
export interface PortRange { protocol: Protocol; from: number; to: number }

/** A named port resolved on one pod: traffic to `ip` on `protocol`/`port`. */
export interface ResolvedPort { ip: string; protocol: Protocol; port: number }

/**
 * The ports half of a rule. `any`: every port and protocol (ports missing or empty).
 * Otherwise numeric ranges plus, when the rule names ports (`named: true`), the (pod IP,
 * protocol, port) triples those names resolve to: on the destination pods for ingress, on the
 * peer pods for egress.
 */
export type CompiledPorts = 'any' | { ranges: PortRange[]; named: boolean; resolved: ResolvedPort[] };

/** One ingress or egress rule: traffic is allowed when the peer AND the port match. */
export interface CompiledRule {
  /** `any`: from/to missing or empty. */
  peers: 'any' | AddrSet;
  ports: CompiledPorts;
}

export interface CompiledPolicy {
  namespace: string;
  name: string;
  /** `namespace/name`. */
  key: string;
  /** Rules when the policy affects this direction (policyTypes), else undefined. */
  ingress: CompiledRule[] | undefined;
  egress: CompiledRule[] | undefined;
}

/** A pod on the local node with a pod IP of its own, and the policies isolating it. */
export interface LocalPodPolicy {
  namespace: string;
  name: string;
  ips: string[];
  /** Keys of the policies selecting this pod for ingress; empty = not isolated for ingress. */
  ingress: string[];
  egress: string[];
}

export interface PolicyModel {
  /** The policies isolating at least one local pod, compiled, sorted by key. */
  policies: CompiledPolicy[];
  /** Keys of the valid policies that isolate no pod of this node (nothing to enforce here). */
  idle: string[];
  /** Policies left out, with the reason. */
  rejected: PolicyProblem[];
  /** Local pods, sorted by namespace/name. */
  localPods: LocalPodPolicy[];
}
