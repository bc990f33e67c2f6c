// A multi-node twill cluster in network namespaces, built from real pieces: a bridge "switch"
// netns (the underlay L2), N node netns each running its own `twilld`, a store (a real etcd, a
// real kube-apiserver in kube mode, the fake API server in kube-fake mode), an "external" host
// outside the pod network, and pods behind a provider seam (stand-ins now, the CNI plugin
// later). Everything it creates is named with one unique prefix and torn down by destroy() — or
// by the process-exit hook when a test crashes or the demo is interrupted.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentStatus } from '../../agent/state.js';
import { uniquePrefix } from '../util/root.js';
import { Agent, HEALTHZ_PORT } from './agent.js';
import { agentBuild } from './dist-snapshot.js';
import { nsRun, waitFor, type ExecOptions, type ExecResult } from './exec.js';
import { intToIp, parseCidr } from './ipv4.js';
import { kernelState, type KernelState } from './kernel.js';
import { podProvider, type Pod, type PodMode, type PodProvider } from './pods.js';
import { EchoServers, ping, startPingFlow, tcpConnect, type PingFlow, type PingOptions, type PingResult, type TcpProbeResult } from './probe.js';
import { onProcessExit } from './procs.js';
import { REPO_ROOT } from './paths.js';
import type { ClusterStore, NodeRef, StoreMode } from './store.js';
import { EtcdStore } from './store-etcd.js';
import { KubeStore } from './store-kube.js';
import { RealKubeStore } from './store-kube-real.js';
import { readSubnetEnv, type SubnetEnv } from './subnet-env.js';
import { createSwitch, deleteNetns, EXTERNAL_IP, MAX_NODES, nodeUnderlayIP, plugHost, SWITCH_IP } from './underlay.js';

/**
 * Nodes lease random subnets from 10.244.1.0–10.244.127.0 only (SubnetMax), so the synthetic
 * peer leases tests write (10.244.128.0 and up) can never land on a real node's key.
 */
export const DEFAULT_NET_CONF = { Network: '10.244.0.0/16', SubnetMax: '10.244.127.0', Backend: { Type: 'vxlan', VNI: 1 } };
export const DEFAULT_ETCD_PREFIX = '/twill.io/network';

export interface ClusterOptions {
  nodes: number;
  ipMasq?: boolean;
  /** How pods are made: 'standin' (iproute2) or 'cni' (the built plugin). Default 'standin'. */
  pods?: PodMode;
  /** Pods created on each node once it is ready (default 1; none when waitReady is false). */
  podsPerNode?: number;
  /** Where leases live. Default 'etcd'. */
  mode?: StoreMode;
  /** net-conf.json (default DEFAULT_NET_CONF). */
  netConf?: object;
  /** Extra twilld flags for every node. */
  agentArgs?: string[];
  /** Agent and etcd logs (kept after destroy). Default <repo>/.tmp/e2e/<prefix>. */
  logDir?: string;
  logLevel?: string;
  /** MTU of the underlay links (default 1500). */
  underlayMtu?: number;
  etcdPrefix?: string;
  /** kube modes: assign podCIDRs as nodes register (default true); false = the test does. */
  autoAssignPodCIDRs?: boolean;
  /** Start every agent (default true). */
  startAgents?: boolean;
  /** Wait until every agent is ready (default true). */
  waitReady?: boolean;
  readyTimeoutMs?: number;
}

export interface ClusterNode {
  readonly index: number;
  readonly name: string;          // "node0" (also NODE_NAME for the agent)
  readonly netns: string;
  readonly underlayIP: string;
  readonly subnetFile: string;
  readonly logFile: string;
  readonly agent: Agent;
  /** The node's subnet once known ("10.244.3.0/24"); refreshed by waitReady/refreshSubnets. */
  subnet: string | undefined;
}

export interface ExternalHost { netns: string; ip: string }

