// The store lock: flock(2) on <dir>/lock, exactly what host-local takes (go-filemutex), so twill
// and host-local exclude each other on a node in migration. flock rather than an O_EXCL lock
// file with a pid inside: the kernel drops the lock when its holder dies (a plugin killed
// mid-ADD never wedges the node, no pid-reuse guesswork), and it costs two syscalls.
// Node has no flock, so it comes from libc through the FFI layer (lib/netlink/ffi.ts), which
// the plugin loads anyway for netlink.
//
// Waiting: the CLI takes the lock blocking (the kernel wakes the next waiter at once; the process
// has nothing else to do). In-process callers (tests, fuzz) poll with LOCK_NB so concurrent
// callers in one process cannot deadlock each other on one thread.
import { O_CLOEXEC, O_CREAT, O_RDONLY, pluginFs } from '../runtime/fs.js';
import { CniError, CNI_ERR } from '../skel/errors.js';
import { systemClock, type Clock } from '../../lib/retry.js';

export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;
const EWOULDBLOCK = 11;
const EINTR = 4;

/** flock(2): 0 on success, else the errno. */
export type FlockFn = (fd: number, op: number) => number;

export interface LockOptions {
  flock: FlockFn;
  blocking?: boolean;     // block in the kernel (CLI) instead of polling
  clock?: Clock;
  timeoutMs?: number;     // polling mode only (default 30 s)
}

export async function withFileLock<T>(path: string, opts: LockOptions, fn: () => T | Promise<T>): Promise<T> {
  const fs = pluginFs();
  const fd = fs.open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0o644);
  try {
    await acquire(fd, path, opts);
    try {
      return await fn();
    } finally {
      opts.flock(fd, LOCK_UN);
    }
  } finally {
    fs.close(fd);
  }
}

async function acquire(fd: number, path: string, opts: LockOptions): Promise<void> {
  const clock = opts.clock ?? systemClock;
  const deadline = clock.now() + (opts.timeoutMs ?? 30_000);
  let delay = 1;
  for (;;) {
    const rc = opts.flock(fd, LOCK_EX | LOCK_NB);
    if (rc === 0) return;
    if (rc !== EWOULDBLOCK && rc !== EINTR) throw new CniError(CNI_ERR.io, `flock ${path}: errno ${rc}`);
    if (opts.blocking) {
      const b = opts.flock(fd, LOCK_EX);
      if (b === 0) return;
      if (b !== EINTR) throw new CniError(CNI_ERR.io, `flock ${path}: errno ${b}`);
      continue;
    }
    if (clock.now() >= deadline) {
      throw new CniError(CNI_ERR.tryAgainLater, `IPAM store lock ${path} is held by another process for more than ${opts.timeoutMs ?? 30_000} ms`);
    }
    await clock.sleep(delay);
    delay = Math.min(delay * 2, 8);
  }
}
