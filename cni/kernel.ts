// The real PluginDeps: netlink handles from lib/netlink (one socket each, bound to the host or
// the pod netns), netns fds for veth peer placement, sysctls, and libc flock for the store lock.
// Loaded by main.ts only for commands that touch the kernel. Nothing here imports node:fs
// (see sys/fs.ts): netns fds and sysctls go through libc and sys/sysctl.ts.
import { openHandle } from '../lib/netlink/handle.js';
import { openNetns } from '../lib/netlink/socket.js';
import { getLibc } from '../lib/netlink/ffi.js';
import { readSysctl, writeSysctl } from './sys/sysctl.js';
import type { PluginDeps } from './deps.js';
import type { FlockFn } from './ipam/lock.js';

export function kernelDeps(env: Readonly<Record<string, string | undefined>>): PluginDeps {
  return {
    hostHandle: async () => openHandle(),
    podHandle: async (path) => openHandle({ netnsPath: path }),
    openNetnsFd: openNetns,
    closeFd: (fd) => { if (fd >= 0) getLibc().close(fd); },
    readSysctl,
    writeSysctl,
    flock: libcFlock(),
    lockBlocking: true,
    ...testHooks(env),
  };
}

export function libcFlock(): FlockFn {
  const c = getLibc();
  return (fd, op) => (c.flock(fd, op) === 0 ? 0 : c.errno());
}

/** TWILL_CNI_FAIL_AT / TWILL_CNI_PAUSE_AT: fault injection for tests only (docs/cni.md). */
function testHooks(env: Readonly<Record<string, string | undefined>>): Pick<PluginDeps, 'failAt' | 'pauseAt'> {
  const out: Pick<PluginDeps, 'failAt' | 'pauseAt'> = {};
  if (env['TWILL_CNI_FAIL_AT']) out.failAt = env['TWILL_CNI_FAIL_AT'];
  if (env['TWILL_CNI_PAUSE_AT']) out.pauseAt = env['TWILL_CNI_PAUSE_AT'];
  return out;
}
