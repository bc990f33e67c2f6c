// kube-mode ClusterStore: the fake Kubernetes API server (test/util/fake-apiserver-main.ts, run
// from the build) inside the switch netns, driven by JSON lines on stdin. The harness plays the
// kubelet (registers each Node with its InternalIP) and kube-controller-manager (assigns podCIDRs
// in order: the n-th node gets the (n+1)-th subnet of Network), so agents see what a real cluster
// shows them. A "lease" is a Node with a podCIDR and our kube-subnet-manager annotation. An API
// outage is simulated by failing every request with 503 and dropping every watch, which keeps
// the server's state and resourceVersions intact, as a restarted apiserver backed by etcd would.
import { existsSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { intToIp, parseCidr } from './ipv4.js';
import { agentBuild } from './dist-snapshot.js';
import { startProc, waitForLine, type Proc } from './procs.js';
import { leasesOfNodes, nodeWithPodCIDR, peerNode, type ClusterStore, type NodeJson, type NodeRef, type StoredLease, type SyntheticLease } from './store.js';

export interface KubeStoreOptions {
  netns: string;
  host: string;
  workDir: string;
  annotationPrefix?: string;             // default twill.io
  /** Assign podCIDRs when nodes register (default true); false = the test assigns them. */
  autoAssignPodCIDRs?: boolean;
}

export class KubeStore implements ClusterStore {
  readonly mode = 'kube' as const;
  readonly endpoint: string;
  readonly netConfPath: string;
  readonly annotationPrefix: string;
  private readonly o: KubeStoreOptions;
  private proc: Proc | undefined;
  private outage = false;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private netConf: { Network?: string; SubnetLen?: number } = {};

  constructor(o: KubeStoreOptions) {
    this.o = o;
    this.endpoint = `http://${o.host}:6443`;
    this.netConfPath = join(o.workDir, 'net-conf.json');
    this.annotationPrefix = o.annotationPrefix ?? 'twill.io';
  }

  async start(): Promise<void> {
    if (this.proc?.alive()) {
      if (this.outage) {
        await this.call('failRequests', { status: null });
        this.outage = false;
      }
      return;
    }
    const main = (await agentBuild()).fakeApiserverMain;
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
    const proc = startProc('fake-apiserver', 'ip', ['netns', 'exec', this.o.netns, process.execPath, main, '--listen', `${this.o.host}:6443`], { stdinPipe: true });
    this.proc = proc;
    await waitForLine(proc, /"event":"listening"/, 10_000);
    createInterface({ input: proc.child.stdout! }).on('line', (line) => this.onReply(line));
  }

  private onReply(line: string): void {
    let m: { id?: unknown; ok?: boolean; result?: unknown; error?: string };
    try { m = JSON.parse(line) as typeof m; } catch { return; }
    if (typeof m.id !== 'number') return;
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.result);
    else p.reject(new Error(`fake-apiserver: ${m.error}`));
  }

  /** One control command (see fake-apiserver-main.ts). */
  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const stdin = this.proc?.child.stdin;
    if (!stdin || !this.proc?.alive()) return Promise.reject(new Error('fake-apiserver is not running'));
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => { this.pending.delete(id); reject(new Error(`fake-apiserver: ${cmd} timed out`)); }, 10_000);
      this.pending.set(id, {
        resolve: (v) => { clearTimeout(t); resolve(v as T); },
        reject: (e) => { clearTimeout(t); reject(e); },
      });
      stdin.write(JSON.stringify({ id, cmd, args }) + '\n');
    });
  }

  async stop(): Promise<void> {
    await this.call('failRequests', { status: 503 });
    await this.call('dropAllWatches', { mode: 'reset' });
    this.outage = true;
  }

  pid(): number | undefined { return this.proc?.alive() ? this.proc.pid : undefined; }

  running(): boolean { return (this.proc?.alive() ?? false) && !this.outage; }

  async destroy(): Promise<void> { await this.proc?.stop('SIGTERM', 2000); }

  agentArgs(): string[] {
    // The fake API server serves Nodes only (it exists for outages a real one cannot be made to
    // have on demand): NetworkPolicy, which lists Pods, Namespaces and NetworkPolicies, is
    // proven against the real kube-apiserver (test/e2e/kube-policy.test.ts).
    return ['--kube-subnet-mgr', '--kube-api-url', this.endpoint, '--net-config-path', this.netConfPath,
      '--kube-annotation-prefix', this.annotationPrefix, '--network-policy=false'];
  }

  agentEnv(node: NodeRef): Record<string, string> { return { NODE_NAME: node.name }; }

  async writeConfig(netConf: object): Promise<void> {
    this.netConf = netConf as typeof this.netConf;
    writeFileSync(this.netConfPath, JSON.stringify(netConf, null, 2));
  }

  /** The podCIDR kube-controller-manager would give the n-th node. */
  podCIDRFor(index: number): string {
    const network = this.netConf.Network ?? '10.244.0.0/16';
    const len = this.netConf.SubnetLen ?? 24;
    const { base } = parseCidr(network);
    return `${intToIp((base + (index + 1) * 2 ** (32 - len)) >>> 0)}/${len}`;
  }

  async prepareNode(node: NodeRef): Promise<void> {
    await this.call('createNode', { name: node.name, addresses: [{ type: 'InternalIP', address: node.underlayIP }] });
    if (this.o.autoAssignPodCIDRs !== false) await this.assignPodCIDR(node.name, this.podCIDRFor(node.index));
  }

  assignPodCIDR(name: string, cidr: string | string[]): Promise<unknown> {
    return this.call('assignPodCIDR', { name, podCIDRs: cidr });
  }

  async leases(): Promise<StoredLease[]> {
    return leasesOfNodes(await this.call<NodeJson[]>('listNodes'), this.annotationPrefix);
  }

  async putLease(l: SyntheticLease): Promise<void> {
    const { name, annotations } = peerNode(l, this.annotationPrefix);
    await this.call('createNode', { name, podCIDR: l.subnet, addresses: [{ type: 'InternalIP', address: l.publicIP }], annotations });
  }

  async deleteLease(subnet: string): Promise<void> {
    await this.call('deleteNode', { name: nodeWithPodCIDR(await this.call<NodeJson[]>('listNodes'), subnet).metadata.name });
  }
}
