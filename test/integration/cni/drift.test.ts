// CHECK against the real kernel: every kind of drift CHECK looks for, made with `ip` the way an
// operator (or another program) would, is reported with code 101 naming it; and the config keys
// that change the wiring (`mtu`, `hairpinMode: false`) as the kernel then shows them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeRoot } from '../../util/root.js';
import { ensurePluginBuilt } from '../../util/pods.js';
import { hostVethName } from '../../../cni/link/names.js';
import { SUBNET_ENV, TestNode } from './node.js';

interface AddResult { ips: { address: string }[]; interfaces: { name: string; mac?: string; mtu?: number }[] }

describeRoot('CNI plugin executable: CHECK drift and wiring keys (integration)', () => {
  let node: TestNode;
  beforeAll(() => { node = new TestNode(ensurePluginBuilt(), SUBNET_ENV, 'tw6hc-'); });
  afterAll(() => node?.cleanup());

  /** ADD one pod with `conf`; returns what DEL/CHECK need. */
  async function added(conf: Record<string, unknown>) {
    const pod = node.pod();
    const env = { containerId: pod.id, netns: pod.netns };
    const add = await node.exec('ADD', conf, env);
    expect(add.code, add.raw + add.stderr).toBe(0);
    const result = add.stdout as AddResult;
    return { pod, env, result, prev: { ...conf, prevResult: result }, veth: hostVethName(pod.id, 'eth0') };
  }

  type Pod = Awaited<ReturnType<typeof added>>;
  const cases: [string, (p: Pod) => void, (p: Pod) => RegExp, ((p: Pod) => void)?][] = [
    ['pod interface deleted', (p) => node.ip(p.pod.name, 'link', 'del', 'eth0'), (p) => new RegExp(`^interface eth0 is missing in ${p.pod.netns}$`)],
    ['pod interface down', (p) => node.ip(p.pod.name, 'link', 'set', 'eth0', 'down'), (p) => new RegExp(`^interface eth0 in ${p.pod.netns} is down$`)],
    ['pod address removed', (p) => node.ip(p.pod.name, 'addr', 'del', p.result.ips[0]!.address, 'dev', 'eth0'),
      (p) => new RegExp(`^address ${p.result.ips[0]!.address.replace(/\./g, '\\.')} is missing on eth0 in ${p.pod.netns}$`)],
    ['pod MAC changed', (p) => node.ip(p.pod.name, 'link', 'set', 'eth0', 'address', '0a:58:0a:f4:01:fe'),
      (p) => new RegExp(`^interface eth0 in ${p.pod.netns} has MAC 0a:58:0a:f4:01:fe, prevResult says ${p.result.interfaces[2]!.mac}$`)],
    ['bridge down', () => node.ip(node.host, 'link', 'set', 'cni0', 'down'), () => /^bridge cni0 is down$/,
      () => node.ip(node.host, 'link', 'set', 'cni0', 'up')],
    ['host veth down', (p) => node.ip(node.host, 'link', 'set', p.veth, 'down'), (p) => new RegExp(`^host veth ${p.veth} is down$`)],
    ['hairpin turned off', (p) => node.ip(node.host, 'link', 'set', 'dev', p.veth, 'type', 'bridge_slave', 'hairpin', 'off'),
      (p) => new RegExp(`^host veth ${p.veth} has hairpin mode off$`)],
  ];

  it.each(cases)('CHECK reports drift: %s (code 101)', async (_what, drift, msg, restore) => {
    const p = await added(node.conf());
    expect((await node.exec('CHECK', p.prev, p.env)).code).toBe(0);
    drift(p);
    try {
      const check = await node.exec('CHECK', p.prev, p.env);
      expect(check.code).toBe(1);
      expect(check.stdout).toMatchObject({ cniVersion: '1.1.0', code: 101, msg: expect.stringMatching(msg(p)) });
    } finally {
      restore?.(p);
    }
    expect((await node.exec('DEL', p.prev, p.env)).code).toBe(0);
    node.dropPod(p.pod.name);
  });

  describe('config keys', () => {
    const mtuOf = (netns: string, dev: string) => (JSON.parse(node.ip(netns, '-j', 'link', 'show', 'dev', dev)) as { mtu: number }[])[0]!.mtu;

    it('mtu 1400 in the conf: bridge, host veth and pod eth0 at 1400 (the subnet file says 1450)', async () => {
      const p = await added(node.conf({ name: 'mtu', bridge: 'cni4', mtu: 1400 }));
      expect(mtuOf(node.host, 'cni4')).toBe(1400);
      expect(mtuOf(node.host, p.veth)).toBe(1400);
      expect(mtuOf(p.pod.name, 'eth0')).toBe(1400);
      expect(p.result.interfaces[2]!.mtu).toBe(1400);
      expect((await node.exec('CHECK', p.prev, p.env)).code).toBe(0);
      expect((await node.exec('DEL', p.prev, p.env)).code).toBe(0);
      node.dropPod(p.pod.name);
    });

    it('hairpinMode false: host veth on the bridge without hairpin, CHECK passes', async () => {
      const p = await added(node.conf({ hairpinMode: false }));
      expect(node.ip(node.host, '-d', 'link', 'show', p.veth)).toMatch(/master cni0[\s\S]*hairpin off/);
      expect((await node.exec('CHECK', p.prev, p.env)).code).toBe(0);
      // The kernel's hairpin state is what CHECK read: a conf that wants hairpin sees drift.
      const strict = await node.exec('CHECK', { ...p.prev, hairpinMode: true }, p.env);
      expect(strict.stdout).toMatchObject({ code: 101, msg: expect.stringMatching(/hairpin mode off/) });
      expect((await node.exec('DEL', p.prev, p.env)).code).toBe(0);
      node.dropPod(p.pod.name);
    });
  });
});
