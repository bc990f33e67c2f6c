// Pods on the cluster's nodes, behind a provider seam. 'standin' builds what a CNI bridge
// plugin would (a `cni0` bridge holding the node subnet's first address, one netns per pod with
// eth0 on a veth, a default route via the bridge, forwarding on), using only iproute2, so the
// agent can be proven before the CNI plugin exists. 'cni' creates the same thing through the
// built plugin executable (dist/cni/twill) the way a runtime does (CNI_* env, config on stdin,
// run inside the node netns), with its IPAM store in the node's state dir.
import { join } from 'node:path';
import * as cni from '../util/pods.js';
import { ip } from './exec.js';
import { nthAddress, parseCidr } from './ipv4.js';
import { readSubnetEnv } from './subnet-env.js';
import { createNetns, deleteNetns, sysctl } from './underlay.js';

export type PodMode = 'standin' | 'cni';

export interface Pod {
  name: string;          // "n0p0"
  node: number;          // node index
  netns: string;
  ip: string;            // pod address
  prefixLen: number;
  gateway: string;       // node-side address (first usable of the node subnet)
  ifname: string;        // inside the pod
  containerId: string;
}

export interface PodNode {
  index: number;
  netns: string;
  subnetFile: string;
  /** A per-node directory the provider may use (the CNI IPAM store lives here). */
  stateDir: string;
}

export interface PodProvider {
  readonly kind: PodMode;
  add(node: PodNode, podIndex: number, netnsName: string): Promise<Pod>;
  remove(pod: Pod): Promise<void>;
}

/** The stand-in provider: what a bridge CNI plugin would build, made with iproute2. */
export class StandinPods implements PodProvider {
  readonly kind = 'standin' as const;
  private readonly bridged = new Set<string>();

  async add(node: PodNode, podIndex: number, netns: string): Promise<Pod> {
    const env = await readSubnetEnv(node.subnetFile);
    const sub = env?.FLANNEL_SUBNET;
    if (!sub) throw new Error(`node ${node.index}: no FLANNEL_SUBNET in ${node.subnetFile} (agent not ready?)`);
    const { len } = parseCidr(sub);
    const [gateway] = sub.split('/') as [string];
    const mtu = env.FLANNEL_MTU ?? '1500';
    await this.ensureBridge(node.netns, `${gateway}/${len}`, mtu);
    const podIp = nthAddress(sub, 2 + podIndex);
    const hostIf = `vp${podIndex}`;
    await createNetns(netns);
    await ip(node.netns, 'link', 'add', hostIf, 'mtu', mtu, 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', mtu, 'netns', netns);
    await ip(node.netns, 'link', 'set', hostIf, 'master', 'cni0', 'up');
    await ip(netns, 'addr', 'add', `${podIp}/${len}`, 'dev', 'eth0');
    await ip(netns, 'link', 'set', 'eth0', 'up');
    await ip(netns, 'route', 'add', 'default', 'via', gateway, 'dev', 'eth0');
    return { name: `n${node.index}p${podIndex}`, node: node.index, netns, ip: podIp, prefixLen: len, gateway, ifname: 'eth0', containerId: netns };
  }

  async remove(pod: Pod): Promise<void> {
    await deleteNetns(pod.netns);   // takes the pod's veth (and so its bridge port) with it
  }

  private async ensureBridge(nodeNetns: string, addr: string, mtu: string): Promise<void> {
    if (this.bridged.has(nodeNetns)) return;
    await ip(nodeNetns, 'link', 'add', 'cni0', 'mtu', mtu, 'type', 'bridge');
    await ip(nodeNetns, 'addr', 'add', addr, 'dev', 'cni0');
    await ip(nodeNetns, 'link', 'set', 'cni0', 'up');
    await sysctl(nodeNetns, 'net.ipv4.ip_forward', '1');
    this.bridged.add(nodeNetns);
  }
}

/** Pods made by the built plugin (dist/cni/twill), invoked inside the node netns as a runtime would. */
export class CniPods implements PodProvider {
  readonly kind = 'cni' as const;
  private readonly confs = new Map<string, { conf: object; hostNetns: string; pod: cni.Pod }>();

  constructor() {
    cni.ensurePluginBuilt();
  }

  async add(node: PodNode, podIndex: number, netns: string): Promise<Pod> {
    const conf = cni.twillConf({ name: 'twill', subnetFile: node.subnetFile, dataDir: join(node.stateDir, 'cni-ipam') });
    const p = await cni.addPod({ name: netns, conf, hostNetns: node.netns });
    const ips = (p.result['ips'] ?? []) as { address: string; gateway?: string }[];
    const first = ips[0];
    if (!first) throw new Error(`CNI ADD for ${netns} returned no address: ${JSON.stringify(p.result)}`);
    const pod: Pod = {
      name: `n${node.index}p${podIndex}`, node: node.index, netns, ip: p.ip,
      prefixLen: Number(first.address.split('/')[1]), gateway: first.gateway ?? '', ifname: p.ifname, containerId: p.containerId,
    };
    this.confs.set(netns, { conf, hostNetns: node.netns, pod: p });
    return pod;
  }

  async remove(pod: Pod): Promise<void> {
    const c = this.confs.get(pod.netns);
    if (!c) return;
    this.confs.delete(pod.netns);
    await cni.delPod(c.pod, c.conf, { hostNetns: c.hostNetns });
  }
}

export function podProvider(kind: PodMode): PodProvider {
  return kind === 'cni' ? new CniPods() : new StandinPods();
}

