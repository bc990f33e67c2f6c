// What /status serves and the twill_peers gauge counts, computed on demand from the running
// datapath: a peer's state is read from the PeerTable and the reconciler's cache, never stored.
import type { PeerGaugeState } from './metrics.js';
import type { PeerTable, PeerView } from './peers.js';
import type { Reconciler } from './reconcile/loop.js';
import type { AgentStatus, PeerStatus, PolicyStatus } from './state.js';

export interface SnapshotSource {
  readonly peers: PeerTable;
  readonly reconciler: Reconciler;
}

function peerState(src: SnapshotSource, v: PeerView): PeerStatus['state'] {
  if (!v.valid) return 'invalid';
  return src.reconciler.isProgrammed(v.entries) ? 'programmed' : 'pending';
}

/** Peer counts for the twill_peers gauge (walks every peer: called at scrape time only). */
export function peerCounts(src: SnapshotSource | undefined): Record<PeerGaugeState, number> {
  if (!src) return { valid: 0, invalid: 0, programmed: 0 };
  let programmed = 0;
  for (const v of src.peers.views()) if (peerState(src, v) === 'programmed') programmed++;
  const c = src.peers.counts();
  return { valid: c.valid, invalid: c.invalid, programmed };
}

/** The status document, with every peer and, when NetworkPolicy runs, its section. */
export function snapshot(status: AgentStatus, src: SnapshotSource | undefined, policy: PolicyStatus | undefined): AgentStatus {
  const peers: PeerStatus[] = [];
  for (const v of src?.peers.views() ?? []) {
    const data = v.lease?.attrs.backendData as { VtepMAC?: string } | undefined;
    peers.push({
      key: v.key, subnet: v.lease?.subnet ?? '', publicIP: v.lease?.attrs.publicIP ?? '', vtepMAC: data?.VtepMAC ?? '', state: peerState(src!, v),
      ...(v.invalid ? { reason: v.invalid.message } : {}),
    });
  }
  return { ...status, peers, ...(policy ? { policy } : {}) };
}
