// kube-mode ClusterStore on a real kube-apiserver: the pinned upstream etcd + kube-apiserver
// (test/cluster/controlplane.ts, `controllers: false`) inside the switch netns, listening on
// 0.0.0.0:6443 there and advertising the switch address, so every node reaches it the way a real
// node does. There is no kubelet and no kube-controller-manager: the harness plays both, as with
// the fake API server (store-kube.ts) — it creates each Node with its InternalIP (the kubelet)
// and then sets spec.podCIDR(s), settable once from empty, to the (n+1)-th subnet of Network
// for the n-th node (kube-controller-manager), unless the test assigns them itself. All of that
// goes through kubectl as the cluster admin, so the apiserver validates every object.
//
// Agents authenticate as the DaemonSet's do: deploy/rbac.yaml is applied, a token is minted for
// the ServiceAccount kube-system/twill (TokenRequest), and each agent gets a kubeconfig with that
// token and the cluster CA (`--kubeconfig-file`), so RBAC checks every request the agent makes.
// A "lease" is a Node with a podCIDR and our kube-subnet-manager annotation. stop()/start() stop
// and restart kube-apiserver: an outage in which etcd keeps the state.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlPlane } from '../cluster/controlplane.js';
import { makePki } from '../cluster/pki.js';
import { upstreamBinDir } from '../cluster/prepare.js';
import { waitFor } from './exec.js';
import { REPO_ROOT } from './paths.js';
import { onProcessExit } from './procs.js';
import { leasesOfNodes, nodeWithPodCIDR, peerNode, podCIDRFor, type KubeClusterStore, type NodeJson, type NodeRef, type StoredLease, type SyntheticLease } from './store.js';

/** What this store runs from the upstream build. */
const NEEDED = ['etcd', 'kube-apiserver', 'kubectl'] as const;
/** kube-apiserver needs a service range; nothing here uses Services. */
const SERVICE_CIDR = '10.96.0.0/16';
const API_SERVICE_IP = '10.96.0.1';
const TOKEN_DURATION = '24h';

export interface RealKubeStoreOptions {
  netns: string;
  /** The switch address: kube-apiserver's advertise address and the agents' server. */
  host: string;
  workDir: string;
  /** etcd.log and kube-apiserver.log go here (kept after destroy). */
  logDir: string;
  annotationPrefix?: string;             // default twill.io
  /** Assign podCIDRs when nodes register (default true); false = the test assigns them. */
  autoAssignPodCIDRs?: boolean;
}

let binDir: Promise<string> | undefined;

/**
 * The upstream binaries: $TWILL_UPSTREAM_BIN (scripts/cluster-prepare.sh exports it before
 * vitest), else the last line of test/cluster/build.sh (cached by pins; a cold build takes long,
 * so run it, or `npm test`, before running these suites alone).
 */
export function upstreamBin(): Promise<string> {
  binDir ??= (async () => {
    const bin = upstreamBinDir();
    const missing = NEEDED.filter((b) => !existsSync(join(bin, b)));
    if (missing.length > 0) throw new Error(`upstream binaries missing in ${bin}: ${missing.join(', ')} (run bash test/cluster/build.sh)`);
    return bin;
  })();
  return binDir;
}

export class RealKubeStore implements KubeClusterStore {
  readonly mode = 'kube' as const;
  readonly endpoint: string;
  readonly netConfPath: string;
  readonly annotationPrefix: string;
  /** Where the PKI, etcd's data and the kubeconfigs live (removed by destroy). */
  readonly dir: string;
  readonly agentKubeconfig: string;
  private readonly o: RealKubeStoreOptions;
  private cp: ControlPlane | undefined;
  private netConf: { Network?: string; SubnetLen?: number } = {};
  private unhook: (() => void) | undefined;

  constructor(o: RealKubeStoreOptions) {
    this.o = o;
    this.endpoint = `https://${o.host}:6443`;
    this.dir = join(o.workDir, 'kube-apiserver');
    this.netConfPath = join(o.workDir, 'net-conf.json');
    this.agentKubeconfig = join(this.dir, 'twill-agent.kubeconfig');
    this.annotationPrefix = o.annotationPrefix ?? 'twill.io';
  }

  /** The control plane (kubectl as admin, its processes); throws before start(). */
  get controlPlane(): ControlPlane {
    if (!this.cp) throw new Error('kube-apiserver was never started');
    return this.cp;
  }

