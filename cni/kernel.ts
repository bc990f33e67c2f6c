// The real PluginDeps: netlink handles from lib/netlink (one socket each, bound to the host or
// the pod netns), netns fds for veth peer placement, sysctls, and libc flock for the store lock.
// Loaded only for commands that touch the kernel. Nothing here imports node:fs (≈0.8 ms per call
// in the compiled executable, see runtime/fs.ts), hence sysctls here, not lib/netlink/netns.ts.
import { invalid, TwillError } from '../lib/errors.js';
import { openHandle } from '../lib/netlink/handle.js';
import { inNetns, openNetns } from '../lib/netlink/socket.js';
import { getLibc } from '../lib/netlink/ffi.js';
import { O_CLOEXEC, O_WRONLY, pluginFs } from './runtime/fs.js';
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

/** Reads a sysctl of the plugin's netns; '' when it is absent or unreadable. */
function readSysctl(path: string): string {
  try {
    return pluginFs().readFile(path);
  } catch {
    return '';
  }
}

/**
 * Writes a sysctl, in the netns at `netnsPath` when given (else the plugin's own). As in
 * lib/netlink/netns.ts, /proc/sys/net/* resolves against the netns of the thread that OPENS the
 * file, so only open(2) runs inside the target netns and the write happens after switching back.
 */
function writeSysctl(path: string, value: string, netnsPath?: string): void {
  if (!path.startsWith('/proc/sys/') || path.includes('/../')) {
    throw invalid('path', path, 'must be an absolute path under /proc/sys/', 'NETNS');
  }
  const fs = pluginFs();
  const open = () => fs.open(path, O_WRONLY | O_CLOEXEC);
  let fd: number;
  try {
    if (netnsPath === undefined) fd = open();
    else {
      const ns = openNetns(netnsPath);
      try { fd = inNetns(ns, open); } finally { getLibc().close(ns); }
    }
  } catch (err) {
    if (err instanceof TwillError) throw err;
    const e = err as { code?: string; errno?: number };
    throw new TwillError('NETNS', `open ${path}${netnsPath ? ` in ${netnsPath}` : ''}: ${e.code ?? String(err)}`, { cause: err, ...(e.errno === undefined ? {} : { errno: Math.abs(e.errno) }) });
  }
  try {
    fs.write(fd, value.endsWith('\n') ? value : `${value}\n`);
  } catch (err) {
    throw new TwillError('NETNS', `write ${JSON.stringify(value)} to ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    fs.close(fd);
  }
}
