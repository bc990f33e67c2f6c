import { describe, expect, it } from 'vitest';
import { negotiateVersion, compareVersions, versionResult, SUPPORTED_VERSIONS } from '../../../cni/skel/version.js';
import { parseEnv } from '../../../cni/skel/env.js';
import { CniError, errorJson, toCniError } from '../../../cni/skel/errors.js';

function code(fn: () => unknown): number | undefined {
  try { fn(); } catch (err) { return err instanceof CniError ? err.code : -1; }
  return undefined;
}

describe('version negotiation', () => {
  it.each(SUPPORTED_VERSIONS)('accepts cniVersion %s', (v) => {
    expect(negotiateVersion(v, undefined)).toBe(v);
  });
  it('rejects unsupported or malformed cniVersion with code 1', () => {
    for (const v of ['0.2.0', '0.1.0', '2.0.0', '1.0', '', 1, null]) expect(code(() => negotiateVersion(v, undefined))).toBe(1);
  });
  it('picks the highest common version from cniVersions', () => {
    expect(negotiateVersion(undefined, ['0.3.1', '1.0.0', '9.9.9'])).toBe('1.0.0');
    expect(negotiateVersion(undefined, ['1.1.0', '0.4.0'])).toBe('1.1.0');
    expect(code(() => negotiateVersion(undefined, ['0.2.0']))).toBe(1);
    expect(code(() => negotiateVersion(undefined, 'x'))).toBe(7);
  });
  it('cniVersion wins over cniVersions; missing both is code 1', () => {
    expect(negotiateVersion('0.4.0', ['1.1.0'])).toBe('0.4.0');
    expect(code(() => negotiateVersion(undefined, undefined))).toBe(1);
  });
  it('compares numerically', () => {
    expect(compareVersions('0.10.0', '0.9.0')).toBeGreaterThan(0);
    expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  });
  it('VERSION result lists every supported version', () => {
    expect(versionResult('1.0.0')).toEqual({ cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });
});

describe('CNI_* environment', () => {
  const base = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'abc123', CNI_NETNS: '/var/run/netns/x', CNI_IFNAME: 'eth0' };
  it('parses a valid ADD', () => {
    expect(parseEnv(base)).toMatchObject({ command: 'ADD', containerId: 'abc123', ifname: 'eth0', netns: '/var/run/netns/x' });
  });
  it('rejects bad variables with code 4 naming the variable', () => {
    const cases: Record<string, string | undefined>[] = [
      { ...base, CNI_COMMAND: 'FOO' }, { ...base, CNI_COMMAND: undefined },
      { ...base, CNI_CONTAINERID: '' }, { ...base, CNI_CONTAINERID: '-abc' }, { ...base, CNI_CONTAINERID: 'a/b' },
      { ...base, CNI_IFNAME: '' }, { ...base, CNI_IFNAME: 'a'.repeat(16) }, { ...base, CNI_IFNAME: 'a b' },
      { ...base, CNI_IFNAME: '..' }, { ...base, CNI_IFNAME: 'a:b' }, { ...base, CNI_IFNAME: 'a\u0001' },
      { ...base, CNI_NETNS: '' }, { ...base, CNI_NETNS: 'relative/path' },
    ];
    for (const env of cases) {
      let err: unknown;
      try { parseEnv(env); } catch (e) { err = e; }
      expect(err, JSON.stringify(env)).toBeInstanceOf(CniError);
      expect((err as CniError).code).toBe(4);
      expect((err as CniError).message).toMatch(/^CNI_[A-Z]+: /);
    }
  });
  it('DEL accepts an empty CNI_NETNS; GC/STATUS need no container', () => {
    expect(parseEnv({ ...base, CNI_COMMAND: 'DEL', CNI_NETNS: '' }).netns).toBe('');
    expect(parseEnv({ CNI_COMMAND: 'GC' }).command).toBe('GC');
    expect(parseEnv({ CNI_COMMAND: 'STATUS' }).command).toBe('STATUS');
  });
});

describe('error JSON', () => {
  it('has cniVersion, code, msg and details', () => {
    expect(errorJson(new CniError(7, 'bad', 'why'), '1.0.0')).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'bad', details: 'why' });
    expect(errorJson(new CniError(7, 'bad'), '1.0.0')).toEqual({ cniVersion: '1.0.0', code: 7, msg: 'bad' });
  });
  it('maps errno errors to code 5 and anything else to 999', () => {
    expect(toCniError(Object.assign(new Error('x'), { code: 'EACCES' })).code).toBe(5);
    expect(toCniError(new TypeError('y')).code).toBe(999);
    expect(toCniError('str').code).toBe(999);
  });
});
