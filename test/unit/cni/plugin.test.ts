import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { runCni } from '../../../cni/plugin.js';
import { COMMANDS } from '../../../cni/cmd/index.js';
import { hostVethName } from '../../../cni/link/names.js';
import { SUPPORTED_VERSIONS } from '../../../cni/skel/version.js';
import { DiskStore, TMP_PREFIX } from '../../../cni/ipam/store.js';
import { tryParseIp } from '../../../lib/ip/addr.js';
import { World, env } from './world.js';

let w: World;
beforeEach(() => { w = new World(); w.addNetns('/run/netns/p1'); });
afterEach(() => w.cleanup());

const run = (e: Record<string, string>, conf: unknown) => runCni(e, typeof conf === 'string' ? conf : JSON.stringify(conf), async () => w.deps(), COMMANDS);
const records = () => (existsSync(join(w.dataDir, 'cbr0')) ? readdirSync(join(w.dataDir, 'cbr0')) : [])
  .filter((f) => f !== 'lock' && !f.startsWith('last_reserved_ip.')).sort();

describe('ADD', () => {
  it.each(SUPPORTED_VERSIONS)('returns a result shaped for %s', async (v) => {
    const out = await run(env('ADD'), w.conf({ cniVersion: v }));
    expect(out.code, out.stdout).toBe(0);
    const r = JSON.parse(out.stdout);
    expect(r.cniVersion).toBe(v);
    expect(r.interfaces).toHaveLength(3);
    expect(r.interfaces[2]).toMatchObject({ name: 'eth0', sandbox: '/run/netns/p1', mac: '0a:58:0a:f4:01:02' });
    expect(r.ips[0]).toMatchObject({ address: '10.244.1.2/24', gateway: '10.244.1.1', interface: 2 });
    expect('version' in r.ips[0]).toBe(v.startsWith('0.'));
    if (v.startsWith('0.')) expect(r.ips[0].version).toBe('4');
    expect('mtu' in r.interfaces[2]).toBe(v === '1.1.0');
    expect(r.routes).toEqual([{ dst: '0.0.0.0/0', gw: '10.244.1.1' }]);
  });

  it('wires bridge, veth, pod side and forwarding', async () => {
    const out = await run(env('ADD'), w.conf({ dns: { nameservers: ['10.96.0.10'] } }));
    expect(out.code, out.stdout).toBe(0);
    expect(JSON.parse(out.stdout).dns).toEqual({ nameservers: ['10.96.0.10'] });
    const br = w.host.linkByName('cni0')!;
    expect(br).toMatchObject({ type: 'bridge', up: true, mtu: 1450, mac: '0a:58:0a:f4:01:01' });
    expect(w.host.addrs().filter((a) => a.ifindex === br.index).map((a) => `${a.address}/${a.prefixLen}`)).toEqual(['10.244.1.1/24']);
    const veth = w.host.linkByName(hostVethName('ctr1', 'eth0'))!;
    expect(veth).toMatchObject({ master: br.index, up: true, mtu: 1450, hairpin: true });
    const pod = w.pods.get('/run/netns/p1')!;
    const eth0 = pod.linkByName('eth0')!;
    expect(eth0).toMatchObject({ up: true, mtu: 1450 });
    expect(pod.linkByName('lo')!.up).toBe(true);
    expect(pod.addrs().map((a) => a.address)).toContain('10.244.1.2');
    expect(pod.routes().some((r) => r.dst === '0.0.0.0/0' && r.gateway === '10.244.1.1')).toBe(true);
    expect(w.sysctls.get('/proc/sys/net/ipv4/ip_forward')).toBe('1');
    expect(readFileSync(join(w.dataDir, 'cbr0', '10.244.1.2'), 'utf8')).toBe('ctr1\r\neth0');
    expect(readFileSync(join(w.dataDir, 'cbr0', 'last_reserved_ip.0'), 'utf8')).toBe('10.244.1.2');
  });

  it('routes only the cluster network when isDefaultGateway is false', async () => {
    const out = await run(env('ADD'), w.conf({ isDefaultGateway: false }));
    expect(JSON.parse(out.stdout).routes).toEqual([{ dst: '10.244.0.0/16', gw: '10.244.1.1' }]);
  });

  it('a conf mtu overrides the subnet file\'s on the bridge, both veth ends and the result', async () => {
    const out = await run(env('ADD'), w.conf({ mtu: 1400 }));
    expect(out.code, out.stdout).toBe(0);
    expect(w.host.linkByName('cni0')!.mtu).toBe(1400);
    expect(w.host.linkByName(hostVethName('ctr1', 'eth0'))!.mtu).toBe(1400);
    expect(w.pods.get('/run/netns/p1')!.linkByName('eth0')!.mtu).toBe(1400);
    expect(JSON.parse(out.stdout).interfaces[2].mtu).toBe(1400);
  });

  it('hairpinMode false: the host veth is a bridge port without hairpin and CHECK passes', async () => {
    const out = await run(env('ADD'), w.conf({ hairpinMode: false }));
    expect(out.code, out.stdout).toBe(0);
    const veth = w.host.linkByName(hostVethName('ctr1', 'eth0'))!;
    expect(veth).toMatchObject({ master: w.host.linkByName('cni0')!.index, up: true, hairpin: false });
    const check = await run(env('CHECK'), w.conf({ hairpinMode: false, prevResult: JSON.parse(out.stdout) }));
    expect(check).toEqual({ code: 0, stdout: '' });
    // The same attachment checked against a conf that wants hairpin is drift.
    const strict = await run(env('CHECK'), w.conf({ prevResult: JSON.parse(out.stdout) }));
    expect(JSON.parse(strict.stdout)).toMatchObject({ code: 101, msg: expect.stringMatching(/hairpin mode off/) });
  });

  it('hands out addresses round robin and never the gateway', async () => {
    const got: string[] = [];
    for (let i = 0; i < 4; i++) {
      w.addNetns(`/run/netns/q${i}`);
      const out = await run(env('ADD', { CNI_CONTAINERID: `c${i}`, CNI_NETNS: `/run/netns/q${i}` }), w.conf());
      got.push(JSON.parse(out.stdout).ips[0].address);
    }
    await run(env('DEL', { CNI_CONTAINERID: 'c0', CNI_NETNS: '' }), w.conf());
    w.addNetns('/run/netns/q9');
    const out = await run(env('ADD', { CNI_CONTAINERID: 'c9', CNI_NETNS: '/run/netns/q9' }), w.conf());
    expect(got).toEqual(['10.244.1.2/24', '10.244.1.3/24', '10.244.1.4/24', '10.244.1.5/24']);
    expect(JSON.parse(out.stdout).ips[0].address).toBe('10.244.1.6/24');
  });

  it('allocates dual stack from both subnets', async () => {
    writeFileSync(w.subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:1::1/64\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n');
    const out = await run(env('ADD'), w.conf({ cniVersion: '0.4.0' }));
    expect(out.code, out.stdout).toBe(0);
    const r = JSON.parse(out.stdout);
    expect(r.ips.map((i: { address: string; version: string }) => [i.version, i.address])).toEqual([['4', '10.244.1.2/24'], ['6', 'fd00:10:244:1::2/64']]);
    expect(records()).toEqual(['10.244.1.2', 'fd00:10:244:1::2']);
    expect(w.sysctls.get('/run/netns/p1:/proc/sys/net/ipv6/conf/eth0/accept_dad')).toBe('0');
    expect(w.sysctls.get('/proc/sys/net/ipv6/conf/cni0/accept_dad')).toBe('0');
    expect(w.sysctls.get('/proc/sys/net/ipv6/conf/all/forwarding')).toBe('1');
  });

  it('fails without changing state when the interface exists, the netns is missing or the subnet is full', async () => {
    w.pods.get('/run/netns/p1')!.external([{ verb: 'create', object: { kind: 'link', name: 'eth0', type: 'bridge' } }]);
    let out = await run(env('ADD'), w.conf());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 4, msg: expect.stringMatching(/CNI_IFNAME.*already exists/) });
    out = await run(env('ADD', { CNI_NETNS: '/run/netns/nope' }), w.conf());
    expect(JSON.parse(out.stdout).code).toBe(3);
    expect(records()).toEqual([]);
    writeFileSync(w.subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/30\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    w.addNetns('/run/netns/a');
    w.addNetns('/run/netns/b');
    expect((await run(env('ADD', { CNI_NETNS: '/run/netns/a', CNI_CONTAINERID: 'a' }), w.conf())).code).toBe(0);
    out = await run(env('ADD', { CNI_NETNS: '/run/netns/b', CNI_CONTAINERID: 'b' }), w.conf());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 100, msg: expect.stringMatching(/no free address in node subnet 10.244.1.0\/30/) });
    expect(records()).toEqual(['10.244.1.2']);
    expect(w.pods.get('/run/netns/b')!.linkByName('eth0')).toBeUndefined();
  });

  it('reports a missing subnet file as try-again-later and a garbled one as a decode error', async () => {
    unlinkSync(w.subnetFile);
    expect(JSON.parse((await run(env('ADD'), w.conf())).stdout)).toMatchObject({ code: 11 });
    writeFileSync(w.subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=oops\n');
    expect(JSON.parse((await run(env('ADD'), w.conf())).stdout)).toMatchObject({ code: 6, msg: expect.stringMatching(/FLANNEL_SUBNET/) });
    expect(w.host.linkByName('cni0')).toBeUndefined();
  });

  it.each(SUPPORTED_VERSIONS.flatMap((v) => ['ipam', 'bridge', 'veth', 'pod', 'sysctl', 'result'].map((step) => [step, v])))('rolls back everything after a failure at %s (spec %s)', async (step, v) => {
    w.failAt = step;
    const out = await run(env('ADD'), w.conf({ cniVersion: v }));
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ cniVersion: v, code: 999, msg: expect.stringContaining(step) });
    expect(records()).toEqual([]);
    expect(w.host.linkByName(hostVethName('ctr1', 'eth0'))).toBeUndefined();
    expect(w.pods.get('/run/netns/p1')!.linkByName('eth0')).toBeUndefined();
  });

  it('rolls back when the kernel refuses the pod address', async () => {
    w.pods.get('/run/netns/p1')!.failNext((c) => c.object.kind === 'addr', 22);
    const out = await run(env('ADD'), w.conf());
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 102, msg: expect.stringMatching(/addr 10.244.1.2\/24.*EINVAL/) });
    expect(records()).toEqual([]);
    expect(w.host.linkByName(hostVethName('ctr1', 'eth0'))).toBeUndefined();
  });
});

