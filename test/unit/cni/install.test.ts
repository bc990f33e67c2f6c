import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync, chmodSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConflist, install, parseInstallArgs, writeIfChanged } from '../../../cni/install.js';
import type * as NodeFs from 'node:fs';

// Fault injection for the installer's writes: node:fs as it is, except that the call named in
// `fault.at` throws ENOSPC (as root, a read-only directory would not stop the temp file).
// `fault.chunk` makes writeSync write at most that many bytes per call, as write(2) may, and
// `fault.fullAfter` makes it fail with EFBIG once that many bytes are in the file (a size limit).
const fault = vi.hoisted(() => ({ at: undefined as 'openSync' | 'writeSync' | 'fsyncSync' | 'renameSync' | undefined, chunk: 0, fullAfter: 0, written: 0 }));
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof NodeFs>();
  const inject = <A extends unknown[], R>(name: NonNullable<typeof fault.at>, f: (...a: A) => R) => (...a: A): R => {
    if (fault.at === name) throw Object.assign(new Error(`${name}: ENOSPC: no space left on device (injected)`), { code: 'ENOSPC' });
    return f(...a);
  };
  return {
    ...fs, default: fs,
    openSync: inject('openSync', fs.openSync),
    writeSync: inject('writeSync', (fd: number, buf: Buffer | string, off?: number, len?: number) => {
      if (typeof buf === 'string' || !fault.chunk) return (fs.writeSync as (...a: unknown[]) => number)(fd, buf, off, len);
      if (fault.fullAfter && fault.written >= fault.fullAfter) throw Object.assign(new Error('writeSync: EFBIG: file too large (injected)'), { code: 'EFBIG' });
      const n = fs.writeSync(fd, buf, off ?? 0, Math.min(len ?? buf.length - (off ?? 0), fault.chunk));
      fault.written += n;
      return n;
    }),
    fsyncSync: inject('fsyncSync', fs.fsyncSync), renameSync: inject('renameSync', fs.renameSync),
  };
});

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'twill-install-')); });
afterEach(() => { Object.assign(fault, { at: undefined, chunk: 0, fullAfter: 0, written: 0 }); rmSync(dir, { recursive: true, force: true }); });

