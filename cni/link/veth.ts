// The pod's veth pair, created in one RTM_NEWLINK with the peer born inside the pod netns under
// its final name (IFLA_NET_NS_FD): no window where a half-configured interface sits in the host
// netns, and nothing to move or rename. The host end is enslaved to the bridge in the same
// message; hairpin needs it to be a port already, hence the second change in the batch.
import { CniError, CNI_ERR } from '../skel/errors.js';
import { applyAll } from './apply.js';
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
  let [r] = await h.apply([create]);
  if (r && !r.ok && r.code === 'EEXIST') {
    // The host name is derived from (container, ifname): a leftover of an earlier, interrupted
    // ADD of this same attachment. The pod-side name was checked free before, so replace it.
    await deleteVeth(h, p.hostName);
    [r] = await h.apply([create]);
  }
  if (r && !r.ok) {
    throw new CniError(CNI_ERR.kernel, `veth ${p.hostName} <-> ${p.podName}: create in ${h.netns} failed: ${r.code} (${r.message})`);
  }
  if (p.hairpin) await applyAll(h, [{ verb: 'set', object: { kind: 'link', name: p.hostName, hairpin: true } }], `veth ${p.hostName}`);
  return mac;
}

/** Deletes the host end (the kernel removes the pod end with it); already gone is fine. */
export async function deleteVeth(h: NetlinkHandle, hostName: string): Promise<void> {
  await applyAll(h, [{ verb: 'delete', object: { kind: 'link', name: hostName } }], `veth ${hostName}`);
}
