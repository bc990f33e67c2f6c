// flannel itself on the benchmark's underlay: node netns plugged into a twill test cluster's
// switch (same bridge, same veth uplinks with GRO on, same MTU as twill's nodes), each running
// flanneld in etcd mode against the cluster's own etcd under flannel's prefix (/coreos.com/network),
// and pods made by flannel's CNI chain as kube-flannel.yml installs it: the `flannel` plugin
// delegating to `bridge` (hairpinMode, isDefaultGateway) + `host-local`, CNI_PATH = the peers' bin
// dir. flanneld runs as deployed there (--ip-masq, so the bridge plugin does not masquerade).
//
// Everything is named after the cluster's unique prefix and removed by destroy() (or the exit
// hook): flanneld is stopped by PID, pods are DELeted through the chain, netns deleted, the private
// subnet file, CNI dataDir and host-local's store (/var/lib/cni/networks/<unique name>) removed.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { addPod, delPod, type Pod as CniPod } from '../../test/util/pods.js';
import type { Cluster } from '../../test/harness/cluster.js';
import type { EtcdStore } from '../../test/harness/store-etcd.js';
import { ipJson, waitFor } from '../../test/harness/exec.js';
import { startProc, onProcessExit, type Proc } from '../../test/harness/procs.js';
import { readSubnetEnv } from '../../test/harness/subnet-env.js';
import { deleteNetns, nodeUnderlayIP, plugHost } from '../../test/harness/underlay.js';
import { peersBin } from './peers.js';

export const FLANNEL_PREFIX = '/coreos.com/network';
export const FLANNEL_DEVICE = 'flannel.1';

export interface FlannelNode {
  readonly index: number;
  readonly netns: string;
  readonly underlayIP: string;
  readonly subnetFile: string;
  readonly logFile: string;
  proc: Proc | undefined;
  subnet: string | undefined;
}

export interface FlannelPod { node: number; netns: string; ip: string; cni: CniPod }

export class FlannelNodes {
  readonly nodes: FlannelNode[] = [];
  readonly pods: FlannelPod[] = [];
  private readonly workDir: string;
  private readonly netName: string;
  private readonly netns: string[] = [];
  private readonly unhook: () => void;
  private destroyed = false;
  private readonly c: Cluster;

  /** `count` flannel nodes on `c`'s switch, underlay addresses after twill's (index 100 + i). */
  constructor(c: Cluster, count: number) {
    this.c = c;
    this.workDir = join(c.workDir, 'flannel');
    this.netName = `${c.prefix}flannel`;
    for (let i = 0; i < count; i++) {
      const dir = join(this.workDir, `f${i}`);
      mkdirSync(dir, { recursive: true });
      this.nodes.push({
        index: i, netns: `${c.prefix}f${i}`, underlayIP: nodeUnderlayIP(100 + i),
        subnetFile: join(dir, 'subnet.env'), logFile: join(c.logDir, `flanneld-f${i}.log`), proc: undefined, subnet: undefined,
      });
    }
    this.unhook = onProcessExit(() => this.destroySync());
  }

  /** The CNI config kube-flannel.yml ships (its cni-conf.json), with private file locations. */
  cniConf(n: FlannelNode): object {
    return {
      cniVersion: '0.3.1', name: this.netName, type: 'flannel',
      subnetFile: n.subnetFile, dataDir: join(this.workDir, `f${n.index}`, 'cni'),
      delegate: { hairpinMode: true, isDefaultGateway: true },
    };
  }

  /** Plugs the nodes into the switch, writes flannel's net-conf, starts flanneld, waits for routes to every peer. */
  async start(netConf: object, underlayMtu = 1500): Promise<void> {
    const store = this.c.store as EtcdStore;
    if (store.mode !== 'etcd') throw new Error('flannel nodes need the cluster in etcd mode');
    await store.etcd.ctl(['put', `${FLANNEL_PREFIX}/config`, JSON.stringify(netConf)]);
    for (const n of this.nodes) {
      this.netns.push(n.netns);
      await plugHost(this.c.switchNetns, n.netns, `fl${n.index}`, n.underlayIP, underlayMtu);
    }
    const bin = join(peersBin(), 'flanneld');
    // One at a time: two flanneld starting together can pick the same random subnet, and the
    // loser exits ("failed to acquire lease: subnet already exists") instead of picking again.
    for (const n of this.nodes) {
      n.proc = startProc(`flanneld-f${n.index}`, 'ip', ['netns', 'exec', n.netns, bin,
        '--etcd-endpoints', store.endpoint, '--etcd-prefix', FLANNEL_PREFIX,
        '--iface', 'eth0', '--subnet-file', n.subnetFile, '--ip-masq'], { logFile: n.logFile });
      const env = await waitFor(`flanneld f${n.index} writes ${n.subnetFile}`, async () => {
        if (!n.proc?.alive()) throw new Error(`flanneld f${n.index} exited; see ${n.logFile}`);
        const e = await readSubnetEnv(n.subnetFile);
        return e?.FLANNEL_SUBNET ? e : undefined;
      }, 30_000);
      n.subnet = env.FLANNEL_SUBNET;
    }
    // Ready for traffic once each node routes every other node's subnet over flannel.1.
    for (const n of this.nodes) {
      const others = this.nodes.filter((o) => o !== n).map((o) => networkOf(o.subnet!));
      await waitFor(`flanneld f${n.index} routes ${others.join(', ')} over ${FLANNEL_DEVICE}`, async () => {
        const routes = await ipJson<{ dst: string }>(n.netns, 'route', 'show', 'dev', FLANNEL_DEVICE).catch(() => []);
        return others.every((s) => routes.some((r) => r.dst === s));
      }, 30_000);
    }
  }

  /** One pod on node i through flannel's chain, run inside the node netns as a runtime would. */
  async addPod(i: number): Promise<FlannelPod> {
    const n = this.nodes[i]!;
    const name = `${this.c.prefix}f${i}p${this.pods.filter((p) => p.node === i).length}`;
    this.netns.push(name);
    const cni = await addPod({ name, conf: this.cniConf(n), plugin: join(peersBin(), 'flannel'), hostNetns: n.netns });
    const pod = { node: i, netns: name, ip: cni.ip, cni };
    this.pods.push(pod);
    return pod;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const p of this.pods) {
      const n = this.nodes[p.node]!;
      await delPod(p.cni, this.cniConf(n), { plugin: join(peersBin(), 'flannel'), hostNetns: n.netns }).catch(() => undefined);
    }
    await Promise.all(this.nodes.map((n) => n.proc?.stop('SIGTERM', 3000)));
    await Promise.all([...this.netns].reverse().map((ns) => deleteNetns(ns)));
    this.removeFiles();
    this.unhook();
  }

  private removeFiles(): void {
    rmSync(this.workDir, { recursive: true, force: true });
    rmSync(join('/var/lib/cni/networks', this.netName), { recursive: true, force: true });
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const n of this.nodes) if (n.proc?.alive()) { try { process.kill(n.proc.pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of [...this.netns].reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    this.removeFiles();
  }
}

/** "10.244.3.1/24" → "10.244.3.0/24" (flannel's FLANNEL_SUBNET holds the gateway address). */
export function networkOf(cidr: string): string {
  const [addr, len] = cidr.split('/') as [string, string];
  const n = Number(len);
  const v = addr.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
  const base = n === 0 ? 0 : (v & (~0 << (32 - n))) >>> 0;
  return `${[24, 16, 8, 0].map((s) => (base >>> s) & 255).join('.')}/${n}`;
}
