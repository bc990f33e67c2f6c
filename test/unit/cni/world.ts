// An in-memory "node" for driving the plugin's in-process entry (runCni) without root: the host
// and every pod netns are MemoryKernels, netns fds map onto them, and flock is emulated with
// flock's semantics (one holder per lock file, per open file description). The real libc flock
// and the real kernel are exercised through the built executable in test/integration/cni/.
import { mkdtempSync, readlinkSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryKernel } from '../../../lib/netlink/memory.js';
import type { NetlinkHandle } from '../../../lib/netlink/types.js';
import type { PluginDeps } from '../../../cni/deps.js';
import type { FlockFn } from '../../../cni/ipam/lock.js';

export const SUBNET_ENV = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

export class World {
  readonly dir: string;
  readonly host = new MemoryKernel({ netns: 'host' });
  readonly pods = new Map<string, MemoryKernel>();
  readonly sysctls = new Map<string, string>();
  private nextFd = 10_000;
  private readonly lockHolders = new Map<string, number>();
  failAt: string | undefined;

  constructor(subnetEnv = SUBNET_ENV) {
    this.dir = mkdtempSync(join(tmpdir(), 'twill-cni-unit-'));
    mkdirSync(this.dataDir);
    writeFileSync(this.subnetFile, subnetEnv);
  }

  get subnetFile(): string { return join(this.dir, 'subnet.env'); }
  get dataDir(): string { return join(this.dir, 'data'); }

  conf(extra: Record<string, unknown> = {}): Record<string, unknown> {
    return { cniVersion: '1.1.0', name: 'cbr0', type: 'twill', subnetFile: this.subnetFile, dataDir: this.dataDir, ...extra };
  }

  addNetns(path: string): MemoryKernel {
    const k = new MemoryKernel({ netns: path });
    this.pods.set(path, k);
    return k;
  }

  deps(): PluginDeps {
    const d: PluginDeps = {
      hostHandle: async () => unclosable(this.host),
      podHandle: async (path) => {
        const k = this.pods.get(path);
        if (!k) throw Object.assign(new Error(`open netns ${path}: ENOENT`), { errno: 2 });
        return unclosable(k);
      },
      openNetnsFd: (path) => {
        const k = this.pods.get(path);
        if (!k) throw Object.assign(new Error(`open netns ${path}: ENOENT`), { code: 'ENOENT' });
        const fd = this.nextFd++;
        this.host.bindNetnsFd(fd, k);
        return fd;
      },
      closeFd: () => undefined,
      readSysctl: (p) => this.sysctls.get(p) ?? '',
      writeSysctl: (p, v, ns) => { this.sysctls.set(ns ? `${ns}:${p}` : p, v); },
      flock: this.flock,
      lockBlocking: false,
    };
    if (this.failAt) d.failAt = this.failAt;
    return d;
  }

  /** flock(2) semantics keyed by the file the fd refers to. */
  readonly flock: FlockFn = (fd, op) => {
    const path = readlinkSync(`/proc/self/fd/${fd}`);
    const holder = this.lockHolders.get(path);
    if (op & 8) { if (holder === fd) this.lockHolders.delete(path); return 0; }
    if (holder === undefined || holder === fd) { this.lockHolders.set(path, fd); return 0; }
    return 11; // EWOULDBLOCK (callers poll with LOCK_NB in-process)
  };

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The plugin closes its handles; the shared memory kernels must survive that. */
function unclosable(k: MemoryKernel): NetlinkHandle {
  return new Proxy(k, { get: (t, p) => (p === 'close' ? () => undefined : Reflect.get(t, p, t)) }) as NetlinkHandle;
}

export function env(command: string, extra: Record<string, string> = {}): Record<string, string> {
  return { CNI_COMMAND: command, CNI_CONTAINERID: 'ctr1', CNI_NETNS: '/run/netns/p1', CNI_IFNAME: 'eth0', CNI_PATH: '/opt/cni/bin', ...extra };
}
