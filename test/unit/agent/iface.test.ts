// Underlay interface selection (agent/iface.ts) against the memory kernel: --iface by name and
// by IP (first match wins), --iface-regex over names and addresses, --iface-can-reach (longest
// prefix over the main table's routes), the default-route interface, --public-ip, and errors.
import { describe, expect, it } from 'vitest';
import { selectInterface, type IfaceOptions } from '../../../agent/iface.js';
import { MemoryKernel } from '../../../lib/netlink/memory.js';
import type { NlChange } from '../../../lib/netlink/types.js';

const link = (name: string, mtu = 1500): NlChange => ({ verb: 'create', object: { kind: 'link', name, type: 'bridge', mtu, up: true } });
const addr = (ifindex: number, address: string, prefixLen = 24, scope = 0): NlChange => ({ verb: 'replace', object: { kind: 'addr', ifindex, family: 4, address, prefixLen, scope } });
const route = (dst: string, ifindex: number, gateway?: string): NlChange => ({ verb: 'create', object: { kind: 'route', family: 4, dst, ifindex, protocol: 4, ...(gateway ? { gateway } : {}) } });

// lo=1 (127.0.0.1, host scope), eth0=2 (192.0.2.1 + secondary .9), eth1=3 (198.51.100.7, mtu
// 9000), wg0=4 (no IPv4 address); routes: 203.0.113.0/24 via eth1, 203.0.113.128/25 via eth0.
function kernel(opts: { defaultVia?: 'eth0' | 'eth1' } = { defaultVia: 'eth0' }): MemoryKernel {
  const k = new MemoryKernel();
  k.external([{ verb: 'set', object: { kind: 'link', name: 'lo', index: 1, up: true } }, addr(1, '127.0.0.1', 8, 254)]);
  k.external([link('eth0'), link('eth1', 9000), link('wg0', 1420)]);
  k.external([addr(2, '192.0.2.1'), addr(2, '192.0.2.9'), addr(3, '198.51.100.7')]);
  k.external([route('203.0.113.0/24', 3, '198.51.100.1'), route('203.0.113.128/25', 2, '192.0.2.254')]);
  if (opts.defaultVia === 'eth0') k.external([route('0.0.0.0/0', 2, '192.0.2.254')]);
  if (opts.defaultVia === 'eth1') k.external([route('0.0.0.0/0', 3, '198.51.100.1')]);
  return k;
}

const select = (k: MemoryKernel, o: Partial<IfaceOptions>) => selectInterface(k, { iface: [], ifaceRegex: [], ...o });
const ETH0 = { name: 'eth0', index: 2, mtu: 1500, ip: '192.0.2.1', prefixLen: 24, publicIP: '192.0.2.1' };
const ETH1 = { name: 'eth1', index: 3, mtu: 9000, ip: '198.51.100.7', prefixLen: 24, publicIP: '198.51.100.7' };

describe('selectInterface: the default', () => {
  it('the memory kernel holds the set-up the tests assume', () => {
    const k = kernel();
    expect(k.links().map((l) => [l.index, l.name])).toEqual([[1, 'lo'], [2, 'eth0'], [3, 'eth1'], [4, 'wg0']]);
    expect(k.routes().filter((r) => r.protocol === 4).map((r) => `${r.dst} ${r.ifindex}`)).toEqual(['203.0.113.0/24 3', '203.0.113.128/25 2', '0.0.0.0/0 2']);
  });

  it('uses the default-route interface and its first global IPv4 address', async () => {
    expect(await select(kernel({ defaultVia: 'eth0' }), {})).toEqual(ETH0);
    expect(await select(kernel({ defaultVia: 'eth1' }), {})).toEqual(ETH1);
  });

  it('ignores default routes in other tables', async () => {
    const k = kernel({});
    k.external([{ verb: 'create', object: { kind: 'route', family: 4, dst: '0.0.0.0/0', ifindex: 3, gateway: '198.51.100.1', protocol: 4, table: 100 } }]);
    await expect(select(k, {})).rejects.toMatchObject({ code: 'BACKEND', message: expect.stringMatching(/^no default route/) });
  });

  it('follows a default route through a nexthop object to its device (the kernel lists such a route without one)', async () => {
    const k = kernel({});
    k.external([{ verb: 'create', object: { kind: 'nexthop', id: 7, family: 4, gateway: '198.51.100.1', ifindex: 3, onlink: false, protocol: 4 } }]);
    k.external([{ verb: 'create', object: { kind: 'route', family: 4, dst: '0.0.0.0/0', nhid: 7, protocol: 4 } }]);
    expect(k.routes().find((r) => r.dst === '0.0.0.0/0')?.ifindex).toBeUndefined();
    expect(await select(k, {})).toEqual(ETH1);
    expect(await select(k, { ifaceCanReach: '198.18.0.1' })).toEqual(ETH1);
  });

  it('without a default route, says how to choose', async () => {
    await expect(select(kernel({}), {})).rejects.toMatchObject({ code: 'BACKEND', message: expect.stringMatching(/^no default route: pass --iface, --iface-regex or --iface-can-reach/) });
  });
});

