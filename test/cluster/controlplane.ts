// The control plane, as kubeadm runs it, as processes in the control-plane node's netns: etcd
// (built from the pinned go.etcd.io/etcd; Debian's 3.4 lacks what a 1.34 apiserver needs),
// kube-apiserver (Node + RBAC authorization, NodeRestriction, service-account tokens),
// kube-controller-manager (it allocates each Node's podCIDR from --cluster-cidr, as on a
// kubeadm cluster with --pod-network-cidr) and kube-scheduler. Every identity has its own client
// certificate, so RBAC is checked for real.
import { join } from 'node:path';
import { run, waitFor } from '../harness/exec.js';
import type { Proc } from '../harness/procs.js';
import { startProc } from '../harness/procs.js';
import { writeKubeconfig, type Pki } from './pki.js';

export interface ControlPlaneSpec {
  netns: string;
  /** The control plane's underlay address (apiserver advertise address). */
  ip: string;
  bin: string;
  dir: string;
  logDir: string;
  pki: Pki;
  clusterCidr: string;
  serviceCidr: string;
  /** First address of serviceCidr (the `kubernetes` Service). */
  apiServiceIP: string;
  nodeCidrMaskSize: number;
  /** Start kube-controller-manager and kube-scheduler too (default true); false = etcd + apiserver only. */
  controllers?: boolean;
}

export const API_PORT = 6443;

export class ControlPlane {
  readonly spec: ControlPlaneSpec;
  readonly server: string;
  /** kubeconfig of the cluster admin (system:masters). */
  adminKubeconfig = '';
  private readonly procs: Proc[] = [];
  private readonly argsOf = new Map<string, readonly string[]>();

  constructor(spec: ControlPlaneSpec) {
    this.spec = spec;
    this.server = `https://${spec.ip}:${API_PORT}`;
  }

  private start(name: string, args: readonly string[]): Proc {
    this.argsOf.set(name, args);
    const p = startProc(`control-plane ${name}`, 'nsenter', [`--net=/run/netns/${this.spec.netns}`, '--', join(this.spec.bin, name), ...args],
      { logFile: join(this.spec.logDir, `${name}.log`) });
    this.procs.push(p);
    return p;
  }

  private async kubeconfig(name: string, cn: string, orgs: readonly string[] = []): Promise<string> {
    const pair = await this.spec.pki.client(name, cn, orgs);
    const path = join(this.spec.dir, `${name}.kubeconfig`);
    writeKubeconfig(path, this.server, this.spec.pki.caCert, cn, pair);
    return path;
  }

