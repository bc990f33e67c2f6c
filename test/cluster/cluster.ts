// A real Kubernetes cluster in network namespaces, built from upstream's pinned binaries (see
// build.sh) and twill's own image and manifests:
//
//   switch netns (bridge br0, 10.213.0.1) ── cp      10.213.0.5   etcd, apiserver, controller-manager, scheduler,
//                                          │                       and a tainted node (containerd, kubelet, kube-proxy)
//                                          ├─ node0   10.213.0.10  containerd, kubelet, kube-proxy (+ twill pod)
//                                          ├─ node1   10.213.0.11  …
//                                          └─ ext     10.213.0.254 an "external" host, the nodes' default gateway
//
// Nodes register themselves, the controller-manager assigns their podCIDRs, and they stay
// NotReady until twill is installed the way a user does it: `kubectl apply -k` of an overlay
// whose only change is the image name. Everything is named with one unique prefix and removed by
// destroy(), or by the process-exit hook when a run is interrupted.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { uniquePrefix } from '../util/root.js';
import { run, waitFor, type ExecResult } from '../harness/exec.js';
import { onProcessExit } from '../harness/procs.js';
import { REPO_ROOT } from '../harness/paths.js';
import { createSwitch, deleteNetns, EXTERNAL_IP, nodeUnderlayIP, plugHost } from '../harness/underlay.js';
import { ControlPlane } from './controlplane.js';
import { KubeNode } from './node.js';
import { makePki } from './pki.js';

export const CLUSTER_CIDR = '10.244.0.0/16';
export const SERVICE_CIDR = '10.96.0.0/16';
export const API_SERVICE_IP = '10.96.0.1';
export const CLUSTER_DNS = '10.96.0.10';
export const CP_IP = '10.213.0.5';
export const TWILL_IMAGE = 'ghcr.io/twill-net/twill:test';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';
export const CONTROL_PLANE = 'control-plane';

export interface ImageArchive { archive: string; ref: string }

export interface KubeClusterOptions {
  workers: number;
  /** Upstream binaries (build.sh's output). */
  bin: string;
  /** OCI archives to import into every node (images.sh's output). */
  images: readonly ImageArchive[];
  /** Install twill (default true). */
  installTwill?: boolean;
  /** Deploy CoreDNS (default true). */
  dns?: boolean;
  logDir?: string;
  /** Called with progress lines. */
  log?: (line: string) => void;
}

/** Kernel tunables kubelet sets on start (host-wide): saved before, restored by destroy(). */
const KUBELET_SYSCTLS = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys', 'kernel/keys/root_maxbytes'];

export class KubeCluster {
  readonly prefix = uniquePrefix('tk');
  readonly options: KubeClusterOptions;
  readonly workDir: string;
  readonly pinDir: string;
  readonly logDir: string;
  readonly switchNetns: string;
  readonly cpNetns: string;
  readonly external = { netns: '', ip: EXTERNAL_IP };
  /** The control-plane node first, then the workers node0, node1, … */
  readonly nodes: KubeNode[] = [];
  cp!: ControlPlane;
  private readonly netnsCreated: string[] = [];
  private readonly savedSysctls = new Map<string, string>();
  private pinMounted = false;
  private unhook: () => void = () => undefined;
  private destroyed = false;

  constructor(opts: KubeClusterOptions) {
    this.options = opts;
    const tag = this.prefix.replace(/-$/, '');
    this.workDir = join('/var/lib/twill-test', tag);
    this.pinDir = join('/run', `twill-test-${tag}`);
    this.logDir = opts.logDir ?? join(REPO_ROOT, '.tmp', 'cluster', tag);
    this.switchNetns = `${this.prefix}sw`;
    this.cpNetns = `${this.prefix}cp`;
    this.external.netns = `${this.prefix}ext`;
  }

  private log(line: string): void { this.options.log?.(line); }

  /** The admin kubeconfig (use it from the control-plane netns, or through kubectlWrapper). */
  get kubeconfig(): string { return this.cp.adminKubeconfig; }
  /** A script that runs the pinned kubectl as the admin inside the control-plane netns. */
  get kubectlWrapper(): string { return join(this.workDir, 'kubectl'); }

