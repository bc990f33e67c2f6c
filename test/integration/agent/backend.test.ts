// The VXLAN backend against the real kernel: the device is ensured without churn, and what the
// kernel reports back for every desired entry compares equal to what we asked for — otherwise
// each resync would rewrite everything forever.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { openHandle } from '../../../lib/netlink/handle.js';
import type { NetlinkHandle } from '../../../lib/netlink/types.js';
import { ensureDevice, deriveVtepMac, type DeviceSpec } from '../../../agent/backend/vxlan/device.js';
import { PeerTable } from '../../../agent/peers.js';
import { Reconciler } from '../../../agent/reconcile/loop.js';
import { observeOwned } from '../../../agent/reconcile/observe.js';
import { ObservedState } from '../../../agent/reconcile/state.js';
import { diffState } from '../../../agent/reconcile/diff.js';
import { parsePrefix } from '../../../lib/ip/prefix.js';
import { silentLogger } from '../../../lib/log.js';
import { systemClock } from '../../../lib/retry.js';

describeRoot('vxlan backend on the real kernel', () => {
  let ns = '';
  let h: NetlinkHandle;
  const ip = (...a: string[]) => execFileSync('ip', ['-n', ns, ...a], { encoding: 'utf8' });
  const spec = (over: Partial<DeviceSpec> = {}): DeviceSpec => ({ name: 'twill.1', vni: 1, port: 8472, local: '10.99.0.1', link: 0, mtu: 1450, mac: deriveVtepMac('10.99.0.1', 1), gbp: false, ...over });

  beforeEach(() => {
    ns = `${uniquePrefix()}be`;
    execFileSync('ip', ['netns', 'add', ns]);
    ip('link', 'set', 'lo', 'up');
    ip('link', 'add', 'uplink', 'type', 'veth', 'peer', 'name', 'sink');
    ip('addr', 'add', '10.99.0.1/24', 'dev', 'uplink');
    ip('link', 'set', 'uplink', 'up');
    ip('link', 'set', 'sink', 'up');
    h = openHandle({ netnsPath: `/var/run/netns/${ns}` });
  });
  afterEach(() => {
    h?.close();
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  });

  async function up(): Promise<DeviceSpec> {
    const uplink = (await h.listLinks()).find((l) => l.name === 'uplink')!;
    const s = spec({ link: uplink.index });
    const first = await ensureDevice(h, s, silentLogger());
    expect(first.created).toBe(true);
    return s;
  }

  it('creates the device as specified and leaves a compatible one untouched', async () => {
    const s = await up();
    const out = ip('-d', 'link', 'show', 'twill.1');
    expect(out).toMatch(/vxlan id 1 local 10\.99\.0\.1 dev uplink .*dstport 8472 nolearning/);
    expect(out).toContain(`link/ether ${s.mac}`);
    expect(out).toContain('mtu 1450');
    const before = ip('-d', 'link', 'show', 'twill.1');
    const again = await ensureDevice(h, s, silentLogger());
    expect(again).toMatchObject({ created: false, fixed: false });
    expect(ip('-d', 'link', 'show', 'twill.1')).toBe(before);
  });

  it('fixes a device set down or resized in place, and says so', async () => {
    const s = await up();
    const idx = (await h.listLinks()).find((l) => l.name === 'twill.1')!.index;
    ip('link', 'set', 'twill.1', 'down');
    ip('link', 'set', 'twill.1', 'mtu', '1300');
    const r = await ensureDevice(h, s, silentLogger());
    expect(r).toMatchObject({ created: false, fixed: true, link: { index: idx, up: true, mtu: 1450 } });
    expect((await ensureDevice(h, s, silentLogger())).fixed).toBe(false);
  });

  it('recreates an incompatible device (other VNI port)', async () => {
    const s = await up();
    const idx = (await h.listLinks()).find((l) => l.name === 'twill.1')!.index;
    const r = await ensureDevice(h, { ...s, port: 4789 }, silentLogger());
    expect(r.created).toBe(true);
    expect(r.link.index).not.toBe(idx);
    expect(ip('-d', 'link', 'show', 'twill.1')).toMatch(/dstport 4789/);
  });

  it('programs peers so that a fresh kernel dump diffs to nothing', async () => {
    const s = await up();
    const dev = (await h.listLinks()).find((l) => l.name === 'twill.1')!;
    const table = new PeerTable({ network: parsePrefix('10.244.0.0/16'), subnetLen: 24, vni: 1 });
    table.setDevice({ index: dev.index, name: dev.name, mtu: dev.mtu, vni: 1, nexthops: await h.supportsNexthops() });
    table.setLocal('me', parsePrefix('10.244.0.0/24'));
    for (let i = 1; i <= 50; i++) {
      table.upsert({ key: `p${i}`, subnet: `10.244.${i}.0/24`, expiration: null, attrs: { publicIP: `10.99.0.${i + 1}`, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: `02:00:00:00:01:${i.toString(16).padStart(2, '0')}` } } });
    }
    const r = new Reconciler({ handle: h, logger: silentLogger(), clock: systemClock, desired: () => table.desired(), device: () => ({ index: dev.index, nexthops: true }) });
    r.request('all', 'start');
    const st = await r.runOnce();
    expect(st).toMatchObject({ ok: true, errors: 0, changes: 201 });
    const observed = await observeOwned(h, dev.index, true);
    const plan = diffState(table.desired(), observed);
    expect(plan.steps.map((x) => `${x.reason} ${x.entry.key}`)).toEqual([]);
    // Observed with the desired state at hand: equal entries are recorded as the desired ones, so
    // the cache keeps their sources (one per peer), not 201 parsed kernel objects.
    const cache = new ObservedState(await observeOwned(h, dev.index, true, table.desired()));
    expect(cache.size).toBe(table.desired().size);
    for (const k of cache.keys()) expect(cache.recorded(k, table.desired().get(k)!)).toBe(true);
    expect(ip('route', 'show', '10.244.7.0/24')).toMatch(/10\.244\.7\.0\/24 nhid \d+ via 10\.244\.7\.0 dev twill\.1 proto 116 onlink/);
    expect(ip('neigh', 'show', 'dev', 'twill.1')).toContain('10.244.7.0 lladdr 02:00:00:00:01:07 PERMANENT');
    expect(execFileSync('bridge', ['-n', ns, 'fdb', 'show', 'dev', 'twill.1'], { encoding: 'utf8' })).toContain('02:00:00:00:01:07 dst 10.99.0.8 self permanent');
    expect(s.name).toBe('twill.1');
  });
});