describe('DEL, CHECK, GC, STATUS', () => {
  async function add(id = 'ctr1', ns = '/run/netns/p1', extra: Record<string, unknown> = {}) {
    if (!w.pods.has(ns)) w.addNetns(ns);
    const out = await run(env('ADD', { CNI_CONTAINERID: id, CNI_NETNS: ns }), w.conf(extra));
    expect(out.code, out.stdout).toBe(0);
    return JSON.parse(out.stdout) as Record<string, unknown>;
  }

  it('DEL is idempotent and works with an empty CNI_NETNS', async () => {
    await add();
    expect(await run(env('DEL', { CNI_NETNS: '' }), w.conf())).toEqual({ code: 0, stdout: '' });
    expect(records()).toEqual([]);
    expect(w.host.linkByName(hostVethName('ctr1', 'eth0'))).toBeUndefined();
    expect(w.pods.get('/run/netns/p1')!.linkByName('eth0')).toBeUndefined();
    expect((await run(env('DEL'), w.conf())).code).toBe(0);
    unlinkSync(w.subnetFile);
    expect((await run(env('DEL', { CNI_NETNS: '/run/netns/gone' }), w.conf())).code).toBe(0);
  });

  it('DEL with prevResult releases only its own records, even when prevResult lies', async () => {
    const mine = await add('mine', '/run/netns/m');
    const other = await add('other', '/run/netns/o');
    const otherAddr = (other['ips'] as { address: string }[])[0]!.address;
    // A prevResult naming the other attachment's address: the record does not match -> full scan.
    const lying = { ...mine, ips: [{ address: otherAddr }] };
    expect((await run(env('DEL', { CNI_CONTAINERID: 'mine', CNI_NETNS: '/run/netns/m' }), w.conf({ prevResult: lying }))).code).toBe(0);
    expect(records()).toEqual([otherAddr.split('/')[0]]);
    expect((await run(env('DEL', { CNI_CONTAINERID: 'other', CNI_NETNS: '/run/netns/o' }), w.conf({ prevResult: other }))).code).toBe(0);
    expect(records()).toEqual([]);
  });

  it('DEL releases host-local legacy records (container ID only)', async () => {
    await add();
    writeFileSync(join(w.dataDir, 'cbr0', '10.244.1.50'), 'ctr1');
    writeFileSync(join(w.dataDir, 'cbr0', '10.244.1.51'), 'other\r\neth0');
    await run(env('DEL'), w.conf());
    expect(records()).toEqual(['10.244.1.51']);
  });

  it('CHECK passes after ADD and names the drift otherwise', async () => {
    const prev = await add();
    const check = async () => JSON.parse((await run(env('CHECK'), w.conf({ prevResult: prev }))).stdout || '{}');
    expect(await check()).toEqual({});
    const pod = w.pods.get('/run/netns/p1')!;
    pod.remove({ kind: 'route', family: 4, dst: '0.0.0.0/0', gateway: '10.244.1.1', protocol: 3 });
    expect(await check()).toMatchObject({ code: 101, msg: expect.stringMatching(/route 0.0.0.0\/0 via 10.244.1.1 is missing/) });
    pod.external([{ verb: 'replace', object: { kind: 'route', family: 4, dst: '0.0.0.0/0', gateway: '10.244.1.1', ifindex: pod.linkByName('eth0')!.index, protocol: 3 } }]);
    expect(await check()).toEqual({});
    unlinkSync(join(w.dataDir, 'cbr0', '10.244.1.2'));
    expect(await check()).toMatchObject({ code: 101, msg: expect.stringMatching(/IPAM record for 10.244.1.2/) });
  });

  const veth = hostVethName('ctr1', 'eth0');
  const pod = () => w.pods.get('/run/netns/p1')!;
  const setLink = (k: typeof w.host, name: string, s: { up?: boolean; mac?: string; hairpin?: boolean }) =>
    expect(k.external([{ verb: 'set', object: { kind: 'link', name, ...s } }])).toEqual([{ ok: true }]);
  it.each<[string, () => void, RegExp]>([
    ['pod interface deleted', () => expect(pod().remove({ kind: 'link', name: 'eth0' })).toEqual({ ok: true }),
      /^interface eth0 is missing in \/run\/netns\/p1$/],
    ['pod interface down', () => setLink(pod(), 'eth0', { up: false }), /^interface eth0 in \/run\/netns\/p1 is down$/],
    ['pod address removed', () => expect(pod().remove({ kind: 'addr', ifindex: pod().linkByName('eth0')!.index, family: 4, address: '10.244.1.2', prefixLen: 24 })).toEqual({ ok: true }),
      /^address 10\.244\.1\.2\/24 is missing on eth0 in \/run\/netns\/p1$/],
    ['pod MAC changed', () => setLink(pod(), 'eth0', { mac: '0a:58:0a:f4:01:63' }), /has MAC 0a:58:0a:f4:01:63, prevResult says 0a:58:0a:f4:01:02/],
    ['bridge down', () => setLink(w.host, 'cni0', { up: false }), /^bridge cni0 is down$/],
    ['host veth down', () => setLink(w.host, veth, { up: false }), new RegExp(`^host veth ${veth} is down$`)],
    ['hairpin turned off', () => setLink(w.host, veth, { hairpin: false }), new RegExp(`^host veth ${veth} has hairpin mode off$`)],
  ])('CHECK reports drift: %s (code 101)', async (_what, drift, msg) => {
    const prev = await add();
    const check = async () => run(env('CHECK'), w.conf({ prevResult: prev }));
    expect(await check()).toEqual({ code: 0, stdout: '' });
    drift();
    const out = await check();
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ cniVersion: '1.1.0', code: 101, msg: expect.stringMatching(msg) });
  });

  it('CHECK needs prevResult and 0.4.0+; GC and STATUS need 1.1.0', async () => {
    expect(JSON.parse((await run(env('CHECK'), w.conf())).stdout).code).toBe(7);
    expect(JSON.parse((await run(env('CHECK'), w.conf({ cniVersion: '0.3.1', prevResult: {} }))).stdout).code).toBe(1);
    expect(JSON.parse((await run(env('GC'), w.conf({ cniVersion: '1.0.0', 'cni.dev/valid-attachments': [] }))).stdout).code).toBe(1);
    expect(JSON.parse((await run(env('STATUS'), w.conf({ cniVersion: '1.0.0' }))).stdout).code).toBe(1);
    expect(JSON.parse((await run(env('GC'), w.conf())).stdout).code).toBe(7);
  });

  it('GC releases stale records and orphan veths, never a valid one', async () => {
    await add('keep', '/run/netns/k');
    await add('drop', '/run/netns/d');
    writeFileSync(join(w.dataDir, 'cbr0', '10.244.1.77'), '');
    const valid = [{ containerID: 'keep', ifname: 'eth0' }];
    const out = await run({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }, w.conf({ 'cni.dev/valid-attachments': valid }));
    expect(out).toEqual({ code: 0, stdout: '' });
    expect(records()).toEqual(['10.244.1.2']);
    expect(w.host.linkByName(hostVethName('keep', 'eth0'))).toBeDefined();
    expect(w.host.linkByName(hostVethName('drop', 'eth0'))).toBeUndefined();
  });

  it('GC sweeps the temp files a killed writer left in the store, and nothing else', async () => {
    await add('keep', '/run/netns/k');
    const dir = join(w.dataDir, 'cbr0');
    writeFileSync(join(dir, `${TMP_PREFIX}4242-deadbeef`), 'dead\r\neth0');
    writeFileSync(join(dir, `${TMP_PREFIX}4243-0`), '');
    expect(records()).toEqual([`${TMP_PREFIX}4242-deadbeef`, `${TMP_PREFIX}4243-0`, '10.244.1.2']);
    const out = await run({ CNI_COMMAND: 'GC', CNI_PATH: '/x' }, w.conf({ 'cni.dev/valid-attachments': [{ containerID: 'keep', ifname: 'eth0' }] }));
    expect(out).toEqual({ code: 0, stdout: '' });
    expect(readdirSync(dir).sort()).toEqual(['10.244.1.2', 'last_reserved_ip.0', 'lock']);
    expect(readFileSync(join(dir, '10.244.1.2'), 'utf8')).toBe('keep\r\neth0');
    const store = new DiskStore(w.dataDir, 'cbr0');
    writeFileSync(join(dir, `${TMP_PREFIX}1-a`), 'x');
    expect(store.sweepTemps()).toBe(1);
    expect(store.sweepTemps()).toBe(0);
  });

  it('a reservation is a complete temp file first, linked into place afterwards (the ipam-temp pause point)', () => {
    const store = new DiskStore(w.dataDir, 'cbr0');
    store.ensureDir();
    let seen: string[] = [];
    let content = '';
    store.onTempWritten = (tmp) => { seen = readdirSync(store.dir); content = readFileSync(join(store.dir, tmp), 'utf8'); };
    expect(store.reserve(tryParseIp('10.244.1.9')!, 'c9', 'eth0', '0')).toBe(true);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.startsWith(TMP_PREFIX)).toBe(true);
    expect(content).toBe('c9\r\neth0');
    expect(readdirSync(store.dir).sort()).toEqual(['10.244.1.9', 'last_reserved_ip.0']);
  });

  it('STATUS is 0 when ready, 50 without subnet file or free address', async () => {
    expect(await run({ CNI_COMMAND: 'STATUS' }, w.conf())).toEqual({ code: 0, stdout: '' });
    writeFileSync(w.subnetFile, 'FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/30\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n');
    await add();
    expect(JSON.parse((await run({ CNI_COMMAND: 'STATUS' }, w.conf())).stdout)).toMatchObject({ code: 50, msg: expect.stringMatching(/no free address/) });
    unlinkSync(w.subnetFile);
    expect(JSON.parse((await run({ CNI_COMMAND: 'STATUS' }, w.conf())).stdout)).toMatchObject({ code: 50, msg: expect.stringMatching(/does not exist/) });
  });

  it('VERSION answers with the supported versions', async () => {
    const out = await run({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}');
    expect(JSON.parse(out.stdout)).toEqual({ cniVersion: '0.4.0', supportedVersions: [...SUPPORTED_VERSIONS] });
    expect(JSON.parse((await run({ CNI_COMMAND: 'VERSION' }, '')).stdout).cniVersion).toBe('1.1.0');
  });
});