describe('selectInterface: --iface', () => {
  it('by name', async () => {
    expect(await select(kernel(), { iface: ['eth1'] })).toEqual(ETH1);
  });

  it('by IP, which becomes the underlay address even when it is not the first', async () => {
    expect(await select(kernel(), { iface: ['192.0.2.9'] })).toEqual({ ...ETH0, ip: '192.0.2.9', publicIP: '192.0.2.9' });
    expect(await select(kernel(), { iface: ['198.51.100.7'] })).toEqual(ETH1);
  });

  it('repeated: the first that matches wins, names and IPs alike', async () => {
    expect(await select(kernel(), { iface: ['nosuch0', 'wg0', '10.9.9.9', 'eth1', 'eth0'] })).toEqual(ETH1);
    expect(await select(kernel(), { iface: ['192.0.2.9', 'eth1'] })).toMatchObject({ name: 'eth0', ip: '192.0.2.9' });
  });

  it('never falls back to the default route, and says what it looked for', async () => {
    await expect(select(kernel(), { iface: ['nosuch0', '10.9.9.9'] })).rejects.toMatchObject({
      code: 'BACKEND', message: '--iface nosuch0,10.9.9.9: no such interface with an IPv4 address',
    });
    await expect(select(kernel(), { iface: ['wg0'] })).rejects.toMatchObject({ code: 'BACKEND', message: expect.stringContaining('--iface wg0') });
    await expect(select(kernel(), { iface: ['lo'] })).rejects.toMatchObject({ code: 'BACKEND' });   // 127.0.0.1 is host scope
  });
});

describe('selectInterface: --iface-regex', () => {
  it('matches interface names', async () => {
    expect(await select(kernel(), { ifaceRegex: ['^eth1$'] })).toEqual(ETH1);
    expect(await select(kernel(), { ifaceRegex: ['^wg', 'th1'] })).toEqual(ETH1);   // wg0 has no address: next regex
  });

  it('matches addresses, and the matching address is the one used', async () => {
    expect(await select(kernel(), { ifaceRegex: ['^198\\.51\\.'] })).toEqual(ETH1);
    expect(await select(kernel(), { ifaceRegex: ['\\.9$'] })).toEqual({ ...ETH0, ip: '192.0.2.9', publicIP: '192.0.2.9' });
  });

  it('the first regex that matches wins', async () => {
    expect(await select(kernel(), { ifaceRegex: ['^nomatch', '^198\\.', '^eth0$'] })).toEqual(ETH1);
  });

  it('fails when nothing matches (no fallback), host-scope addresses included', async () => {
    await expect(select(kernel(), { ifaceRegex: ['^wlan', '^127\\.'] })).rejects.toMatchObject({
      code: 'BACKEND', message: '--iface-regex ^wlan,^127\\.: no interface or address matches',
    });
  });
});

describe('selectInterface: --iface-can-reach', () => {
  // selectInterface does the lookup itself over a dump of the main table (longest prefix
  // match), so the memory kernel's route listing is all it needs.
  it('uses the interface of the longest matching route', async () => {
    expect(await select(kernel(), { ifaceCanReach: '203.0.113.5' })).toEqual(ETH1);      // /24 via eth1
    expect(await select(kernel(), { ifaceCanReach: '203.0.113.200' })).toEqual(ETH0);    // /25 via eth0 beats the /24
    expect(await select(kernel(), { ifaceCanReach: '198.51.100.99' })).toEqual(ETH1);    // connected route
    expect(await select(kernel({ defaultVia: 'eth1' }), { ifaceCanReach: '198.18.0.1' })).toEqual(ETH1);   // only the default
  });

  it('takes the route\'s preferred source address when it has one', async () => {
    const k = kernel();
    k.external([{ verb: 'create', object: { kind: 'route', family: 4, dst: '10.77.0.0/16', ifindex: 2, gateway: '192.0.2.254', src: '192.0.2.9', protocol: 4 } }]);
    expect(await select(k, { ifaceCanReach: '10.77.1.1' })).toMatchObject({ name: 'eth0', ip: '192.0.2.9' });
  });

  it('fails when no route reaches the address, and rejects a non-IPv4 target', async () => {
    await expect(select(kernel({}), { ifaceCanReach: '198.18.0.1' })).rejects.toMatchObject({ code: 'BACKEND', message: '--iface-can-reach 198.18.0.1: no route reaches it' });
    await expect(select(kernel(), { ifaceCanReach: 'example.com' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('--iface-can-reach') });
  });
});

describe('selectInterface: --public-ip', () => {
  it('overrides the published address, never the underlay address', async () => {
    expect(await select(kernel(), { publicIp: '203.0.113.10' })).toEqual({ ...ETH0, publicIP: '203.0.113.10' });
    expect(await select(kernel(), { iface: ['eth1'], publicIp: '203.0.113.10' })).toEqual({ ...ETH1, publicIP: '203.0.113.10' });
    expect(await select(kernel(), { ifaceRegex: ['\\.9$'], publicIp: '203.0.113.10' })).toMatchObject({ ip: '192.0.2.9', publicIP: '203.0.113.10' });
  });

  it('rejects an address that is not one, before looking at interfaces', async () => {
    await expect(select(kernel({}), { publicIp: 'not-an-ip' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^--public-ip: "not-an-ip" is invalid/) });
  });

  it('rejects an IPv6 address and one peers could not use (multicast, loopback, unspecified)', async () => {
    await expect(select(kernel({}), { publicIp: '2001:db8::1' })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/^--public-ip: "2001:db8::1" is invalid.*IPv4/) });
    for (const ip of ['224.0.0.5', '127.0.0.1', '0.0.0.0']) {
      await expect(select(kernel({}), { publicIp: ip })).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(new RegExp(`^--public-ip: "${ip.replace(/\./g, '\\.')}" is invalid.*unicast host`)) });
    }
  });
});
