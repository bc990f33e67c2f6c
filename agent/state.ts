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
}