  async start(): Promise<void> {
    this.unhook = onProcessExit(() => this.destroySync());
    mkdirSync(this.workDir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    mkdirSync(this.pinDir, { recursive: true });
    // Mount namespaces can only be pinned on a private mount.
    await run('mount', ['--bind', this.pinDir, this.pinDir]);
    this.pinMounted = true;
    await run('mount', ['--make-private', this.pinDir]);
    for (const s of KUBELET_SYSCTLS) this.savedSysctls.set(s, readFileSync(`/proc/sys/${s}`, 'utf8').trim());

    const t0 = Date.now();
    await this.underlay();
    const pki = await makePki(mkdirp(join(this.workDir, 'pki')));
    this.cp = new ControlPlane({
      netns: this.cpNetns, ip: CP_IP, bin: this.options.bin, dir: join(this.workDir, 'cp'), logDir: this.logDir, pki,
      clusterCidr: CLUSTER_CIDR, serviceCidr: SERVICE_CIDR, apiServiceIP: API_SERVICE_IP, nodeCidrMaskSize: 24,
    });
    mkdirSync(join(this.workDir, 'cp'), { recursive: true });
    writeFileSync(this.kubectlWrapper, `#!/bin/sh\nexec nsenter --net=/run/netns/${this.cpNetns} -- ${join(this.options.bin, 'kubectl')} --kubeconfig ${join(this.workDir, 'cp', 'admin.kubeconfig')} "$@"\n`, { mode: 0o755 });

    const node = (name: string, netns: string, ip: string, controlPlane: boolean): KubeNode => new KubeNode({
      name, netns, ip, id: `${this.prefix}${name}`, controlPlane,
      rootDir: join(this.workDir, name), pinDir: this.pinDir, logDir: this.logDir, bin: this.options.bin, pki,
      server: `https://${CP_IP}:6443`, clusterCidr: CLUSTER_CIDR, clusterDNS: CLUSTER_DNS, pauseImage: PAUSE_IMAGE,
    });
    // The control-plane host is a node too (tainted NoSchedule), as with kubeadm and kind: the API
    // server reaches pods and Services through the pod network (proxy, webhooks, port-forward).
    this.nodes.push(node(CONTROL_PLANE, this.cpNetns, CP_IP, true));
    for (let i = 0; i < this.options.workers; i++) this.nodes.push(node(`node${i}`, `${this.prefix}n${i}`, nodeUnderlayIP(i), false));
    await Promise.all([
      this.cp.startAll().then(() => this.log(`control plane up (${secs(t0)})`)),
      ...this.nodes.map(async (n) => {
        await n.setUp();
        await n.startContainerd();
        for (const img of this.options.images) await n.importImage(img.archive);
        this.log(`${n.name}: containerd up, ${this.options.images.length} images imported (${secs(t0)})`);
      }),
    ]);
    for (const n of this.nodes) { await n.startKubelet(); await n.startKubeProxy(); }
    await waitFor('every Node registered', async () => {
      const names = (await this.kubectl(['get', 'nodes', '-o', 'name'], true)).stdout.trim().split('\n').filter(Boolean);
      return names.length === this.nodes.length;
    }, 120_000, 500);
    await this.kubectl(['label', 'node', CONTROL_PLANE, 'node-role.kubernetes.io/control-plane=']);
    this.log(`${this.nodes.length} nodes registered (${secs(t0)})`);
    if (this.options.installTwill !== false) {
      await this.installTwill();
      this.log(`twill installed, nodes Ready (${secs(t0)})`);
    }
    if (this.options.dns !== false) {
      await this.kubectl(['apply', '-f', join(REPO_ROOT, 'test', 'cluster', 'coredns.yaml')]);
      await this.kubectl(['-n', 'kube-system', 'rollout', 'status', 'deploy/coredns', '--timeout=180s'], false, 200_000);
      this.log(`CoreDNS ready (${secs(t0)})`);
    }
  }

  private async underlay(): Promise<void> {
    const mtu = 1500;
    this.netnsCreated.push(this.switchNetns);
    await createSwitch(this.switchNetns, mtu);
    const hosts = [
      { netns: this.cpNetns, port: 'cp', ip: CP_IP },
      ...Array.from({ length: this.options.workers }, (_, i) => ({ netns: `${this.prefix}n${i}`, port: `n${i}`, ip: nodeUnderlayIP(i) })),
      { netns: this.external.netns, port: 'ext', ip: EXTERNAL_IP },
    ];
    this.netnsCreated.push(...hosts.map((h) => h.netns));
    await Promise.all(hosts.map((h) => plugHost(this.switchNetns, h.netns, h.port, h.ip, mtu)));
    // The external host is every node's default gateway: a default route is what the agent uses to
    // find its interface, and what a ClusterIP connection from the host needs before kube-proxy's
    // DNAT. It does not forward: "outside" ends there.
    for (const h of hosts) if (h.netns !== this.external.netns) await run('ip', ['-n', h.netns, 'route', 'add', 'default', 'via', EXTERNAL_IP]);
  }

  /** `kubectl apply -k` of an overlay of deploy/ that only renames the image; waits for Ready. */
  async installTwill(): Promise<void> {
    const overlay = join(this.workDir, 'overlay');
    mkdirSync(overlay, { recursive: true });
    const [name, tag] = TWILL_IMAGE.split(/:(?=[^:]+$)/);
    writeFileSync(join(overlay, 'kustomization.yaml'), [
      'apiVersion: kustomize.config.k8s.io/v1beta1', 'kind: Kustomization',
      'resources:', `  - ${relative(overlay, join(REPO_ROOT, 'deploy'))}`,
      'images:', '  - name: ghcr.io/twill-net/twill', `    newName: ${name}`, `    newTag: "${tag}"`, '',
    ].join('\n'));
    await this.kubectl(['apply', '-k', overlay]);
    await this.kubectl(['-n', 'kube-system', 'rollout', 'status', 'ds/twill', '--timeout=300s'], false, 320_000);
    await this.kubectl(['wait', '--for=condition=Ready', 'node', '--all', '--timeout=180s'], false, 200_000);
  }

  kubectl(args: readonly string[], allowFail = false, timeoutMs = 60_000, input?: string): Promise<ExecResult> {
    return this.cp.kubectl(args, { allowFail, timeoutMs, ...(input !== undefined ? { input } : {}) });
  }

  async kubectlJson<T>(args: readonly string[]): Promise<T> {
    return JSON.parse((await this.kubectl([...args, '-o', 'json'])).stdout) as T;
  }

  node(name: string): KubeNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all(this.nodes.map((n) => n.destroy().catch((e: Error) => this.log(`${n.name}: teardown: ${e.message}`))));
    await this.cp?.stop().catch(() => undefined);
    await Promise.all([...this.netnsCreated].reverse().map((ns) => deleteNetns(ns)));
    this.finish();
  }

