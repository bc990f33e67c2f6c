// The whole daemon against the in-memory kernel and the in-memory lease store: start-up,
// lease events, repair of kernel entries deleted by someone else, device recreation, removal
// of stale entries left from before a restart, and bad peer leases never reaching the kernel.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { RTPROT_TWILL, NUD_PERMANENT } from '../../../lib/netlink/types.js';
import { createLogger, silentLogger } from '../../../lib/log.js';
import { NETCONF, dev, kernelWithUplink, mac, peerAttrs, peerState, start, stopRigs, memoryStore } from './daemon-fixture.js';

afterEach(stopRigs);

describe('Daemon (memory kernel + memory store)', () => {
  it('creates the device, programs every peer and writes subnet.env', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const { k, d, dir, traffic } = await start({ sm });
    const link = await dev(k);
    expect(link).toMatchObject({ type: 'vxlan', mtu: 1450, up: true, vxlan: { vni: 1, port: 8472, local: '192.0.2.1', learning: false } });
    const p = await peerState(k, '10.244.5.0/24');
    expect(p.route).toMatchObject({ nhid: expect.any(Number), protocol: RTPROT_TWILL });
    expect(p.arp).toMatchObject({ mac: mac(5), state: NUD_PERMANENT });
    expect(p.fdb).toEqual([expect.objectContaining({ mac: mac(5), ip: '192.0.2.5' })]);
    expect(p.nexthops).toEqual([expect.objectContaining({ gateway: '10.244.5.0', onlink: true, ifindex: link!.index })]);
    const subnet = d.status.lease.subnet!;
    const env = readFileSync(join(dir, 'subnet.env'), 'utf8');
    expect(env).toContain('FLANNEL_NETWORK=10.244.0.0/16\n');
    expect(env).toContain(`FLANNEL_SUBNET=${subnet.replace('.0/24', '.1/24')}\n`);
    expect(env).toContain('FLANNEL_MTU=1450\n');
    expect(env).toContain('FLANNEL_IPMASQ=false\n');
    expect(traffic.specs.at(-1)).toEqual({ network: '10.244.0.0/16', subnet, masquerade: false });
    expect(d.snapshot().peers).toEqual([expect.objectContaining({ subnet: '10.244.5.0/24', state: 'programmed' })]);
  });

  it('follows peers joining and leaving', async () => {
    const { k, sm } = await start();
    sm.putLease({ subnet: '10.244.7.0/24', attrs: peerAttrs(7) });
    await vi.waitFor(async () => expect((await peerState(k, '10.244.7.0/24')).route).toBeDefined(), { timeout: 2000, interval: 10 });
    sm.removeLease('10.244.7.0/24');
    await vi.waitFor(async () => {
      const p = await peerState(k, '10.244.7.0/24');
      expect([p.route, p.arp, p.fdb.length, p.nexthops.length]).toEqual([undefined, undefined, 0, 0]);
    }, { timeout: 2000, interval: 10 });
  });

  it('repairs entries someone else deletes, and counts the repairs', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const { k, d } = await start({ sm });
    const before = await peerState(k, '10.244.5.0/24');
    k.remove({ kind: 'route', ...before.route! });
    k.remove({ kind: 'neigh', ...before.arp! });
    k.remove({ kind: 'neigh', ...before.fdb[0]! });
    await vi.waitFor(async () => {
      const p = await peerState(k, '10.244.5.0/24');
      expect(p.route && p.arp && p.fdb.length).toBeTruthy();
    }, { timeout: 1000, interval: 10 });
    expect(d.status.repairs).toMatchObject({ route: 1, arp: 1, fdb: 1 });
  });

  it('recreates a deleted device and replays every peer', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const { k, d } = await start({ sm });
    const old = await dev(k);
    k.remove({ kind: 'link', name: 'twill.1', index: old!.index });
    await vi.waitFor(async () => {
      const link = await dev(k);
      expect(link && link.index !== old!.index && link.mac === old!.mac).toBe(true);
      expect((await peerState(k, '10.244.5.0/24')).route).toBeDefined();
    }, { timeout: 1000, interval: 10 });
    expect(d.status.repairs.device).toBe(1);
  });

  it('removes owned entries nobody wants at start (peers that left while it was down), keeps foreign ones', async () => {
    const k = kernelWithUplink();
    const dir = mkdtempSync(join(tmpdir(), 'twill-daemon-'));
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    sm.putLease({ subnet: '10.244.6.0/24', attrs: peerAttrs(6) });
    const first = await start({ k, sm, dir });
    await first.stop();
    sm.removeLease('10.244.6.0/24');
    k.external([{ verb: 'create', object: { kind: 'route', family: 4, dst: '198.51.100.0/24', ifindex: 2, protocol: 4 } }]);
    await start({ k, sm, dir });
    expect((await peerState(k, '10.244.6.0/24')).route).toBeUndefined();
    expect((await peerState(k, '10.244.5.0/24')).route).toBeDefined();
    expect((await k.listRoutes({})).some((r) => r.dst === '198.51.100.0/24')).toBe(true);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the same subnet and changes nothing in the kernel across a restart', async () => {
    const k = kernelWithUplink();
    const dir = mkdtempSync(join(tmpdir(), 'twill-daemon-'));
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const first = await start({ k, sm, dir });
    const subnet = first.d.status.lease.subnet;
    await first.stop();
    const calls = k.applyCalls;
    const second = await start({ k, sm, dir });
    expect(second.d.status.lease.subnet).toBe(subnet);
    expect(k.applyCalls).toBe(calls);   // not a single kernel change
    rmSync(dir, { recursive: true, force: true });
  });

  it('never programs invalid peer leases, and reports them', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: { ...peerAttrs(5), publicIP: '224.0.0.5' } });
    const { k, d } = await start({ sm });
    expect((await peerState(k, '10.244.5.0/24')).route).toBeUndefined();
    expect(d.snapshot().peers).toEqual([expect.objectContaining({ state: 'invalid', reason: expect.stringContaining('224.0.0.5') })]);
  });

  it('is not ready with a reason while the network config is missing, then recovers', async () => {
    const sm = memoryStore({});
    const { d } = await start({ sm, waitReady: false });
    await vi.waitFor(() => expect(d.status.notReadyReasons.join('\n')).toMatch(/network config/), { timeout: 2000, interval: 10 });
    expect(d.status.ready).toBe(false);
    sm.setConfig(NETCONF);
    await vi.waitFor(() => expect(d.status.ready).toBe(true), { timeout: 5000, interval: 20 });
  });

  it('reports a config changed or broken in the store once, keeps running on its own, and stays ready', async () => {
    const sm = memoryStore({ config: NETCONF });
    const warnings: string[] = [];
    const dest = new Writable({ write(chunk: Buffer, _e, cb) { const l = JSON.parse(chunk.toString()) as { level: number; msg: string }; if (l.level === 40) warnings.push(l.msg); cb(); } });
    const { d } = await start({ sm, logger: createLogger('info', 'twill', dest) });
    sm.setConfig(JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1 } }, null, 2));   // reformatted only
    sm.setConfig(JSON.stringify({ Network: '10.245.0.0/16', Backend: { Type: 'vxlan', VNI: 1 } }));
    await vi.waitFor(() => expect(warnings.join('\n')).toMatch(/config in the store changed: network "10\.244\.0\.0\/16" → "10\.245\.0\.0\/16".*restart it/), { timeout: 12_000, interval: 50 });
    sm.setConfig('{"Network": 42}');
    await vi.waitFor(() => expect(warnings.join('\n')).toMatch(/config in the store is now invalid \(.*Network.*\)/), { timeout: 12_000, interval: 50 });
    expect(warnings.filter((w) => /changed: network/.test(w))).toHaveLength(1);   // once, not every probe
    expect(d.status.ready).toBe(true);
    expect(d.status.conditions.store).toBe(true);
  }, 30_000);

  it('an IPv6-only config keeps it running and not ready with the reason (no crash loop), until an IPv4 network arrives', async () => {
    const sm = memoryStore({ config: JSON.stringify({ EnableIPv4: false, EnableIPv6: true, IPv6Network: 'fd00:10::/56', Backend: { Type: 'vxlan' } }) });
    const { d, done } = await start({ sm, waitReady: false });
    let ended = false;
    void done.then(() => { ended = true; }, () => { ended = true; });
    await vi.waitFor(() => expect(d.status.notReadyReasons.join('\n')).toMatch(/Network.*an IPv4 network is required/), { timeout: 2000, interval: 10 });
    await new Promise((r) => setTimeout(r, 700));   // past the first retry: still running, still not ready
    expect(ended).toBe(false);
    expect(d.status.ready).toBe(false);
    sm.setConfig(NETCONF);
    await vi.waitFor(() => expect(d.status.ready).toBe(true), { timeout: 20_000, interval: 20 });
  }, 30_000);
});

