// Pod wirings built by hand for the throughput benchmark, next to the CNI's bridged pods on the
// same twill nodes, so the cost of the bridge hop is measured on the same underlay in the same
// run. Nothing here is used by twill itself.
//
// routed veth: the pod's eth0 is a veth whose host end sits in the node netns unbridged, with a
// /32 route to the pod on it; the pod has only its /32 address, a link route to the gateway and a
// default route via it. The gateway (the node subnet's first address, cni0's address today) is
// also put on the host end as a /32, so the node answers the pod's ARP on that veth whether or not
// a cni0 bridge exists. Packets from the pod are routed straight from the veth to the VXLAN device
// (and back), with no bridge input/forward and no br_netfilter pass.
import { ip, ipJson, nsRun } from '../../test/harness/exec.js';
import { createNetns } from '../../test/harness/underlay.js';

export interface RoutedPod { nodeNetns: string; netns: string; hostIf: string; ip: string; gateway: string }

export async function addRoutedPod(o: { nodeNetns: string; netns: string; hostIf: string; ip: string; gateway: string; mtu: number }): Promise<RoutedPod> {
  const mtu = String(o.mtu);
  await createNetns(o.netns);
  await ip(o.nodeNetns, 'link', 'add', o.hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', o.netns);
  await ip(o.nodeNetns, 'addr', 'add', `${o.gateway}/32`, 'dev', o.hostIf);
  await ip(o.nodeNetns, 'link', 'set', o.hostIf, 'up');
  await ip(o.nodeNetns, 'route', 'add', `${o.ip}/32`, 'dev', o.hostIf);
  await nsRun(o.nodeNetns, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  await ip(o.netns, 'addr', 'add', `${o.ip}/32`, 'dev', 'eth0');
  await ip(o.netns, 'link', 'set', 'eth0', 'up');
  await ip(o.netns, 'route', 'add', o.gateway, 'dev', 'eth0', 'scope', 'link');
  await ip(o.netns, 'route', 'add', 'default', 'via', o.gateway, 'dev', 'eth0');
  return { nodeNetns: o.nodeNetns, netns: o.netns, hostIf: o.hostIf, ip: o.ip, gateway: o.gateway };
}

/** Bytes a link has transmitted (its stats64), read inside a netns. */
export async function txBytes(netns: string, dev: string): Promise<number> {
  const [l] = await ipJson<{ stats64?: { tx?: { bytes?: number } } }>(netns, '-s', 'link', 'show', 'dev', dev);
  const b = l?.stats64?.tx?.bytes;
  if (b === undefined) throw new Error(`no tx counter for ${dev} in ${netns}`);
  return b;
}
