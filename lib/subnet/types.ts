// The SubnetManager seam: etcd, kube and memory implementations behind one interface, so the
// agent's lease keeper, reconciler, validation and metrics are identical in every mode.
import type { NetConf } from '../config/types.js';

/** What a node publishes about itself (flannel's JSON field names on the wire). */
export interface LeaseAttrs {
  publicIP: string;              // underlay IPv4 (or "" when IPv6-only)
  publicIPv6?: string | null;
  backendType: string;           // "vxlan" (anything else is ignored by peers)
  backendData: { VNI: number; VtepMAC: string };
  backendV6Data?: { VNI: number; VtepMAC: string } | null;
}

export interface Lease {
  subnet: string;                // "10.244.3.0/24" ("" when IPv6-only)
  ipv6Subnet?: string;           // "fd00:10:244:3::/64"
  attrs: LeaseAttrs;
  /**
   * When it expires (ms since epoch); null for a reservation (etcd key without an etcd lease);
   * undefined for a key held under an etcd lease whose remaining time was not looked up. The
   * etcd watch looks it up only for the agent's own leases: it costs one call per etcd lease,
   * ≈2 s of calls at start-up for 20k peers that each hold their own, for a figure nothing uses
   * (a peer whose lease runs out arrives as 'removed' when etcd deletes its key).
   */
  expiration: number | null | undefined;
  /** Store-specific identity (etcd: key; kube: node name). */
  key: string;
  /** Store-specific handle needed for renew (etcd: lease id as decimal string). */
  leaseId?: string;
  /**
   * When the entry came into being, in the store's own order, for deciding which of two
   * conflicting leases was there first (agent/peers.ts): etcd: the key's create revision; kube:
   * the Node's metadata.creationTimestamp in ms; memory: a create counter. Ties are broken by
   * key. Undefined (unknown) sorts after every known value.
   */
  created?: number;
}

/** A stored entry that could not be decoded: its key and what is wrong with it. */
export interface Undecodable { key: string; reason: string }

export type LeaseEvent =
  /** The full current set (first event of a watch, and after every relist), the undecodable
   *  entries included, so a relist replaces every verdict at once. */
  | { type: 'snapshot'; leases: Lease[]; invalid?: Undecodable[] }
  | { type: 'added'; lease: Lease }      // added or changed
  | { type: 'removed'; lease: Lease }    // deleted or expired
  /** A stored entry that could not be decoded (logged and counted, never programmed). */
  | { type: 'invalid'; key: string; reason: string }
  /** A key that held no valid lease (one reported 'invalid', or never seen) was deleted, or in
   *  kube mode the Node stopped being ours: whatever was recorded about it is forgotten. */
  | { type: 'deleted'; key: string };

export interface SubnetManager {
  readonly name: 'etcd' | 'kube' | 'memory';
  getNetworkConfig(signal: AbortSignal): Promise<NetConf>;
  /**
   * Acquires (or re-acquires) our lease. `previousSubnet` comes from the subnet file.
   * etcd: reuse a lease carrying our public IP, else the previous subnet if free, else a random
   * free subnet; create-if-absent, retried on conflict; SUBNETS_EXHAUSTED when none is left.
   * kube: the node's spec.podCIDR(s); publishes annotations.
   */
  acquireLease(attrs: LeaseAttrs, opts: { previousSubnet?: string; signal: AbortSignal }): Promise<Lease>;
  renewLease(lease: Lease, signal: AbortSignal): Promise<Lease>;
  /** Infinite stream until `signal` aborts; restarts itself after errors (relist → snapshot). */
  watchLeases(signal: AbortSignal): AsyncIterable<LeaseEvent>;
  /** Removes our lease (etcd: delete key + revoke) — used by tests and --cleanup. */
  releaseLease?(lease: Lease, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}
