// The plugin's file I/O behind one small synchronous interface. Under Node (unit tests, the
// fuzz test) it is node:fs; the bun-compiled executable hands over a libc implementation
// (libc-fs.ts, through usePluginFs() in bun.ts) because under bun merely
// importing node:fs costs ≈0.8 ms of CPU and ≈140 page faults per invocation (its JS is compiled
// on every start, and its ≈25 heap blocks push a DEL past the point where JSC starts warming
// more heap on a second thread) — measured on these machines, about a tenth of a whole DEL.
//
// Errors look like node:fs errors: an Error with `code` ('ENOENT', 'EEXIST', ...) and `errno`,
// which is all the callers look at.
import type * as NodeFs from 'node:fs';

/** Linux open(2) flags (the same numbers node:fs accepts). */
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_CLOEXEC = 0o2000000;

export interface PluginFs {
  /** Whole file as UTF-8. */
  readFile(path: string): string;
  /** All of stdin as UTF-8; '' when it is a terminal or unreadable (never blocks on a tty). */
  readStdin(): string;
  /** Writes all of `text` (UTF-8) to `fd`. */
  write(fd: number, text: string): void;
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): void;
  /** mkdir -p (existing directories are fine). */
  mkdirp(path: string, mode: number): void;
  /** Entry names without '.' and '..'. */
  readdir(path: string): string[];
  link(existing: string, path: string): void;
  unlink(path: string): void;
  rename(from: string, to: string): void;
}

let impl: PluginFs | undefined;

/** Installs the implementation (bun.ts, before anything runs). */
export function usePluginFs(fs: PluginFs): void {
  impl = fs;
}

/** The file I/O in use: what usePluginFs() installed, else node:fs (loaded on first use). */
export function pluginFs(): PluginFs {
  impl ??= nodeFs();
  return impl;
}

function nodeFs(): PluginFs {
  // getBuiltinModule, not an import: even node:module is a module the compiled plugin would load.
  const fs: typeof NodeFs = process.getBuiltinModule('node:fs');
  return {
    readFile: (path) => fs.readFileSync(path, 'utf8'),
    readStdin: () => {
      try {
        if (fs.fstatSync(0).isCharacterDevice()) return '';
        return fs.readFileSync(0, 'utf8');
      } catch {
        return '';
      }
    },
    write: (fd, text) => {
      const buf = Buffer.from(text, 'utf8');
      for (let off = 0; off < buf.length;) off += fs.writeSync(fd, buf, off);
    },
    open: (path, flags, mode) => fs.openSync(path, flags, mode),
    close: (fd) => fs.closeSync(fd),
    mkdirp: (path, mode) => { fs.mkdirSync(path, { recursive: true, mode }); },
    readdir: (path) => fs.readdirSync(path),
    link: (existing, path) => fs.linkSync(existing, path),
    unlink: (path) => fs.unlinkSync(path),
    rename: (from, to) => fs.renameSync(from, to),
  };
}
