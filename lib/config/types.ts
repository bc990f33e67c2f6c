// NetConf: the validated form of net-conf.json (flannel-compatible field names on disk).

export interface BackendConf {
  type: 'vxlan';
  vni: number;            // VNI (default 1)
  port: number;           // UDP port (default 8472)
  mtu?: number;           // explicit device MTU; else underlay MTU - overhead
  gbp: boolean;           // VXLAN group-based policy extension
  directRouting: boolean; // peers on the same L2 segment get direct routes instead of VXLAN
}

export interface NetConf {
  enableIPv4: boolean;
  enableIPv6: boolean;
  network?: string;        // IPv4 cluster prefix, "10.244.0.0/16"
  subnetLen: number;       // per-node IPv4 prefix length (default 24 when network prefix <= /22)
  subnetMin?: string;      // first subnet address eligible, "10.244.1.0"
  subnetMax?: string;      // last subnet address eligible
  ipv6Network?: string;
  ipv6SubnetLen: number;
  ipv6SubnetMin?: string;
  ipv6SubnetMax?: string;
  backend: BackendConf;
  /** The JSON as stored (for change detection and `twilld status`). */
  raw: string;
}
