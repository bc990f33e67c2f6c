import { describe, expect, it } from 'vitest';
import { decodeStdin, parseConf, DEFAULTS } from '../../../cni/config.js';
import { CniError } from '../../../cni/skel/errors.js';

function err(fn: () => unknown): CniError {
  try { fn(); } catch (e) { if (e instanceof CniError) return e; throw e; }
  throw new Error('no error');
}

describe('network configuration', () => {
  it('applies defaults', () => {
    const c = parseConf({ cniVersion: '1.0.0', name: 'cbr0', type: 'twill' });
    expect(c).toMatchObject({ cniVersion: '1.0.0', name: 'cbr0', ...DEFAULTS, mtu: undefined });
  });
  it('reads every key', () => {
    const c = parseConf({
      cniVersion: '1.1.0', name: 'n', bridge: 'br9', subnetFile: '/tmp/s.env', dataDir: '/tmp/d', mtu: 1400,
      hairpinMode: false, isDefaultGateway: false, dns: { nameservers: ['10.96.0.10'], search: ['a'] },
      'cni.dev/valid-attachments': [{ containerID: 'c1', ifname: 'eth0' }], runtimeConfig: {}, args: {},
    });
    expect(c).toMatchObject({ bridge: 'br9', mtu: 1400, hairpinMode: false, isDefaultGateway: false, validAttachments: [{ containerId: 'c1', ifname: 'eth0' }] });
    expect(c.dns).toEqual({ nameservers: ['10.96.0.10'], search: ['a'] });
  });
  it('rejects wrong keys with code 7 naming field, value and rule', () => {
    const base = { cniVersion: '1.0.0', name: 'n' };
    const bad: [Record<string, unknown>, string][] = [
      [{ ...base, name: '' }, 'name'], [{ ...base, name: '../x' }, 'name'], [{ ...base, name: 5 }, 'name'],
      [{ ...base, bridge: 'way-too-long-bridge' }, 'bridge'], [{ ...base, mtu: 10 }, 'mtu'], [{ ...base, mtu: 1500.5 }, 'mtu'],
      [{ ...base, hairpinMode: 'yes' }, 'hairpinMode'], [{ ...base, dataDir: 'rel' }, 'dataDir'], [{ ...base, dataDir: '/a/../b' }, 'dataDir'],
      [{ ...base, dns: [] }, 'dns'], [{ ...base, prevResult: 3 }, 'prevResult'],
      [{ ...base, 'cni.dev/valid-attachments': [{ containerID: 1 }] }, 'cni.dev/valid-attachments[0]'],
    ];
    for (const [raw, field] of bad) {
      const e = err(() => parseConf(raw));
      expect(e.code, field).toBe(7);
      expect(e.message.startsWith(`${field}: `), e.message).toBe(true);
      expect(e.message).toMatch(/is invalid: /);
    }
  });
  it('refuses an ipam section (code 2) and bad JSON (code 6)', () => {
    expect(err(() => parseConf({ cniVersion: '1.0.0', name: 'n', ipam: { type: 'host-local' } })).code).toBe(2);
    expect(err(() => decodeStdin('{')).code).toBe(6);
    expect(err(() => decodeStdin('[]')).code).toBe(6);
    expect(err(() => decodeStdin('null')).code).toBe(6);
  });
});
