// The agent's observable state: what /readyz, /metrics and `twilld status` report. The daemon
// owns one AgentState and mutates it; http.ts and status.ts only read it.

export type LeaseState = 'pending' | 'alive' | 'lost';

export type PeerProgramState = 'programmed' | 'pending' | 'failed' | 'invalid';

export interface PeerStatus {
  subnet: string;
  publicIP: string;
  vtepMAC: string;
  state: PeerProgramState;
  reason?: string;            // why invalid / failed
  key: string;
}

export interface ReconcileStatus {
  at: number;                 // ms since epoch
  durationMs: number;
  ok: boolean;
  changes: number;            // kernel changes applied
  errors: number;             // per-entry failures
  trigger: string;            // 'start' | 'lease' | 'kernel:route' | 'resync' | ...
}

/** Readiness conditions; ready only when all are true. */
export interface ReadyConditions {
  config: boolean;
  lease: boolean;
  subnetFile: boolean;
  firstReconcile: boolean;
  trafficRules: boolean;
  store: boolean;             // the lease store (etcd / API) answered recently
}

/** NetworkPolicy as enforced on this node (kube mode with --network-policy). */
export interface PolicyStatus {
  /** Every collection listed and the result in the kernel. */
  enforced: boolean;
  /** Policies isolating a pod of this node / valid but isolating none here. */
  active: number;
  idle: number;
  /** Policies left out whole, with the field and the reason. */
  rejected: { namespace: string; name: string; field: string; reason: string }[];
  /** New-pod guard on (policies exist): unknown addresses of our subnet are closed. */
  guard: boolean;
  lastApply?: { at: number; ms: number; mode: string };
  /** Local pods with a pod IP, and the policies isolating each (empty = not isolated). */
  pods: { namespace: string; name: string; ips: string[]; ingress: string[]; egress: string[] }[];
}

export interface AgentStatus {
  version: string;
  node: string;               // hostname or node name
  mode: 'etcd' | 'kube';
  startedAt: number;
  ready: boolean;
  notReadyReasons: string[];  // human-readable, e.g. "network config: Network: missing ..."
  conditions: ReadyConditions;
  lease: {
    state: LeaseState;
    subnet?: string;
    ipv6Subnet?: string;
    publicIP?: string;
    vtepMAC?: string;
    expiration?: number | null;
  };
  device?: { name: string; mtu: number; index: number };
  peers: PeerStatus[];
  lastReconcile?: ReconcileStatus;
  repairs: Record<string, number>;   // by kind: route | nexthop | arp | fdb | device
  policy?: PolicyStatus;
}
