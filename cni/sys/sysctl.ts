// Sysctls for the plugin, on sys/fs.ts instead of lib/netlink/netns.ts (which imports node:fs:
// ≈0.8 ms per invocation in the compiled executable). Same rule as netns.ts: /proc/sys/net/*
// resolves against the netns of the thread that OPENS the file, so only open(2) runs inside the
// target netns and the write happens after switching back.
import { invalid, TwillError } from '../../lib/errors.js';
import { inNetns, openNetns } from '../../lib/netlink/socket.js';
import { getLibc } from '../../lib/netlink/ffi.js';
import { O_CLOEXEC, O_WRONLY, pluginFs } from './fs.js';

/** Reads a sysctl of the plugin's netns; '' when it is absent or unreadable. */
export function readSysctl(path: string): string {
  try {
    return pluginFs().readFile(path);
  } catch {
    return '';
  }
}

/** Writes a sysctl, in the netns at `netnsPath` when given (else the plugin's own). */
export function writeSysctl(path: string, value: string, netnsPath?: string): void {
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
