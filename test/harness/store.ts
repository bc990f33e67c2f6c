// The seam between the harness and where leases live. etcd mode: a real etcd in the switch
// netns, leases under <prefix>/subnets. kube mode (a fake API server; the test plays
// kube-controller-manager) plugs in behind the same interface, so every e2e assertion can run
// against either store.

export type StoreMode = 'etcd' | 'kube';

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
  readonly mode: StoreMode;
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
