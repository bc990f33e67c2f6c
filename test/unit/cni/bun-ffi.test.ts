import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parsePrototype } from '../../../cni/runtime/prototype.js';
import { REPO_ROOT } from '../../util/pods.js';

describe('bun:ffi prototype parser (compiled plugin)', () => {
  it('maps the C types lib/netlink/ffi.ts uses', () => {
    expect(parsePrototype('int open(const char *path, int flags, ...)')).toEqual({
      name: 'open', returns: { ffi: 'i32', conv: 'scalar' },
      args: [{ ffi: 'ptr', conv: 'cstring' }, { ffi: 'i32', conv: 'scalar' }],
    });
    expect(parsePrototype('long send(int fd, const void *buf, unsigned long len, int flags)').args.map((a) => a.ffi)).toEqual(['i32', 'ptr', 'u64_fast', 'i32']);
    expect(parsePrototype('int getsockopt(int fd, int level, int name, void *val, _Inout_ uint32_t *len)').args[4]).toEqual({ ffi: 'ptr', conv: 'inout-u32' });
    expect(parsePrototype('int eventfd(unsigned int initval, int flags)').args[0]!.ffi).toBe('u32');
    expect(parsePrototype('int getpid(void)').args).toEqual([]);
  });

  it('refuses what it does not understand', () => {
    expect(() => parsePrototype('struct foo bar(int x)')).toThrow(/unsupported type/);
    expect(() => parsePrototype('int f(_Inout_ int *x)')).toThrow(/_Inout_ uint32_t/);
    expect(() => parsePrototype('garbage')).toThrow(/cannot parse/);
  });

  it.each(['lib/netlink/ffi.ts', 'cni/runtime/libc-fs.ts'])('understands every prototype %s declares', (file) => {
    const src = readFileSync(join(REPO_ROOT, file), 'utf8');
    const protos = [...src.matchAll(/\.func\('([^']+)'\)/g)].map((m) => m[1]!);
    expect(protos.length).toBeGreaterThan(5);
    for (const p of protos) expect(() => parsePrototype(p), p).not.toThrow();
  });

  it('maps pointer returns (opendir/readdir) and mode_t arguments', () => {
    expect(parsePrototype('void *readdir(void *dir)')).toEqual({
      name: 'readdir', returns: { ffi: 'ptr', conv: 'buffer' }, args: [{ ffi: 'ptr', conv: 'buffer' }],
    });
    expect(parsePrototype('int openat(int dirfd, const char *path, int flags, unsigned int mode)').args.map((a) => a.conv))
      .toEqual(['scalar', 'cstring', 'scalar', 'scalar']);
  });
});
