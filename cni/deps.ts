// What the commands need from the outside world, injected: the real implementation (netlink
// handles bound to a netns, netns fds, libc flock) is loaded lazily by plugin.ts only for the
// commands that touch the kernel; unit tests pass an in-memory kernel and a tmp data dir.
import type { NetlinkHandle } from '../lib/netlink/types.js';
import type { FlockFn } from './ipam/lock.js';

export interface PluginDeps {
  /** A handle bound to the netns the plugin runs in (the node's). */
  hostHandle(): Promise<NetlinkHandle>;
  /** A handle bound to the netns at `path`. Throws (errno ENOENT) when it does not exist. */
  podHandle(path: string): Promise<NetlinkHandle>;
  /** An fd for the netns at `path` (to create the veth peer inside it). */
  openNetnsFd(path: string): number;
  closeFd(fd: number): void;
  /** Reads a sysctl of the host netns ('' when absent). */
  readSysctl(path: string): string;
  /** Writes a sysctl (host netns when netnsPath is undefined). */
  writeSysctl(path: string, value: string, netnsPath?: string): void;
  flock: FlockFn;
  /** Block in flock (one plugin per process) instead of polling. */
  lockBlocking: boolean;
  /** Test-only fault injection: throw right after this step (see docs/cni.md). */
  failAt?: string;
  /** Test-only: stop right after this step until killed (kill-mid-ADD tests). */
  pauseAt?: string;
}

export type Step = 'ipam' | 'bridge' | 'veth' | 'pod' | 'sysctl' | 'result';