  async startAll(): Promise<void> {
    const { pki, ip, dir } = this.spec;
    const serving = await pki.serving('apiserver', 'kube-apiserver',
      ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', 'kubernetes.default.svc.cluster.local', 'localhost'],
      [ip, this.spec.apiServiceIP, '127.0.0.1']);
    const kubeletClient = await pki.client('apiserver-kubelet-client', 'kube-apiserver-kubelet-client', ['system:masters']);
    this.adminKubeconfig = await this.kubeconfig('admin', 'kubernetes-admin', ['system:masters']);
    const kcm = await this.kubeconfig('controller-manager', 'system:kube-controller-manager');
    const sched = await this.kubeconfig('scheduler', 'system:kube-scheduler');

    const etcd = this.start('etcd', [
      '--name', 'cp', '--data-dir', join(dir, 'etcd'),
      '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379',
      '--listen-peer-urls', 'http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380',
      '--initial-cluster', 'cp=http://127.0.0.1:2380', '--listen-metrics-urls', 'http://127.0.0.1:2381',
      '--unsafe-no-fsync', '--quota-backend-bytes', String(2 * 1024 ** 3), '--log-level', 'warn',
    ]);
    await waitFor('etcd health', async () => {
      if (!etcd.alive()) throw new Error('etcd exited');
      const r = await run('nsenter', [`--net=/run/netns/${this.spec.netns}`, '--', 'curl', '-sf', 'http://127.0.0.1:2381/health'], { allowFail: true });
      return r.code === 0 && r.stdout.includes('true');
    }, 30_000, 200);

    const api = this.start('kube-apiserver', [
      '--etcd-servers', 'http://127.0.0.1:2379',
      '--advertise-address', ip, '--bind-address', '0.0.0.0', '--secure-port', String(API_PORT),
      '--tls-cert-file', serving.cert, '--tls-private-key-file', serving.key,
      '--client-ca-file', pki.caCert,
      '--kubelet-client-certificate', kubeletClient.cert, '--kubelet-client-key', kubeletClient.key,
      '--kubelet-preferred-address-types', 'InternalIP',
      '--service-cluster-ip-range', this.spec.serviceCidr,
      '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file', pki.saPub, '--service-account-signing-key-file', pki.saKey,
      '--authorization-mode', 'Node,RBAC', '--enable-admission-plugins', 'NodeRestriction',
      '--allow-privileged=true', '--profiling=false', '--v=1',
    ]);
    await this.apiserverReady(api);

    if (this.spec.controllers === false) return;
    this.start('kube-controller-manager', [
      '--kubeconfig', kcm, '--authentication-kubeconfig', kcm, '--authorization-kubeconfig', kcm,
      '--bind-address', '127.0.0.1', '--leader-elect=false',
      '--allocate-node-cidrs=true', '--cluster-cidr', this.spec.clusterCidr,
      '--node-cidr-mask-size', String(this.spec.nodeCidrMaskSize),
      '--service-cluster-ip-range', this.spec.serviceCidr,
      '--configure-cloud-routes=false',
      '--service-account-private-key-file', pki.saKey, '--root-ca-file', pki.caCert,
      '--use-service-account-credentials=true',
      '--cluster-signing-cert-file', pki.caCert, '--cluster-signing-key-file', pki.caKey,
      '--controllers', '*,bootstrapsigner,tokencleaner', '--v=1',
    ]);
    this.start('kube-scheduler', [
      '--kubeconfig', sched, '--authentication-kubeconfig', sched, '--authorization-kubeconfig', sched,
      '--bind-address', '127.0.0.1', '--leader-elect=false', '--v=1',
    ]);
  }

  private async apiserverReady(api: Proc): Promise<void> {
    await waitFor('kube-apiserver /readyz', async () => {
      if (!api.alive()) throw new Error('kube-apiserver exited');
      const r = await this.kubectl(['get', '--raw', '/readyz'], { allowFail: true });
      return r.code === 0 && r.stdout.trim() === 'ok';
    }, 120_000, 500);
  }

  /** Stops kube-apiserver (an API outage; etcd keeps the state). */
  async stopApiserver(): Promise<void> {
    await Promise.all(this.procs.filter((p) => p.name.endsWith(' kube-apiserver') && p.alive()).map((p) => p.stop('SIGTERM', 5000)));
  }

  /** Starts kube-apiserver again with the same flags; resolves when it is ready. */
  async startApiserver(): Promise<void> {
    const args = this.argsOf.get('kube-apiserver');
    if (!args) throw new Error('kube-apiserver was never started');
    if (this.procs.some((p) => p.name.endsWith(' kube-apiserver') && p.alive())) return;
    await this.apiserverReady(this.start('kube-apiserver', args));
  }

  apiserverRunning(): boolean { return this.procs.some((p) => p.name.endsWith(' kube-apiserver') && p.alive()); }

  /** kubectl as the cluster admin, run in the control-plane netns. */
  kubectl(args: readonly string[], opts: { allowFail?: boolean; input?: string; timeoutMs?: number } = {}) {
    return run('nsenter', [`--net=/run/netns/${this.spec.netns}`, '--', join(this.spec.bin, 'kubectl'), '--kubeconfig', this.adminKubeconfig, ...args],
      { timeoutMs: opts.timeoutMs ?? 60_000, ...opts });
  }

  processes(): readonly Proc[] { return this.procs; }

  async stop(): Promise<void> {
    // Reverse start order; etcd last.
    for (const p of [...this.procs].reverse()) await p.stop('SIGTERM', 5000);
  }
}
