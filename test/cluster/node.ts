// A Kubernetes worker on its NodeHost: containerd (Debian's 1.6, cgroupfs, its own root, state
// and socket at the default paths of the node's mount namespace), kubelet (KubeletConfiguration
// with cgroupfs and --cgroup-root, a client certificate as system:node:<name>) and kube-proxy
// (iptables mode: the default mode, and the one kind's conformance jobs run). The CNI directories
// start with only the reference plugins the conflist chains to (portmap) and loopback, which
// containerd 1.6 runs for every sandbox's lo: the node is NotReady until twill's installer puts
// its conflist there.
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from '../harness/exec.js';
import type { Proc } from '../harness/procs.js';
import { NodeHost } from './host.js';
import { writeKubeconfig, type Pki } from './pki.js';

export interface KubeNodeSpec {
  name: string;
  netns: string;
  ip: string;
  id: string;
  rootDir: string;
  pinDir: string;
  logDir: string;
  bin: string;
  pki: Pki;
  server: string;
  clusterCidr: string;
  clusterDNS: string;
  pauseImage: string;
  /** The control-plane node: registers with the control-plane NoSchedule taint. */
  controlPlane?: boolean;
}

/** Debian's containernetworking-plugins. */
const REFERENCE_PLUGINS = '/usr/lib/cni';
const CONTAINERD_SOCK = '/run/containerd/containerd.sock';

export class KubeNode {
  readonly spec: KubeNodeSpec;
  readonly host: NodeHost;
  private containerd: Proc | undefined;
  private kubelet: Proc | undefined;
  private kubeProxy: Proc | undefined;
  private readonly confDir: string;

  constructor(spec: KubeNodeSpec) {
    this.spec = spec;
    this.host = new NodeHost({ id: spec.id, hostname: spec.name, netns: spec.netns, rootDir: spec.rootDir, pinDir: spec.pinDir });
    this.confDir = join(spec.rootDir, 'conf');
  }

  get name(): string { return this.spec.name; }

  async setUp(): Promise<void> {
    await this.host.setUp();
    const bin = join(this.spec.rootDir, 'opt/cni/bin');
    for (const p of ['loopback', 'portmap', 'host-local']) copyFileSync(join(REFERENCE_PLUGINS, p), join(bin, p));
    await this.host.exec('mkdir', ['-p', this.confDir]);
    // Per-netns knobs a kubeadm node has: forwarding, and bridged traffic through iptables so a
    // Service reply between two pods on one bridge is un-NATed (kube-proxy relies on it).
    await this.host.sh('sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1');
  }

  async startContainerd(): Promise<void> {
    const cfg = join(this.confDir, 'containerd.toml');
    writeFileSync(cfg, containerdConfig(this.spec.pauseImage));
    this.containerd = this.host.start('containerd', 'containerd', ['--config', cfg], join(this.spec.logDir, `${this.name}-containerd.log`));
    await waitFor(`${this.name} containerd`, async () => {
      if (!this.containerd?.alive()) throw new Error('containerd exited');
      return (await this.ctr(['version'], true)).code === 0;
    }, 30_000, 200);
  }

  ctr(args: readonly string[], allowFail = false) {
    return this.host.exec('ctr', ['--address', CONTAINERD_SOCK, '-n', 'k8s.io', ...args], { allowFail, timeoutMs: 300_000 });
  }

  async importImage(archive: string): Promise<void> {
    await this.ctr(['images', 'import', '--no-unpack=false', archive]);
  }

  async startKubelet(): Promise<void> {
    const { pki, name, ip } = this.spec;
    const pair = await pki.client(`kubelet-${name}`, `system:node:${name}`, ['system:nodes']);
    const kubeconfig = join(this.confDir, 'kubelet.kubeconfig');
    writeKubeconfig(kubeconfig, this.spec.server, pki.caCert, `system:node:${name}`, pair);
    const config = join(this.confDir, 'kubelet.yaml');
    writeFileSync(config, kubeletConfig(this.host.cgroupRoot, pki.caCert, ip, this.spec.clusterDNS, this.spec.controlPlane === true));
    this.kubelet = this.host.start('kubelet', join(this.spec.bin, 'kubelet'), [
      '--config', config, '--kubeconfig', kubeconfig, '--node-ip', ip, '--hostname-override', name, '--v=1',
    ], join(this.spec.logDir, `${name}-kubelet.log`));
  }

  async startKubeProxy(): Promise<void> {
    const { pki, name } = this.spec;
    const pair = await pki.client(`kube-proxy-${name}`, 'system:kube-proxy');
    const kubeconfig = join(this.confDir, 'kube-proxy.kubeconfig');
    writeKubeconfig(kubeconfig, this.spec.server, pki.caCert, 'system:kube-proxy', pair);
    const config = join(this.confDir, 'kube-proxy.yaml');
    writeFileSync(config, kubeProxyConfig(kubeconfig, name, this.spec.clusterCidr));
    this.kubeProxy = this.host.start('kube-proxy', join(this.spec.bin, 'kube-proxy'), ['--config', config, '--v=1'],
      join(this.spec.logDir, `${name}-kube-proxy.log`));
  }

  /** Stops kubelet (SIGTERM), as when a node is taken out of service. */
  async stopKubelet(): Promise<void> { await this.kubelet?.stop('SIGTERM', 10_000); }

  daemons(): Proc[] { return [this.containerd, this.kubelet, this.kubeProxy].filter((p): p is Proc => p !== undefined); }

  /** kubelet's own health endpoint (inside the node). */
  async kubeletHealthy(): Promise<boolean> {
    const r = await this.host.exec('curl', ['-sf', 'http://127.0.0.1:10248/healthz'], { allowFail: true });
    return r.code === 0;
  }

  hasConflist(): boolean { return existsSync(join(this.spec.rootDir, 'etc/cni/net.d', '10-twill.conflist')); }

  destroy(): Promise<void> { return this.host.destroy(); }
  destroySync(): void { this.host.destroySync(); }
}

function containerdConfig(pauseImage: string): string {
  return `version = 2
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${CONTAINERD_SOCK}"
[ttrpc]
  address = "${CONTAINERD_SOCK}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${pauseImage}"
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # Root here lacks CAP_SYS_RESOURCE (the sandbox's bounding set), so no process may lower its
  # oom_score_adj below 0: clamp kubelet's and the sandbox's negative scores instead of failing.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
`;
}

function kubeletConfig(cgroupRoot: string, caCert: string, ip: string, clusterDNS: string, controlPlane: boolean): string {
  const taints = controlPlane ? 'registerWithTaints:\n  - { key: node-role.kubernetes.io/control-plane, effect: NoSchedule }\n' : '';
  return `${taints}apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://${CONTAINERD_SOCK}
cgroupDriver: cgroupfs
cgroupRoot: ${cgroupRoot}
cgroupsPerQOS: true
address: ${ip}
healthzBindAddress: 127.0.0.1
healthzPort: 10248
readOnlyPort: 0
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: ${caCert} }
authorization:
  mode: Webhook
clusterDomain: cluster.local
clusterDNS: [${clusterDNS}]
resolvConf: /etc/resolv.conf
failSwapOn: false
protectKernelDefaults: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
rotateCertificates: false
serverTLSBootstrap: false
`;
}

function kubeProxyConfig(kubeconfig: string, name: string, clusterCidr: string): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${kubeconfig}
mode: iptables
hostnameOverride: ${name}
clusterCIDR: ${clusterCidr}
bindAddress: 0.0.0.0
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`;
}
