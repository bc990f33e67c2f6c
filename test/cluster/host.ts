// One Kubernetes node on a shared host, the way kind makes one in a container, but with only the
// namespaces a node needs:
//   - its own network namespace (the underlay uplink eth0, and everything the CNI and the agent
//     program: cni0, twill.<VNI>, routes, nftables/iptables);
//   - its own mount namespace, pinned to a file, in which the directories every node has at a
//     fixed path are bind mounts of this node's own: /etc/cni/net.d, /opt/cni/bin, /run/twill,
//     /var/lib/cni, /var/lib/kubelet, /var/log/pods, /var/log/containers, /run/containerd,
//     /var/lib/containerd. So the DaemonSet's hostPath volumes, kubelet and containerd use their
//     default paths and still never see another node's files. Kubelet's tmpfs volumes,
//     containerd's rootfs overlays and pod netns mounts all live in this namespace: when the
//     node is torn down, they vanish with it, leaving nothing mounted on the host.
//   - its own UTS namespace, pinned the same way, with the node's name as hostname: hostNetwork
//     pods share it, so they report their node's name, as on a real node (e2e tests check it);
//   - its own cgroup subtree (/<prefix><node> in every v1 hierarchy): kubelet's --cgroup-root,
//     with our daemons in <root>/system. Tearing down freezes and kills the whole subtree, so no
//     shim or container process can outlive the node.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../harness/exec.js';
import { startProc, type Proc } from '../harness/procs.js';

/** Directories every node has at a fixed host path; each node gets its own copy. */
export const NODE_DIRS = [
  '/etc/cni/net.d', '/opt/cni/bin', '/run/twill', '/var/lib/cni', '/var/lib/kubelet',
  '/var/log/pods', '/var/log/containers', '/run/containerd', '/var/lib/containerd',
] as const;

const CGROUP_FS = '/sys/fs/cgroup';

/**
 * The cgroup hierarchies mounted on this host, as paths: the v1 ones (cpu, memory, …,
 * name=systemd) and, on a hybrid host, the v2 one at /sys/fs/cgroup/unified, where runc makes a
 * directory for every container too.
 */
export function cgroupHierarchies(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!pre || !post || !/^cgroup2? /.test(post)) continue;
    const mountPoint = pre.split(' ')[4];
    if (mountPoint?.startsWith(CGROUP_FS + '/')) out.push(mountPoint);
  }
  return [...new Set(out)].sort();
}

export interface HostSpec {
  /** Unique name used for the cgroup subtree and the pin files (e.g. "tk1a2b-node0"). */
  readonly id: string;
  /** The node's hostname (in its own UTS namespace). */
  readonly hostname: string;
  /** The network namespace (already created, `ip netns` name). */
  readonly netns: string;
  /** Where this node's private copies of NODE_DIRS live. */
  readonly rootDir: string;
  /** A directory on a private mount where the mount namespace is pinned. */
  readonly pinDir: string;
}

export class NodeHost {
  readonly spec: HostSpec;
  readonly mntPin: string;
  readonly utsPin: string;
  readonly cgroupRoot: string;
  private readonly hierarchies = cgroupHierarchies();
  private readonly procs: Proc[] = [];
  private createdMountPoints: string[] = [];
  private pinned = false;

  constructor(spec: HostSpec) {
    this.spec = spec;
    this.mntPin = join(spec.pinDir, `${spec.id}.mnt`);
    this.utsPin = join(spec.pinDir, `${spec.id}.uts`);
    this.cgroupRoot = `/${spec.id}`;
  }

  get netnsPath(): string { return `/run/netns/${this.spec.netns}`; }

  async setUp(): Promise<void> {
    this.makeCgroups();
    for (const d of NODE_DIRS) {
      mkdirSync(join(this.spec.rootDir, d), { recursive: true });
      if (!existsSync(d)) { mkdirSync(d, { recursive: true }); this.createdMountPoints.push(d); }
    }
    writeFileSync(this.mntPin, '');
    writeFileSync(this.utsPin, '');
    this.pinned = true;
    await run('unshare', [`--mount=${this.mntPin}`, '--propagation', 'slave', `--uts=${this.utsPin}`, 'hostname', this.spec.hostname]);
    const binds = NODE_DIRS.map((d) => `mount --bind '${join(this.spec.rootDir, d)}' '${d}'`).join(' && ');
    // rshared inside (still a slave of the host): kubelet's and containerd's mounts propagate to
    // each other's views, as on a real host whose / is shared.
    await this.sh(`mount --make-rshared / && ${binds}`);
  }

  /** nsenter's flags for this node's namespaces. */
  private get enter(): string[] { return [`--mount=${this.mntPin}`, `--uts=${this.utsPin}`, `--net=${this.netnsPath}`]; }

  /** Runs a shell command inside the node (mount, UTS and network namespaces). */
  sh(script: string, timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
    return run('nsenter', [...this.enter, '--', 'sh', '-c', script], { timeoutMs });
  }