describe('LeaseKeeper', () => {
  it('exits when our subnet went to another node, after giving the new lease back', async () => {
    const { LeaseKeeper } = await import('../../../agent/lease-keeper.js');
    const sm = memoryStore({ config: JSON.stringify({ Network: '10.244.0.0/22', SubnetLen: 24 }) });
    const attrs = peerAttrs(1);
    const keeper = new LeaseKeeper({ sm, attrs, clock: { now: () => Date.now(), sleep: async () => undefined }, logger: silentLogger(), renewMarginMs: 0, onProblem: () => undefined, onLease: () => undefined });
    const ctl = new AbortController();
    const mine = await keeper.acquire(undefined, ctl.signal);
    sm.removeLease(mine.subnet);
    sm.putLease({ subnet: mine.subnet, attrs: peerAttrs(9) });         // someone else took it
    await expect(keeper.reacquire(ctl.signal)).rejects.toMatchObject({ code: 'LEASE_LOST' });
    expect(sm.leases().filter((l) => l.attrs.publicIP === attrs.publicIP)).toEqual([]);
  });
});

describe('Daemon kernel events', () => {
  it('restores a route the kernel dropped silently with its nexthop', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const { k } = await start({ sm });
    const nh = (await k.listNexthops())[0]!;
    k.remove({ kind: 'nexthop', ...nh });
    await vi.waitFor(async () => {
      const p = await peerState(k, '10.244.5.0/24');
      expect(p.nexthops.length === 1 && p.route !== undefined).toBe(true);
    }, { timeout: 1000, interval: 10 });
  });

  it('removes a foreign route on the twill device (everything on it is ours)', async () => {
    const { k } = await start();
    const d = await dev(k);
    k.external([{ verb: 'create', object: { kind: 'route', family: 4, dst: '10.99.0.0/24', ifindex: d!.index, protocol: 4, scope: 253 } }]);
    await vi.waitFor(async () => expect((await k.listRoutes({})).some((r) => r.dst === '10.99.0.0/24')).toBe(false), { timeout: 1000, interval: 10 });
  });
});

