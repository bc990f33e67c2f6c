// Network-namespace helpers for the CNI plugin and tests. Namespace-bound operations, never "move
// the process into a netns and hope" (docs/design.md, rule 5): every switch is synchronous, scoped to one
// callback on the calling thread, and always switched back.
//
// Sysctls: /proc/sys/net/* resolves against the netns of the thread that OPENS the file, and the
// open file keeps referring to that namespace. So writeSysctl enters the netns only for open(2)
// and does the write after switching back (verified by test/integration/netlink/netns.test.ts).
import { closeSync, readSync, writeSync } from 'node:fs';
import { invalid, TwillError } from '../errors.js';
import { getLibc } from './ffi.js';
import { inNetns, O_CLOEXEC, O_RDONLY, openNetns } from './socket.js';
import { errnoCode } from './wire.js';

const O_WRONLY = 1;

/** Opens a netns file for IFLA_NET_NS_FD / veth peer placement. The caller closes it (closeFd). */
export function openNetnsFd(path: string): number {
  return openNetns(path);
}

export function closeFd(fd: number): void {
  if (fd >= 0) getLibc().close(fd);
}

/** Runs synchronous `fn` on this thread inside the netns at `path`, then switches back. */
export function withNetnsSync<T>(path: string, fn: () => T): T {
  const ns = openNetns(path);
  try {
    return inNetns(ns, fn);
  } finally {
    closeFd(ns);
  }
}

function sysctlFd(path: string, flags: number, netnsPath?: string): number {
  if (!path.startsWith('/proc/sys/') || path.includes('/../')) {
    throw invalid('path', path, 'must be an absolute path under /proc/sys/', 'NETNS');
  }
  const c = getLibc();
  const open = () => c.open(path, flags | O_CLOEXEC);
  const fd = netnsPath === undefined ? open() : withNetnsSync(netnsPath, open);
  if (fd < 0) {
    const errno = c.errno();
    throw new TwillError('NETNS', `open ${path}${netnsPath ? ` in ${netnsPath}` : ''}: ${errnoCode(errno)}`, { errno });
  }
  return fd;
}

/** Writes a sysctl, e.g. writeSysctl('/proc/sys/net/ipv4/ip_forward', '1', '/var/run/netns/x'). */
export function writeSysctl(path: string, value: string, netnsPath?: string): void {
  const fd = sysctlFd(path, O_WRONLY, netnsPath);
  try {
    writeSync(fd, value.endsWith('\n') ? value : `${value}\n`);
  } catch (err) {
    throw new TwillError('NETNS', `write ${JSON.stringify(value)} to ${path}: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(fd);
  }
}

/** Reads a sysctl (trimmed). */
export function readSysctl(path: string, netnsPath?: string): string {
  const fd = sysctlFd(path, O_RDONLY, netnsPath);
  try {
    const buf = Buffer.alloc(4096);
    const n = readSync(fd, buf, 0, buf.length, null);
    return buf.toString('utf8', 0, n).trim();
  } finally {
    closeSync(fd);
  }
}