  /** Runs a command inside the node's namespaces. */
  exec(cmd: string, args: readonly string[], opts: { timeoutMs?: number; allowFail?: boolean; input?: string; env?: NodeJS.ProcessEnv } = {}) {
    return run('nsenter', [...this.enter, '--', cmd, ...args], opts);
  }

  /**
   * Starts a long-running daemon inside the node: in <cgroupRoot>/system of every hierarchy,
   * then nsenter into the node's namespaces (nsenter execs: the tracked PID is the daemon).
   */
  start(name: string, cmd: string, args: readonly string[], logFile: string, env?: NodeJS.ProcessEnv): Proc {
    const procsFiles = this.hierarchies.map((h) => join(h, this.cgroupRoot, 'system', 'cgroup.procs'));
    const script = `for f in ${procsFiles.map((f) => `'${f}'`).join(' ')}; do echo $$ > "$f"; done; exec nsenter ${this.enter.map((a) => `'${a}'`).join(' ')} -- "$@"`;
    const p = startProc(`${this.spec.id} ${name}`, 'sh', ['-c', script, 'sh', cmd, ...args], { logFile, env: env ?? process.env });
    this.procs.push(p);
    return p;
  }

  private makeCgroups(): void {
    for (const h of this.hierarchies) {
      for (const rel of [this.cgroupRoot, join(this.cgroupRoot, 'system')]) {
        const dir = join(h, rel);
        mkdirSync(dir, { recursive: true });
        if (h.endsWith('/cpuset')) {
          // A v1 cpuset cgroup takes no task until its cpus and mems are set: copy the parent's.
          const parent = join(dir, '..');
          for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(parent, f), 'utf8').trim() || '0');
        }
      }
    }
  }

  /** Every PID in this node's cgroup subtree (one hierarchy is enough: all are joined). */
  pids(): number[] {
    const h = this.hierarchies.find((x) => x.endsWith('/pids') || x.endsWith('/memory')) ?? this.hierarchies[0];
    if (!h) return [];
    const out: number[] = [];
    for (const dir of cgroupDirs(join(h, this.cgroupRoot))) {
      try {
        for (const l of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l) out.push(Number(l));
      } catch { /* gone */ }
    }
    return out;
  }

  /**
   * Freezes the subtree, SIGKILLs every process in it, thaws, and waits (up to 5 s) until it is
   * empty. Synchronous, so the process-exit path (Ctrl-C) tears a node down as fully as destroy().
   */
  killAll(): void {
    const freezer = this.hierarchies.find((h) => h.endsWith('/freezer'));
    const state = freezer ? join(freezer, this.cgroupRoot, 'freezer.state') : undefined;
    const setState = (v: string): void => { if (state && existsSync(state)) { try { writeFileSync(state, v); } catch { /* best effort */ } } };
    for (let round = 0; round < 50; round++) {
      if (this.pids().length === 0) return;
      setState('FROZEN');
      for (const pid of this.pids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      setState('THAWED');
      sleepSync(100);
    }
    throw new Error(`${this.spec.id}: processes left in ${this.cgroupRoot}: ${this.pids().join(' ')}`);
  }

  /** Kills everything, drops the namespaces, removes cgroups, mount points and files. */
  async destroy(): Promise<void> {
    this.destroySync();
    await Promise.all(this.procs.map((p) => p.exited));
  }

  /** The same, synchronously (also the process-exit path). */
  destroySync(): void {
    try { this.killAll(); } catch { /* what is left is named by removeCgroups failing; go on */ }
    this.dropNamespace();
    this.removeCgroups();
    for (const d of this.createdMountPoints.reverse()) { try { rmdirSync(d); } catch { /* not empty or gone */ } }
    this.createdMountPoints = [];
    rmSync(this.spec.rootDir, { recursive: true, force: true });
  }

  private dropNamespace(): void {
    if (!this.pinned) return;
    // Unmounting a pin releases its namespace once no process is left in it; mounts go with it.
    for (const pin of [this.mntPin, this.utsPin]) {
      unmount(pin);
      rmSync(pin, { force: true });
    }
    this.pinned = false;
  }

  private removeCgroups(): void {
    for (const h of this.hierarchies) {
      for (const d of cgroupDirs(join(h, this.cgroupRoot))) { try { rmdirSync(d); } catch { /* busy or gone */ } }
    }
  }
}

/** A cgroup directory and every one below it, deepest first (the order rmdir needs). */
function cgroupDirs(dir: string): string[] {
  let entries: string[];
  try { entries = readdirSync(dir); } catch { return []; }
  const below = entries.flatMap((e) => {
    const p = join(dir, e);
    try { return statSync(p).isDirectory() ? cgroupDirs(p) : []; } catch { return []; }
  });
  return [...below, dir];
}

function sleepSync(ms: number): void { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms); }

function unmount(path: string): void {
  const r = spawnSync('umount', [path], { stdio: 'ignore' });
  if (r.status !== 0) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
}
