// Interop with the real host-local (Debian's containernetworking-plugins, as flannel + host-local
// nodes run it) in the same store, <dataDir>/<network name>: twill skips host-local's records,
// continues host-local's round robin from its last_reserved_ip.0, keeps host-local records of
// valid attachments in GC and releases them in DEL; host-local in turn reads twill's state.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeRoot } from '../../util/root.js';
import { cniExec, ensurePluginBuilt, type CniCmd } from '../../util/pods.js';
import { hostVethName } from '../../../cni/link/names.js';
import { TestNode } from './node.js';

const HOST_LOCAL = '/usr/lib/cni/host-local';
// A /29: usable .2 .. .6 (.1 is the gateway), so the round robin wraps within the test.
const SMALL_SUBNET = 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/29\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n';

describeRoot('CNI plugin executable with host-local in the same store (integration)', () => {
  let node: TestNode;
  beforeAll(() => {
    if (!existsSync(HOST_LOCAL)) throw new Error(`${HOST_LOCAL} is missing (scripts/setup.sh installs containernetworking-plugins)`);
    node = new TestNode(ensurePluginBuilt(), SMALL_SUBNET, 'tw6hc-');
  });
  afterAll(() => node?.cleanup());

  /** host-local as the reference bridge plugin calls it: same network name and data dir. */
  async function hostLocal(cmd: CniCmd, id: string): Promise<string | undefined> {
    const conf = {
      cniVersion: '1.0.0', name: 'cbr0', type: 'bridge',
      ipam: { type: 'host-local', dataDir: node.dataDir, ranges: [[{ subnet: '10.244.7.0/29', gateway: '10.244.7.1' }]] },
    };
    const r = await cniExec(cmd, conf, { containerId: id, netns: `/var/run/netns/${id}`, ifname: 'eth0', path: '/usr/lib/cni' }, { plugin: HOST_LOCAL });
    expect(r.code, `host-local ${cmd} ${id}: ${r.raw} ${r.stderr}`).toBe(0);
    return (r.stdout as { ips?: { address: string }[] } | undefined)?.ips?.[0]?.address;
  }
  const lastReserved = () => readFileSync(join(node.storeDir, 'last_reserved_ip.0'), 'utf8').trim();

  it('twill ADD skips host-local\'s records and continues its round robin; GC keeps and DEL releases host-local records', async () => {
    const hl = (n: string) => `${node.prefix}hl-${n}`;
    for (const [n, want] of [['a', '10.244.7.2/29'], ['b', '10.244.7.3/29'], ['c', '10.244.7.4/29'], ['d', '10.244.7.5/29']] as const) {
      expect(await hostLocal('ADD', hl(n))).toBe(want);
    }
    await hostLocal('DEL', hl('b'));                       // .3 free again; host-local's cursor stays at .5
    expect(lastReserved()).toBe('10.244.7.5');
    expect(node.records()['10.244.7.2']).toBe(`${hl('a')}\r\neth0`);

    // twill: round robin from host-local's last_reserved_ip.0 (.6, not the lower free .3), then it
    // wraps and skips host-local's .2.
    const x = node.pod();
    const y = node.pod();
    const add = async (p: { id: string; netns: string }) => {
      const r = await node.exec('ADD', node.conf(), { containerId: p.id, netns: p.netns });
      expect(r.code, r.raw + r.stderr).toBe(0);
      return (r.stdout as { ips: { address: string }[] }).ips[0]!.address;
    };
    expect(await add(x)).toBe('10.244.7.6/29');
    expect(await add(y)).toBe('10.244.7.3/29');
    expect(lastReserved()).toBe('10.244.7.3');
    expect(node.ip(y.name, 'addr', 'show', 'eth0')).toContain('inet 10.244.7.3/29');

    // GC: host-local attachments a and c and twill's x are valid; d (host-local's) and y are not.
    const valid = [hl('a'), hl('c'), x.id].map((id) => ({ containerID: id, ifname: 'eth0' }));
    const gc = await node.exec('GC', node.conf({ 'cni.dev/valid-attachments': valid }), {});
    expect(gc.code, gc.raw).toBe(0);
    expect(node.records()).toEqual({
      '10.244.7.2': `${hl('a')}\r\neth0`, '10.244.7.4': `${hl('c')}\r\neth0`, '10.244.7.6': `${x.id}\r\neth0`,
    });
    expect(node.hostLinks()).not.toContain(hostVethName(y.id, 'eth0'));
    expect(node.hostLinks()).toContain(hostVethName(x.id, 'eth0'));

    // twill DEL of a host-local attachment (no veth of ours, no netns) releases its record.
    const del = await node.exec('DEL', node.conf(), { containerId: hl('c'), netns: '' });
    expect(del.code, del.raw).toBe(0);
    expect(Object.keys(node.records()).sort()).toEqual(['10.244.7.2', '10.244.7.6']);

    // And host-local continues from twill's cursor (.3): .4 is free again.
    expect(await hostLocal('ADD', hl('e'))).toBe('10.244.7.4/29');

    for (const n of ['a', 'e']) await hostLocal('DEL', hl(n));
    expect((await node.exec('DEL', node.conf(), { containerId: x.id, netns: x.netns })).code).toBe(0);
    expect((await node.exec('DEL', node.conf(), { containerId: y.id, netns: y.netns })).code).toBe(0);
    expect(node.records()).toEqual({});
    for (const p of [x, y]) node.dropPod(p.name);
  });
});
