// The pod's veth pair, created in one RTM_NEWLINK with the peer born inside the pod netns under
// its final name (IFLA_NET_NS_FD): no window where a half-configured interface sits in the host
// netns, and nothing to move or rename. The host end is enslaved to the bridge in the same
// message; hairpin needs it to be a port already, hence the second change in the batch.
import { applyAll, kernelError } from './apply.js';
import { hostVethMac } from './names.js';
import type { NetlinkHandle, NlChange } from '../../lib/netlink/types.js';

export interface VethPlan {
  hostName: string;
  podName: string;
  podNetnsFd: number;
  podMac: string;
  mtu: number;
  bridgeIndex: number;
  hairpin: boolean;
}

export async function createVeth(h: NetlinkHandle, p: VethPlan): Promise<string> {
  const mac = hostVethMac(p.hostName);
  const create: NlChange = {
    verb: 'create',
    object: {
      kind: 'link', name: p.hostName, type: 'veth', mtu: p.mtu, mac, up: true, master: p.bridgeIndex,
      veth: { peerName: p.podName, peerNetnsFd: p.podNetnsFd, peerMtu: p.mtu, peerMac: p.podMac },
    },
  };
  // Create and hairpin in one batch (one round trip); hairpin needs the port, so it comes second.
  const batch: NlChange[] = [create];
  if (p.hairpin) batch.push({ verb: 'set', object: { kind: 'link', name: p.hostName, hairpin: true } });
  let results = await h.apply(batch);
  if (results[0] && !results[0].ok && results[0].code === 'EEXIST') {
    // The host name is derived from (container, ifname): a leftover of an earlier, interrupted
    // ADD of this same attachment. The pod-side name was checked free before, so replace it.
    await deleteVeth(h, p.hostName);
    results = await h.apply(batch);
  }
  results.forEach((r, i) => {
    if (!r.ok) throw kernelError(h, batch[i]!, r, `veth ${p.hostName} <-> ${p.podName}`);
  });
  return mac;
}

/** Deletes the host end (the kernel removes the pod end with it); already gone is fine. */
export async function deleteVeth(h: NetlinkHandle, hostName: string): Promise<void> {
  await applyAll(h, [{ verb: 'delete', object: { kind: 'link', name: hostName } }], `veth ${hostName}`);
}
