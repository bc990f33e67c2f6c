// The seam between the harness and where leases live. etcd mode: a real etcd in the switch
// netns, leases under <prefix>/subnets. kube mode: a real kube-apiserver (store-kube-real.ts;
// the test plays the kubelet and kube-controller-manager). kube-fake: the fake API server
// (store-kube.ts), kept for what a real apiserver cannot be made to do on demand (injected 5xx,
// dropped watches, 410 Gone). All plug in behind the same interface, so every e2e assertion can
// run against any of them.
import { intToIp, parseCidr } from './ipv4.js';

export type StoreMode = 'etcd' | 'kube' | 'kube-fake';

/** A lease as stored, in flannel's wire format, decoded for assertions. */
export interface StoredLease {
  key: string;
  subnet: string;              // "10.244.3.0/24"
  publicIP: string;
  backendType: string;
  vni: number | undefined;
  vtepMAC: string | undefined;
  /** true when the key is attached to an etcd lease (i.e. it expires); false = reservation. */
  expiring: boolean;
  raw: string;
}

export interface SyntheticLease {
  subnet: string;
  publicIP: string;
  vtepMAC: string;
  vni?: number;
  backendType?: string;
  /** Seconds until it expires (etcd lease TTL); null = a reservation (no etcd lease). */
  ttlSec?: number | null;
  /** Write this exact value instead of the encoded lease (for invalid-lease tests). */
  rawValue?: string;
}

export interface NodeRef { index: number; name: string; underlayIP: string }

export interface ClusterStore {
  /** The agents' mode with this store (what their /status reports): both kube stores are 'kube'. */
  readonly mode: 'etcd' | 'kube';
  /** Where the agent reaches the store, for display. */
  readonly endpoint: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  running(): boolean;
  /** PID of the store's server process (for the last-resort cleanup). */
  pid(): number | undefined;
  /** Flags every agent gets to use this store (besides the harness's common flags). */
  agentArgs(node: NodeRef): string[];
  agentEnv(node: NodeRef): Record<string, string>;
  /** Registers a node before its agent starts (kube: the kubelet's Node object + podCIDR). */
  prepareNode(node: NodeRef): Promise<void>;
  writeConfig(netConf: object): Promise<void>;
  leases(): Promise<StoredLease[]>;
  putLease(lease: SyntheticLease): Promise<void>;
  deleteLease(subnet: string): Promise<void>;
  destroy(): Promise<void>;
}

/** A kube-mode store: the test plays kube-controller-manager (assigns, or lets it assign, podCIDRs). */
export interface KubeClusterStore extends ClusterStore {
  /** The podCIDR kube-controller-manager would give the n-th node. */
  podCIDRFor(index: number): string;
  /** Sets spec.podCIDR(s) of a Node, as kube-controller-manager does (once, from empty). */
  assignPodCIDR(name: string, cidr: string | string[]): Promise<unknown>;
}

/** kube-controller-manager's order: the n-th node gets the (n+1)-th subnet of Network. */
export function podCIDRFor(netConf: { Network?: string; SubnetLen?: number }, index: number): string {
  const network = netConf.Network ?? '10.244.0.0/16';
  const len = netConf.SubnetLen ?? 24;
  const { base } = parseCidr(network);
  return `${intToIp((base + (index + 1) * 2 ** (32 - len)) >>> 0)}/${len}`;
}

export const subnetKey = (subnet: string): string => subnet.replace('/', '-');

export function encodeLease(l: SyntheticLease): string {
  return l.rawValue ?? JSON.stringify({
    PublicIP: l.publicIP,
    PublicIPv6: null,
    BackendType: l.backendType ?? 'vxlan',
    BackendData: { VNI: l.vni ?? 1, VtepMAC: l.vtepMAC },
  });
}

export function decodeLease(key: string, subnet: string, raw: string, expiring: boolean): StoredLease {
  let v: { PublicIP?: string; BackendType?: string; BackendData?: { VNI?: number; VtepMAC?: string } } = {};
  try { v = JSON.parse(raw) as typeof v; } catch { /* left empty: asserted by the caller */ }
  return {
    key, subnet, raw, expiring,
    publicIP: v.PublicIP ?? '',
    backendType: v.BackendType ?? '',
    vni: v.BackendData?.VNI,
    vtepMAC: v.BackendData?.VtepMAC,
  };
}

// ---- kube mode: a lease is a Node (podCIDR + the agent's annotations) ------------------------

export interface NodeJson {
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { podCIDR?: string; podCIDRs?: string[] };
}

/** The leases kube-mode agents published: Nodes with a podCIDR and `<prefix>/kube-subnet-manager`. */
export function leasesOfNodes(nodes: readonly NodeJson[], prefix: string): StoredLease[] {
  const a = (n: NodeJson, k: string): string | undefined => n.metadata.annotations?.[`${prefix}/${k}`];
  return nodes.filter((n) => n.spec?.podCIDR && a(n, 'kube-subnet-manager') === 'true').map((n) => {
    let data: { VNI?: number; VtepMAC?: string } = {};
    try { data = JSON.parse(a(n, 'backend-data') ?? '{}') as typeof data; } catch { /* asserted by callers */ }
    return {
      key: n.metadata.name, subnet: n.spec!.podCIDR!, publicIP: a(n, 'public-ip') ?? '',
      backendType: a(n, 'backend-type') ?? '', vni: data.VNI, vtepMAC: data.VtepMAC, expiring: false,
      raw: JSON.stringify(n.metadata.annotations ?? {}),
    };
  });
}

/** A synthetic peer as another kube-mode agent leaves it: its Node's name and annotations. */
export function peerNode(l: SyntheticLease, prefix: string): { name: string; annotations: Record<string, string> } {
  if (l.ttlSec) throw new Error('kube mode: leases do not expire (a Node is deleted instead)');
  return {
    name: `peer-${l.subnet.replace(/[./]/g, '-')}`,
    annotations: {
      [`${prefix}/kube-subnet-manager`]: 'true',
      [`${prefix}/backend-type`]: l.backendType ?? 'vxlan',
      [`${prefix}/public-ip`]: l.publicIP,
      [`${prefix}/backend-data`]: l.rawValue ?? JSON.stringify({ VNI: l.vni ?? 1, VtepMAC: l.vtepMAC }),
    },
  };
}

/** The Node holding `subnet` as its podCIDR (a lease to delete). */
export function nodeWithPodCIDR(nodes: readonly NodeJson[], subnet: string): NodeJson {
  const n = nodes.find((x) => x.spec?.podCIDR === subnet);
  if (!n) throw new Error(`kube mode: no Node has podCIDR ${subnet}`);
  return n;
}