export interface Cluster {
  readonly prefix: string;
  readonly options: Readonly<ClusterOptions>;
  readonly workDir: string;
  readonly logDir: string;
  readonly switchNetns: string;
  readonly external: ExternalHost;
  readonly store: ClusterStore;
  readonly nodes: readonly ClusterNode[];
  readonly pods: readonly Pod[];
  readonly vni: number;
  readonly device: string;        // "twill.1"
  node(i: number): ClusterNode;
  waitReady(timeoutMs?: number, indices?: readonly number[]): Promise<void>;
  refreshSubnets(): Promise<void>;
  status(i: number): Promise<AgentStatus>;
  healthz(i: number): Promise<number>;
  readyz(i: number): Promise<number>;
  subnetEnv(i: number): Promise<SubnetEnv | undefined>;
  exec(netns: string, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult>;
  startAgent(i: number, extraArgs?: readonly string[]): Promise<void>;
  stopAgent(i: number, signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined>;
  killAgent(i: number): Promise<void>;
  stopEtcd(): Promise<void>;
  startEtcd(): Promise<void>;
  addPod(i: number): Promise<Pod>;
  removePod(pod: Pod): Promise<void>;
  ping(fromNetns: string, toIp: string, opts?: PingOptions): Promise<PingResult>;
  pingFlow(fromNetns: string, toIp: string, intervalSec?: number): Promise<PingFlow>;
  tcpProbe(fromNetns: string, toIp: string, opts?: { timeoutSec?: number }): Promise<TcpProbeResult>;
  kernelState(i: number): Promise<KernelState>;
  logTail(i: number, lines?: number): string;
  destroy(): Promise<void>;
}

export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > MAX_NODES) {
    throw new Error(`startCluster: nodes: ${opts.nodes} is invalid: must be 1..${MAX_NODES}`);
  }
  const c = new NetnsCluster(opts);
  try {
    await c.setUp();
    return c;
  } catch (err) {
    await c.destroy();
    throw err;
  }
}

class NetnsCluster implements Cluster {
  readonly prefix = uniquePrefix('tw');
  readonly options: Readonly<ClusterOptions>;
  readonly workDir: string;
  readonly logDir: string;
  readonly switchNetns: string;
  readonly external: ExternalHost;
  readonly store: ClusterStore;
  readonly nodes: ClusterNode[] = [];
  readonly pods: Pod[] = [];
  readonly vni: number;
  readonly device: string;
  private readonly provider: PodProvider;
  private readonly echo = new EchoServers();
  private readonly netnsCreated: string[] = [];
  private readonly flows = new Set<PingFlow>();
  private readonly podSeq = new Map<number, number>();
  private readonly unhook: () => void;
  private destroyed = false;

  constructor(opts: ClusterOptions) {
    this.options = { ...opts };
    const tag = this.prefix.replace(/-$/, '');
    this.workDir = join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `twill-e2e-${tag}`);
    this.logDir = opts.logDir ?? join(REPO_ROOT, '.tmp', 'e2e', tag);
    mkdirSync(this.workDir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    this.switchNetns = `${this.prefix}sw`;
    this.external = { netns: `${this.prefix}ext`, ip: EXTERNAL_IP };
    const netConf = (opts.netConf ?? DEFAULT_NET_CONF) as { Backend?: { VNI?: number } };
    this.vni = netConf.Backend?.VNI ?? 1;
    this.device = `twill.${this.vni}`;
    this.provider = podProvider(opts.pods ?? 'standin');
    this.store = this.makeStore(opts.mode ?? 'etcd');
    for (let i = 0; i < opts.nodes; i++) this.nodes.push(this.makeNode(i));
    this.unhook = onProcessExit(() => this.destroySync());
  }

  private makeStore(mode: StoreMode): ClusterStore {
    if (mode === 'kube') {
      return new RealKubeStore({
        netns: this.switchNetns, host: SWITCH_IP, workDir: this.workDir, logDir: this.logDir,
        autoAssignPodCIDRs: this.options.autoAssignPodCIDRs ?? true,
      });
    }
    if (mode === 'kube-fake') {
      return new KubeStore({
        netns: this.switchNetns, host: SWITCH_IP, workDir: this.workDir,
        autoAssignPodCIDRs: this.options.autoAssignPodCIDRs ?? true,
      });
    }
    return new EtcdStore({
      netns: this.switchNetns, host: SWITCH_IP, dataDir: join(this.workDir, 'etcd'),
      logFile: join(this.logDir, 'etcd.log'), prefix: this.options.etcdPrefix ?? DEFAULT_ETCD_PREFIX,
    });
  }