describe('twill install', () => {
  it('copies the executable and writes the conflist, then changes nothing on a second run', () => {
    const src = join(dir, 'src-twill');
    writeFileSync(src, 'binary-v1');
    const o = { binDir: join(dir, 'bin'), confDir: join(dir, 'net.d'), confName: '10-twill.conflist', source: src, conflist: defaultConflist('cbr0', 'cni0') };
    expect(install(o)).toMatchObject({ binary: { changed: true }, conflist: { changed: true } });
    expect(readFileSync(join(dir, 'bin', 'twill'), 'utf8')).toBe('binary-v1');
    expect(statSync(join(dir, 'bin', 'twill')).mode & 0o777).toBe(0o755);
    const conf = JSON.parse(readFileSync(join(dir, 'net.d', '10-twill.conflist'), 'utf8'));
    expect(conf).toMatchObject({ cniVersion: '1.0.0', name: 'cbr0', plugins: [{ type: 'twill', bridge: 'cni0' }] });
    const mtime = statSync(join(dir, 'bin', 'twill')).mtimeMs;
    expect(install(o)).toMatchObject({ binary: { changed: false }, conflist: { changed: false } });
    expect(statSync(join(dir, 'bin', 'twill')).mtimeMs).toBe(mtime);
    writeFileSync(src, 'binary-v2');
    expect(install(o).binary.changed).toBe(true);
    expect(readFileSync(join(dir, 'bin', 'twill'), 'utf8')).toBe('binary-v2');
    expect(readdirSync(join(dir, 'bin'))).toEqual(['twill']);       // no temp file left behind
  });

  it('fixes a wrong mode without rewriting, and refuses an invalid conflist', () => {
    const p = join(dir, 'f');
    writeIfChanged(p, Buffer.from('x'), 0o644);
    chmodSync(p, 0o600);
    expect(writeIfChanged(p, Buffer.from('x'), 0o644)).toBe(false);
    expect(statSync(p).mode & 0o777).toBe(0o644);
    const o = { binDir: dir, confDir: dir, confName: 'c', source: p, conflist: '{"name":"x"}' };
    expect(() => install(o)).toThrow(/plugins/);
    expect(() => install({ ...o, conflist: '{' })).toThrow(/not valid JSON/);
  });

  it('a rewrite replaces the target by rename: new inode, a reader of the old file still sees all of the old content', () => {
    const p = join(dir, '10-twill.conflist');
    const v1 = Buffer.from(`${'{"v":1}'.padEnd(4096, ' ')}\n`);
    expect(writeIfChanged(p, v1, 0o644)).toBe(true);
    const ino = statSync(p).ino;
    const fd = openSync(p, 'r');            // a runtime in the middle of reading the old file
    try {
      const v2 = Buffer.from('{"v":2}\n');
      expect(writeIfChanged(p, v2, 0o644)).toBe(true);
      expect(statSync(p).ino).not.toBe(ino);
      expect(readFileSync(p)).toEqual(v2);
      const old = Buffer.alloc(v1.length + 16);
      expect(readSync(fd, old, 0, old.length, 0)).toBe(v1.length);
      expect(old.subarray(0, v1.length)).toEqual(v1);
    } finally {
      closeSync(fd);
    }
    expect(readdirSync(dir)).toEqual(['10-twill.conflist']);
  });

  it.each(['openSync', 'writeSync', 'fsyncSync', 'renameSync'] as const)('a failing %s leaves the old content intact and no temp file behind', (at) => {
    const p = join(dir, 'twill');
    writeIfChanged(p, Buffer.from('binary-v1'), 0o755);
    const ino = statSync(p).ino;
    fault.at = at;
    expect(() => writeIfChanged(p, Buffer.from('binary-v2, longer'), 0o755)).toThrow(/ENOSPC/);
    fault.at = undefined;
    expect(readFileSync(p, 'utf8')).toBe('binary-v1');
    expect(statSync(p).ino).toBe(ino);
    expect(statSync(p).mode & 0o777).toBe(0o755);
    expect(readdirSync(dir)).toEqual(['twill']);
    // install() reports the failure the same way and changes nothing either.
    const src = join(dir, 'src');
    writeFileSync(src, 'binary-v3');
    fault.at = at;
    expect(() => install({ binDir: dir, confDir: join(dir, 'net.d'), confName: 'c', source: src, conflist: defaultConflist('cbr0', 'cni0') })).toThrow(/ENOSPC/);
    fault.at = undefined;
    expect(readFileSync(p, 'utf8')).toBe('binary-v1');
    expect(readdirSync(dir).sort()).toEqual(['src', 'twill']);
  });

  it('short writes: every byte lands, or a write that stops short installs nothing', () => {
    const p = join(dir, 'twill');
    const v2 = Buffer.from('x'.repeat(5000));
    fault.chunk = 7;                      // the kernel takes 7 bytes per write(2)
    expect(writeIfChanged(p, v2, 0o755)).toBe(true);
    expect(readFileSync(p)).toEqual(v2);
    const ino = statSync(p).ino;
    Object.assign(fault, { chunk: 2048, fullAfter: 2048, written: 0 });   // then the disk is full
    expect(() => writeIfChanged(p, Buffer.from('y'.repeat(5000)), 0o755)).toThrow(/EFBIG/);
    expect(readFileSync(p)).toEqual(v2);
    expect(statSync(p).ino).toBe(ino);
    expect(readdirSync(dir)).toEqual(['twill']);
  });

  it('reads flags and TWILL_CNI_* environment', () => {
    const file = join(dir, 'my.conflist');
    writeFileSync(file, '{"name":"n","plugins":[{"type":"twill"}]}');
    const a = parseInstallArgs(['--bin-dir', '/b', '--conflist', file, '--source', '/s'], { TWILL_CNI_CONF_DIR: '/c' });
    expect(a).toEqual({ binDir: '/b', confDir: '/c', confName: '10-twill.conflist', source: '/s', conflist: '{"name":"n","plugins":[{"type":"twill"}]}' });
    const b = parseInstallArgs(['--source', '/s'], { TWILL_CNI_NETWORK_NAME: 'pods', TWILL_CNI_BRIDGE: 'br9' });
    expect(b !== 'help' && JSON.parse(b.conflist)).toMatchObject({ name: 'pods', plugins: [{ bridge: 'br9' }] });
    expect(parseInstallArgs(['--help'], {})).toBe('help');
    expect(() => parseInstallArgs(['--bogus'], {})).toThrow();
  });
});
