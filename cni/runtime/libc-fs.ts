// The plugin's file I/O (fs.ts PluginFs) on libc through bun:ffi, for the bun-compiled
// executable only: under bun, importing node:fs costs ≈0.8 ms and ≈140 page faults per
// invocation, while these few syscalls ride on the libc binding the plugin loads anyway — one
// dlopen batch shared with lib/netlink/ffi.ts (the adapter keeps one library per path).
// Errors mimic node:fs: an Error with `code` (errno name), `errno` (negative), `syscall`, `path`.
import { bunFfi, type KoffiSubset } from './ffi-adapter.js';
import type { PluginFs } from './fs.js';

const AT_FDCWD = -100;
const EINTR = 4;
const EEXIST = 17;
const ENOENT = 2;
/** struct dirent: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name — glibc on x64 and arm64. */
const DIRENT_NAME = 19;
const NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 4: 'EINTR', 5: 'EIO', 9: 'EBADF', 11: 'EAGAIN', 12: 'ENOMEM', 13: 'EACCES',
  16: 'EBUSY', 17: 'EEXIST', 18: 'EXDEV', 20: 'ENOTDIR', 21: 'EISDIR', 22: 'EINVAL', 23: 'ENFILE',
  24: 'EMFILE', 27: 'EFBIG', 28: 'ENOSPC', 30: 'EROFS', 31: 'EMLINK', 36: 'ENAMETOOLONG',
  39: 'ENOTEMPTY', 40: 'ELOOP', 122: 'EDQUOT',
};

function fsError(k: KoffiSubset, syscall: string, path?: string): Error {
  const errno = k.errno();
  const code = NAMES[errno] ?? `UNKNOWN_ERRNO_${errno}`;
  const where = path === undefined ? '' : ` '${path}'`;
  return Object.assign(new Error(`${code}: ${syscall}${where}`), { code, errno: -errno, syscall, ...(path === undefined ? {} : { path }) });
}

/**
 * `k`: the koffi-compatible adapter (ffi-adapter.ts) also handed to lib/netlink/ffi.ts;
 * `declareNetlink`: declares ffi.ts's functions first (its getLibc), so the first call compiles
 * everything in one batch instead of two.
 */
export function libcFs(k: KoffiSubset, declareNetlink: () => unknown): PluginFs {
  const { CString } = bunFfi();
  let c: ReturnType<typeof bind> | undefined;
  const libc = () => {
    if (c) return c;
    declareNetlink();
    c = bind(k.load('libc.so.6'));
    return c;
  };

  const open = (path: string, flags: number, mode = 0o666): number => {
    for (;;) {
      const fd = libc().openat(AT_FDCWD, path, flags, mode);
      if (fd >= 0) return fd;
      if (k.errno() !== EINTR) throw fsError(k, 'open', path);
    }
  };

  /**
   * Reads `fd` to EOF; undefined on a read error (the caller decides). One buffer serves every
   * read (an ADD reads every IPAM record): a fresh 4 KiB buffer per file was a page fault each.
   */
  let rbuf: Buffer | undefined;
  const readAll = (fd: number): string | undefined => {
    rbuf ??= Buffer.allocUnsafe(4096);
    let len = 0;
    for (;;) {
      if (len === rbuf.length) {
        const bigger = Buffer.allocUnsafe(rbuf.length * 2);
        rbuf.copy(bigger, 0, 0, len);
        rbuf = bigger;
      }
      const n = libc().read(fd, len === 0 ? rbuf : rbuf.subarray(len), rbuf.length - len);
      if (n === 0) return rbuf.toString('utf8', 0, len);
      if (n > 0) { len += n; continue; }
      if (k.errno() !== EINTR) return undefined;
    }
  };

  const check = (rc: number, syscall: string, path?: string): void => {
    if (rc !== 0) throw fsError(k, syscall, path);
  };

  const mkdirp = (path: string, mode: number): void => {
    if (libc().mkdir(path, mode) === 0) return;
    const errno = k.errno();
    if (errno === EEXIST) return;
    const parent = path.replace(/\/+[^/]*\/*$/, '');
    if (errno !== ENOENT || parent === '' || parent === path) throw fsError(k, 'mkdir', path);
    mkdirp(parent, mode);
    if (libc().mkdir(path, mode) !== 0 && k.errno() !== EEXIST) throw fsError(k, 'mkdir', path);
  };

  return {
    readFile(path) {
      const fd = open(path, 0o2000000);   // O_RDONLY | O_CLOEXEC
      try {
        const text = readAll(fd);
        if (text === undefined) throw fsError(k, 'read', path);
        return text;
      } finally {
        libc().close(fd);
      }
    },
    readStdin() {
      if (libc().isatty(0) === 1) return '';
      return readAll(0) ?? '';
    },
    write(fd, text) {
      const buf = Buffer.from(text, 'utf8');
      for (let off = 0; off < buf.length;) {
        const n = libc().write(fd, buf.subarray(off), buf.length - off);
        if (n > 0) off += n;
        else if (n === 0 || k.errno() !== EINTR) throw fsError(k, 'write');
      }
    },
    open,
    close(fd) {
      check(libc().close(fd), 'close');
    },
    mkdirp,
    readdir(path) {
      const dir = libc().opendir(path);
      if (!dir) throw fsError(k, 'opendir', path);
      const names = [];
      try {
        for (let e = libc().readdir(dir); e; e = libc().readdir(dir)) {
          const name = new CString(e, DIRENT_NAME).toString();
          if (name !== '.' && name !== '..') names.push(name);
        }
      } finally {
        libc().closedir(dir);
      }
      return names;
    },
    link(existing, path) {
      check(libc().link(existing, path), 'link', path);
    },
    unlink(path) {
      check(libc().unlink(path), 'unlink', path);
    },
    rename(from, to) {
      check(libc().rename(from, to), 'rename', to);
    },
  };
}

function bind(lib: ReturnType<KoffiSubset['load']>) {
  return {
    openat: lib.func('int openat(int dirfd, const char *path, int flags, unsigned int mode)'),
    read: lib.func('long read(int fd, void *buf, unsigned long len)'),
    write: lib.func('long write(int fd, const void *buf, unsigned long len)'),
    close: lib.func('int close(int fd)'),
    isatty: lib.func('int isatty(int fd)'),
    mkdir: lib.func('int mkdir(const char *path, unsigned int mode)'),
    link: lib.func('int link(const char *existing, const char *path)'),
    unlink: lib.func('int unlink(const char *path)'),
    rename: lib.func('int rename(const char *from, const char *to)'),
    opendir: lib.func('void *opendir(const char *path)'),
    readdir: lib.func('void *readdir(void *dir)'),
    closedir: lib.func('int closedir(void *dir)'),
  };
}