describe('Daemon traffic rules', () => {
  it('restores traffic rules someone removed within --iptables-resync', async () => {
    const { traffic } = await start({ args: ['--iptables-resync', '1'] });
    const want = traffic.specs.at(-1);
    await traffic.remove();                       // someone flushed our table
    await vi.waitFor(() => expect(traffic.specs.at(-1)).toEqual(want), { timeout: 2500, interval: 50 });
  });
});

describe('lease keeping', () => {
  it('renews the lease ahead of the margin', async () => {
    const { LeaseKeeper } = await import('../../../agent/lease-keeper.js');
    const sm = memoryStore({ config: NETCONF, leaseTtlMs: 600 });
    const seen: number[] = [];
    const keeper = new LeaseKeeper({ sm, attrs: peerAttrs(1), clock: { now: () => Date.now(), sleep: (ms, s) => new Promise((r, j) => { const t = setTimeout(r, ms); s?.addEventListener('abort', () => { clearTimeout(t); j(new Error('aborted')); }); }) },
      logger: silentLogger(), renewMarginMs: 400, onProblem: () => undefined, onLease: (l) => seen.push(l.expiration!) });
    const ctl = new AbortController();
    await keeper.acquire(undefined, ctl.signal);
    const renewing = keeper.runRenewals(ctl.signal).catch(() => undefined);
    await vi.waitFor(() => expect(seen.length).toBeGreaterThanOrEqual(3), { timeout: 2000, interval: 20 });
    expect(seen[2]!).toBeGreaterThan(seen[0]!);
    expect(sm.leases()).toHaveLength(1);            // renewed in place, never expired
    ctl.abort();
    await renewing;
  });

  it('takes its own vanished lease back without touching the kernel', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const { k, d } = await start({ sm });
    const subnet = d.status.lease.subnet!;
    const calls = k.applyCalls;
    sm.removeLease(subnet);
    await vi.waitFor(() => expect(sm.leases().map((l) => l.subnet)).toContain(subnet), { timeout: 2000, interval: 10 });
    expect(d.status.lease.subnet).toBe(subnet);
    expect(k.applyCalls).toBe(calls);
  });
});

describe('DirectRouting', () => {
  it('routes peers on the underlay segment directly, the others over VXLAN', async () => {
    const sm = memoryStore({ config: JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', DirectRouting: true } }) });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });                                  // 192.0.2.5: same /24 as our uplink
    sm.putLease({ subnet: '10.244.6.0/24', attrs: { ...peerAttrs(6), publicIP: '198.51.100.6' } });  // elsewhere
    const { k } = await start({ sm });
    const nhs = await k.listNexthops();
    expect(nhs.find((n) => n.gateway === '192.0.2.5')).toMatchObject({ ifindex: 2, onlink: false });
    expect(nhs.find((n) => n.gateway === '10.244.6.0')).toMatchObject({ onlink: true });
    const near = await peerState(k, '10.244.5.0/24');
    expect(near.arp).toBeUndefined();
    expect((await peerState(k, '10.244.6.0/24')).arp).toBeDefined();
  });
});
