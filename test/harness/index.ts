// Public surface of the multi-node netns cluster harness (see docs/testing.md).
export { startCluster, DEFAULT_NET_CONF, DEFAULT_ETCD_PREFIX } from './cluster.js';
export type { Cluster, ClusterNode, ClusterOptions, ExternalHost } from './cluster.js';
export type { Pod, PodMode, PodProvider } from './pods.js';
export type { ClusterStore, StoredLease, SyntheticLease, StoreMode } from './store.js';
export type { KernelState, PeerEntries, DeviceInfo } from './kernel.js';
export { peerEntries, TWILL_PROTO } from './kernel.js';
export type { PingResult, PingOptions, PingFlow, TcpProbeResult } from './probe.js';
export { nsRun, run, waitFor, sleep } from './exec.js';
export { EXTERNAL_IP, SWITCH_IP, nodeUnderlayIP } from './underlay.js';
export { nthAddress, contains, overlaps } from './ipv4.js';