  private makeNode(i: number): ClusterNode {
    const name = `node${i}`;
    const netns = `${this.prefix}n${i}`;
    const underlayIP = nodeUnderlayIP(i);
    const subnetFile = join(this.workDir, name, 'subnet.env');
    mkdirSync(join(this.workDir, name), { recursive: true });
    const logFile = join(this.logDir, `${name}.log`);
    const ref: NodeRef = { index: i, name, underlayIP };
    const agent = new Agent({
      name, netns, logFile,
      args: () => [
        ...this.store.agentArgs(ref),
        '--iface', 'eth0', '--subnet-file', subnetFile,
        '--healthz-ip', '0.0.0.0', '--healthz-port', String(HEALTHZ_PORT),
        '--log-level', this.options.logLevel ?? 'debug',
        ...(this.options.ipMasq ? ['--ip-masq'] : []),
        ...(this.options.agentArgs ?? []),
      ],
      env: () => ({ NODE_NAME: name, ...this.store.agentEnv(ref) }),
    });
    return { index: i, name, netns, underlayIP, subnetFile, logFile, agent, subnet: undefined };
  }

  async setUp(): Promise<void> {
    const mtu = this.options.underlayMtu ?? 1500;
    this.netnsCreated.push(this.switchNetns);
    await createSwitch(this.switchNetns, mtu);
    const hosts = [
      ...this.nodes.map((n) => ({ netns: n.netns, port: `n${n.index}`, ip: n.underlayIP })),
      { netns: this.external.netns, port: 'ext', ip: this.external.ip },
    ];
    this.netnsCreated.push(...hosts.map((h) => h.netns));
    await Promise.all([
      ...hosts.map((h) => plugHost(this.switchNetns, h.netns, h.port, h.ip, mtu)),
      this.store.start(),
    ]);
    await this.store.writeConfig(this.options.netConf ?? DEFAULT_NET_CONF);
    for (const n of this.nodes) await this.store.prepareNode({ index: n.index, name: n.name, underlayIP: n.underlayIP });
    if (this.options.startAgents === false) return;
    const build = await agentBuild();
    for (const n of this.nodes) n.agent.start(build);
    if (this.options.waitReady === false) return;
    await this.waitReady(this.options.readyTimeoutMs);
    const perNode = this.options.podsPerNode ?? 1;
    await Promise.all(this.nodes.map(async (n) => {
      for (let k = 0; k < perNode; k++) await this.addPod(n.index);
    }));
  }

  node(i: number): ClusterNode {
    const n = this.nodes[i];
    if (!n) throw new Error(`no node ${i} (cluster has ${this.nodes.length})`);
    return n;
  }

  async waitReady(timeoutMs = 30_000 + 1000 * this.nodes.length, indices?: readonly number[]): Promise<void> {
    const which = (indices ?? this.nodes.map((n) => n.index)).map((i) => this.node(i));
    await Promise.all(which.map((n) => this.waitNodeReady(n, timeoutMs)));
    await this.refreshSubnets();
  }

  private async waitNodeReady(n: ClusterNode, timeoutMs: number): Promise<void> {
    try {
      await waitFor(`${n.name} /readyz 200`, async () => {
        if (!n.agent.running) throw new Error('agent is not running');
        return (await n.agent.readyz()) === 200;
      }, timeoutMs, 100);
    } catch (err) {
      const why = await n.agent.status().then((s) => `notReadyReasons: ${JSON.stringify(s.notReadyReasons)}`).catch((e: Error) => e.message);
      throw new Error(`${n.name} not ready: ${(err as Error).message}; ${why}\n--- ${n.logFile} (tail) ---\n${this.logTail(n.index, 30)}`, { cause: err });
    }
  }

  async refreshSubnets(): Promise<void> {
    await Promise.all(this.nodes.map(async (n) => {
      const env = await readSubnetEnv(n.subnetFile);
      const s = env?.FLANNEL_SUBNET;
      if (s) n.subnet = networkOf(s);
    }));
  }