  async start(): Promise<void> {
    if (this.cp) {
      if (!this.cp.apiserverRunning()) await this.withLog(() => this.cp!.startApiserver());
      return;
    }
    const bin = await upstreamBin();
    mkdirSync(join(this.dir, 'pki'), { recursive: true });
    mkdirSync(join(this.dir, 'cp'), { recursive: true });
    const cp = new ControlPlane({
      netns: this.o.netns, ip: this.o.host, bin, dir: join(this.dir, 'cp'), logDir: this.o.logDir,
      pki: await makePki(join(this.dir, 'pki')),
      clusterCidr: '10.244.0.0/16', serviceCidr: SERVICE_CIDR, apiServiceIP: API_SERVICE_IP, nodeCidrMaskSize: 24,
      controllers: false,
    });
    this.cp = cp;
    this.unhook = onProcessExit(() => this.destroySync());
    await this.withLog(() => cp.startAll());
    // kube-system is made by the apiserver's own start-up hooks, which /readyz may precede.
    await waitFor('deploy/rbac.yaml applied', async () => (await cp.kubectl(['apply', '-f', join(REPO_ROOT, 'deploy', 'rbac.yaml')], { allowFail: true })).code === 0, 30_000, 250);
    const token = (await cp.kubectl(['create', 'token', 'twill', '-n', 'kube-system', `--duration=${TOKEN_DURATION}`])).stdout.trim();
    if (!/^[\w-]+\.[\w-]+\.[\w-]+$/.test(token)) throw new Error(`kubectl create token: not a JWT: ${JSON.stringify(token.slice(0, 200))}`);
    writeFileSync(this.agentKubeconfig, [
      'apiVersion: v1', 'kind: Config',
      'clusters:', '- name: twill', '  cluster:', `    server: ${this.endpoint}`, `    certificate-authority: ${cp.spec.pki.caCert}`,
      'users:', '- name: twill', '  user:', `    token: ${token}`,
      'contexts:', '- name: twill', '  context:', '    cluster: twill', '    user: twill',
      'current-context: twill', '',
    ].join('\n'), { mode: 0o600 });
  }

  /** Runs a control-plane step; a failure carries the tail of kube-apiserver's log. */
  private async withLog(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const log = join(this.o.logDir, 'kube-apiserver.log');
      const tail = existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n').slice(-20).join('\n') : '(no log)';
      throw new Error(`${(err as Error).message}\n--- ${log} (tail) ---\n${tail}`, { cause: err });
    }
  }

  /** Stops kube-apiserver (etcd keeps running with the state). */
  async stop(): Promise<void> { await this.cp?.stopApiserver(); }

  running(): boolean { return this.cp?.apiserverRunning() ?? false; }

  pid(): number | undefined {
    return this.cp?.processes().find((p) => p.name.endsWith(' kube-apiserver') && p.alive())?.pid;
  }

  async destroy(): Promise<void> {
    if (this.cp) await Promise.all(this.cp.processes().map((p) => p.stop('SIGKILL', 2000)));
    rmSync(this.dir, { recursive: true, force: true });
    this.unhook?.();
    this.unhook = undefined;
  }

  /** Exit-hook path: synchronous (procs.ts SIGKILLs tracked processes too; this is belt and braces). */
  private destroySync(): void {
    for (const p of this.cp?.processes() ?? []) {
      if (p.alive()) { try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  agentArgs(): string[] {
    return ['--kube-subnet-mgr', '--kubeconfig-file', this.agentKubeconfig, '--net-config-path', this.netConfPath,
      '--kube-annotation-prefix', this.annotationPrefix];
  }

  agentEnv(node: NodeRef): Record<string, string> { return { NODE_NAME: node.name }; }

  async writeConfig(netConf: object): Promise<void> {
    this.netConf = netConf as typeof this.netConf;
    writeFileSync(this.netConfPath, JSON.stringify(netConf, null, 2));
  }

  podCIDRFor(index: number): string { return podCIDRFor(this.netConf, index); }

  /** The kubelet registers its Node (with its InternalIP); the controller-manager then assigns the podCIDR. */
  async prepareNode(node: NodeRef): Promise<void> {
    await this.createNode({
      apiVersion: 'v1', kind: 'Node',
      metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name, 'kubernetes.io/os': 'linux' } },
      status: { addresses: [{ type: 'InternalIP', address: node.underlayIP }, { type: 'Hostname', address: node.name }] },
    });
    if (this.o.autoAssignPodCIDRs !== false) await this.assignPodCIDR(node.name, this.podCIDRFor(node.index));
  }

  /** What kube-controller-manager's range allocator writes: spec.podCIDR and spec.podCIDRs (once, from empty). */
  async assignPodCIDR(name: string, cidr: string | string[]): Promise<void> {
    const cidrs = Array.isArray(cidr) ? cidr : [cidr];
    await this.controlPlane.kubectl(['patch', 'node', name, '--type', 'merge', '-p', JSON.stringify({ spec: { podCIDR: cidrs[0], podCIDRs: cidrs } })]);
  }

  private async createNode(node: object): Promise<void> {
    await this.controlPlane.kubectl(['create', '-f', '-'], { input: JSON.stringify(node) });
  }

  private async nodes(): Promise<NodeJson[]> {
    const r = await this.controlPlane.kubectl(['get', 'nodes', '-o', 'json']);
    return (JSON.parse(r.stdout) as { items: NodeJson[] }).items;
  }

  async leases(): Promise<StoredLease[]> { return leasesOfNodes(await this.nodes(), this.annotationPrefix); }

  /** A peer node as another twill agent leaves it: a Node with a podCIDR and our annotations. */
  async putLease(l: SyntheticLease): Promise<void> {
    const { name, annotations } = peerNode(l, this.annotationPrefix);
    await this.createNode({
      apiVersion: 'v1', kind: 'Node', metadata: { name, annotations },
      spec: { podCIDR: l.subnet, podCIDRs: [l.subnet] },
      status: { addresses: [{ type: 'InternalIP', address: l.publicIP }] },
    });
  }

  async deleteLease(subnet: string): Promise<void> {
    await this.controlPlane.kubectl(['delete', 'node', nodeWithPodCIDR(await this.nodes(), subnet).metadata.name]);
  }
}
