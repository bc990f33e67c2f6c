import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { O_CREAT, O_EXCL, O_WRONLY, pluginFs } from '../../../cni/runtime/fs.js';

// The node:fs side of the plugin's file I/O (the compiled executable's libc side is exercised by
// test/integration/cni through the built binary).
describe('pluginFs (node:fs implementation)', () => {
  let dir: string;
  beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'twill-sysfs-')); });
  afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

  it('creates nested directories, writes, links, renames, lists and unlinks', () => {
    const fs = pluginFs();
    const d = join(dir, 'a/b/c');
    fs.mkdirp(d, 0o755);
    fs.mkdirp(d, 0o755);                                   // existing: fine
    expect(statSync(d).isDirectory()).toBe(true);
    const fd = fs.open(join(d, 'tmp'), O_WRONLY | O_CREAT | O_EXCL, 0o644);
    fs.write(fd, 'c1\r\neth0 ünïcode');
    fs.close(fd);
    expect(() => fs.open(join(d, 'tmp'), O_WRONLY | O_CREAT | O_EXCL, 0o644)).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    fs.link(join(d, 'tmp'), join(d, '10.244.1.2'));
    expect(() => fs.link(join(d, 'tmp'), join(d, '10.244.1.2'))).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    fs.rename(join(d, 'tmp'), join(d, 'last'));
    expect(fs.readdir(d).sort()).toEqual(['10.244.1.2', 'last']);
    expect(fs.readFile(join(d, '10.244.1.2'))).toBe('c1\r\neth0 ünïcode');
    expect(readFileSync(join(d, 'last'), 'utf8')).toBe('c1\r\neth0 ünïcode');
    fs.unlink(join(d, 'last'));
    expect(() => fs.unlink(join(d, 'last'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => fs.readFile(join(d, 'missing'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(() => fs.readdir(join(dir, 'nope'))).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });
});