  private finish(): void {
    if (this.pinMounted) { spawnSync('umount', ['-l', this.pinDir], { stdio: 'ignore' }); this.pinMounted = false; }
    rmSync(this.pinDir, { recursive: true, force: true });
    rmSync(this.workDir, { recursive: true, force: true });
    try { rmdirSync(dirname(this.workDir)); } catch { /* another cluster's, or gone */ }
    for (const [s, v] of this.savedSysctls) { try { writeFileSync(`/proc/sys/${s}`, v); } catch { /* best effort */ } }
    this.unhook();
  }

  private destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const n of this.nodes) n.destroySync();
    for (const ns of [...this.netnsCreated].reverse()) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    this.finish();
  }
}

function mkdirp(dir: string): string { mkdirSync(dir, { recursive: true }); return dir; }

function secs(t0: number): string { return `${((Date.now() - t0) / 1000).toFixed(1)} s`; }

/** Reads images.sh's output: lines "<archive> <ref>". */
export function parseImageList(text: string): ImageArchive[] {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).map((l) => {
    const [archive, ref, ...rest] = l.split(/\s+/);
    if (!archive || !ref || rest.length) throw new Error(`images list: line ${JSON.stringify(l)} is invalid: must be "<archive> <ref>"`);
    return { archive, ref };
  });
}
