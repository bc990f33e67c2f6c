import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, readdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultConflist, install, parseInstallArgs, writeIfChanged } from '../../../cni/install.js';

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'twill-install-')); });
afterEach(() => rmSync(dir, { recursive: true, force: true }));

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