  status(i: number): Promise<AgentStatus> { return this.node(i).agent.status(); }
  healthz(i: number): Promise<number> { return this.node(i).agent.healthz(); }
  readyz(i: number): Promise<number> { return this.node(i).agent.readyz(); }
  subnetEnv(i: number): Promise<SubnetEnv | undefined> { return readSubnetEnv(this.node(i).subnetFile); }

  exec(netns: string, cmd: string, args: readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    return nsRun(netns, cmd, args, opts);
  }

  async startAgent(i: number, extraArgs: readonly string[] = []): Promise<void> { this.node(i).agent.start(await agentBuild(), extraArgs); }
  stopAgent(i: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null } | undefined> {
    return this.node(i).agent.stop(signal);
  }
  async killAgent(i: number): Promise<void> { await this.node(i).agent.stop('SIGKILL'); }
  stopEtcd(): Promise<void> { return this.store.stop(); }
  startEtcd(): Promise<void> { return this.store.start(); }

  async addPod(i: number): Promise<Pod> {
    const n = this.node(i);
    const k = this.podSeq.get(i) ?? 0;      // never reused: names and stand-in addresses stay unique
    this.podSeq.set(i, k + 1);
    const netns = `${this.prefix}n${i}p${k}`;
    this.netnsCreated.push(netns);
    const pod = await this.provider.add({ index: i, netns: n.netns, subnetFile: n.subnetFile, stateDir: join(this.workDir, n.name) }, k, netns);
    this.pods.push(pod);
    this.pods.sort((a, b) => a.node - b.node || a.netns.localeCompare(b.netns));
    return pod;
  }

  async removePod(pod: Pod): Promise<void> {
    await this.provider.remove(pod);
    const at = this.pods.indexOf(pod);
    if (at >= 0) this.pods.splice(at, 1);
  }

  ping(fromNetns: string, toIp: string, opts?: PingOptions): Promise<PingResult> { return ping(fromNetns, toIp, opts); }

  async pingFlow(fromNetns: string, toIp: string, intervalSec = 0.01): Promise<PingFlow> {
    const flow = await startPingFlow(fromNetns, toIp, intervalSec);
    this.flows.add(flow);
    return { proc: flow.proc, stop: () => { this.flows.delete(flow); return flow.stop(); } };
  }

  async tcpProbe(fromNetns: string, toIp: string, opts: { timeoutSec?: number } = {}): Promise<TcpProbeResult> {
    const target = this.netnsOf(toIp);
    if (!target) throw new Error(`tcpProbe: no netns of this cluster owns ${toIp}`);
    await this.echo.ensure(target);
    return tcpConnect(fromNetns, toIp, opts.timeoutSec ?? 3);
  }

  private netnsOf(ip: string): string | undefined {
    if (ip === this.external.ip) return this.external.netns;
    return this.pods.find((p) => p.ip === ip)?.netns ?? this.nodes.find((n) => n.underlayIP === ip)?.netns;
  }

  kernelState(i: number): Promise<KernelState> { return kernelState(this.node(i).netns, this.device); }

  logTail(i: number, lines = 40): string {
    try {
      return readFileSync(this.node(i).logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([
      ...[...this.flows].map((f) => f.proc.stop('SIGKILL', 1000)),
      ...this.nodes.map((n) => n.agent.stop('SIGKILL', 2000)),
      this.echo.stopAll(),
      this.store.destroy().catch(() => undefined),
    ]);
    await Promise.all([...this.netnsCreated].reverse().map((ns) => deleteNetns(ns)));
    rmSync(this.workDir, { recursive: true, force: true });
    this.unhook();
  }

  /** Exit-hook path: synchronous, best effort (tracked processes are SIGKILLed by procs.ts). */
  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const pid = this.store.pid();
    if (pid !== undefined) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const ns of [...this.netnsCreated].reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** "10.244.3.1/24" → "10.244.3.0/24". */
function networkOf(cidrWithHost: string): string {
  const { base, len } = parseCidr(cidrWithHost);
  return `${intToIp(base)}/${len}`;
}
