// The traffic-rules contract the daemon drives: ensure at start and after a network change,
// check on every resync (re-ensure when it returns false), remove on --cleanup.

import type { Logger } from '../../lib/log.js';

export interface TrafficSpec {
  network?: string;       // cluster pod network, e.g. 10.244.0.0/16
  ipv6Network?: string;
  subnet?: string;        // this node's lease, e.g. 10.244.1.0/24
  ipv6Subnet?: string;
  masquerade: boolean;    // --ip-masq
}

export type TrafficBackend = 'nftables' | 'iptables';

export interface TrafficRules {
  readonly backend: TrafficBackend;
  /** Replaces twill's rules with exactly those for `spec` (idempotent). */
  ensure(spec: TrafficSpec): Promise<void>;
  /** True when the kernel holds exactly the rules `ensure(spec)` would install. */
  check(spec: TrafficSpec): Promise<boolean>;
  /** Deletes everything twill installed; "already gone" is success. */
  remove(): Promise<void>;
}

export interface TrafficOptions {
  logger: Logger;
  prefer?: TrafficBackend;
  /** Tests only: run every command inside this named netns via `ip netns exec`. */
  netns?: string;
  /** iptables flavour for the fallback: the system default (`iptables`), or a named one. */
  iptables?: 'default' | 'nft' | 'legacy';
}
