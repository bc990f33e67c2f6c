// EtcdSubnetManager against a real etcd 3.4 on loopback (no root needed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdSubnetManager, type EtcdSubnetManagerOptions } from '../../../lib/subnet/etcd.js';
import type { Lease, LeaseAttrs, LeaseEvent } from '../../../lib/subnet/types.js';
import { isTwillError, type TwillError } from '../../../lib/errors.js';
import { startEtcd, type EtcdHandle } from '../../util/etcd.js';

const attrs = (ip: string, mac = '0a:58:00:00:00:01'): LeaseAttrs => ({
  publicIP: ip, publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac }, backendV6Data: null,
});
const sig = () => new AbortController().signal;
let seq = 0;
const uniquePrefix = () => `/twtest-${process.pid}-${++seq}/network`;

let etcd: EtcdHandle;
const managers: EtcdSubnetManager[] = [];

function manager(prefix: string, o: Partial<EtcdSubnetManagerOptions> = {}, on: EtcdHandle = etcd): EtcdSubnetManager {
  const m = new EtcdSubnetManager({ endpoints: [on.endpoint], prefix, ...o });
  managers.push(m);
  return m;
}

async function put(key: string, value: string, leaseTtl?: number): Promise<void> {
  if (leaseTtl === undefined) { await etcd.ctl(['put', key, value]); return; }
  const id = /lease ([0-9a-f]+) granted/.exec(await etcd.ctl(['lease', 'grant', String(leaseTtl)]))?.[1];
  await etcd.ctl(['put', `--lease=${id}`, key, value]);
}

async function setConfig(prefix: string, conf: object): Promise<void> {
  await put(`${prefix}/config`, JSON.stringify(conf));
}

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Collects watch events in the background. */
function collect(m: EtcdSubnetManager) {
  const ac = new AbortController();
  const events: { at: number; ev: LeaseEvent }[] = [];
  const done = (async () => { for await (const ev of m.watchLeases(ac.signal)) events.push({ at: Date.now(), ev }); })();
  return {
    events: () => events.map((e) => e.ev),
    timed: events,
    find: <T extends LeaseEvent['type']>(type: T, pred: (ev: Extract<LeaseEvent, { type: T }>) => boolean = () => true, from = 0) =>
      events.slice(from).map((e) => e.ev).find((ev): ev is Extract<LeaseEvent, { type: T }> => ev.type === type && pred(ev as Extract<LeaseEvent, { type: T }>)),
    stop: async () => { ac.abort(); await done; },
  };
}

beforeAll(async () => { etcd = await startEtcd(); });
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
  await etcd?.stop();
});

describe('EtcdSubnetManager (real etcd)', () => {
  it('reads the network config: missing, invalid, valid', async () => {
    const prefix = uniquePrefix();
    const m = manager(prefix);
    await expect(m.getNetworkConfig(sig())).rejects.toSatisfy((e: TwillError) => isTwillError(e, 'CONFIG_MISSING') && e.message.includes(`${prefix}/config`));
    await setConfig(prefix, { Network: '10.244.0.0/16', SubnetLen: 33 });
    await expect(m.getNetworkConfig(sig())).rejects.toSatisfy((e: TwillError) =>
      isTwillError(e, 'CONFIG_INVALID') && e.message === `${prefix}/config: SubnetLen: 33 is invalid: must be an integer 0..32`);
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    expect(await m.getNetworkConfig(sig())).toMatchObject({ network: '10.244.0.0/16', subnetLen: 24 });
  });

  it('acquires (flannel format), renews, reuses by PublicIP without rewriting, updates changed attributes', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    const m = manager(prefix, { leaseTtlSec: 600 });
    const t0 = Date.now();
    const l = await m.acquireLease(attrs('192.0.2.10'), { signal: sig() });
    expect(l.subnet).toMatch(/^10\.244\.\d+\.0\/24$/);
    expect(l.key).toBe(`${prefix}/subnets/${l.subnet.replace('/', '-')}`);
    expect(l.expiration! - t0).toBeGreaterThan(590_000);
    const raw = await etcd.ctl(['get', l.key, '-w', 'json']);
    const kv = (JSON.parse(raw) as { kvs: { value: string; mod_revision: number }[] }).kvs[0]!;
    expect(JSON.parse(Buffer.from(kv.value, 'base64').toString())).toEqual({
      PublicIP: '192.0.2.10', PublicIPv6: null, BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '0a:58:00:00:00:01' },
    });
    expect(/"lease":(\d+)/.exec(raw)?.[1]).toBe(l.leaseId); // int64: not through JSON.parse
    // renew
    const r = await m.renewLease(l, sig());
    expect(r.expiration).toBeGreaterThanOrEqual(l.expiration!);
    // a restarted agent (new manager) with the same IP gets the same subnet and etcd lease, no write
    const m2 = manager(prefix, { leaseTtlSec: 600 });
    const again = await m2.acquireLease(attrs('192.0.2.10'), { previousSubnet: '10.244.200.0/24', signal: sig() });
    expect(again).toMatchObject({ subnet: l.subnet, key: l.key, leaseId: l.leaseId });
    const after = JSON.parse(await etcd.ctl(['get', l.key, '-w', 'json'])) as { kvs: { mod_revision: number }[] };
    expect(after.kvs[0]!.mod_revision).toBe(kv.mod_revision);
    // a new VTEP MAC is written, subnet kept
    const mac2 = await m2.acquireLease(attrs('192.0.2.10', '0a:58:00:00:00:02'), { signal: sig() });
    expect(mac2.subnet).toBe(l.subnet);
    expect(await etcd.ctl(['get', l.key, '--print-value-only'])).toContain('0a:58:00:00:00:02');
    await m2.releaseLease(mac2, sig());
    expect(await etcd.ctl(['get', l.key])).toBe('');
  });

  it('honours previousSubnet when free, picks another when taken', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    const m = manager(prefix);
    const a = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: '10.244.77.0/24', signal: sig() });
    expect(a.subnet).toBe('10.244.77.0/24');
    const b = await m.acquireLease(attrs('192.0.2.2'), { previousSubnet: '10.244.77.0/24', signal: sig() });
    expect(b.subnet).not.toBe('10.244.77.0/24');
  });

  it('reservations: never taken by others, used without a lease by their owner', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.250.0.0/16', SubnetMin: '10.250.1.0', SubnetMax: '10.250.2.0' });
    await put(`${prefix}/subnets/10.250.1.0-24`, JSON.stringify({ PublicIP: '192.0.2.50', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '0a:58:00:00:00:50' } }));
    const m = manager(prefix);
    const other = await m.acquireLease(attrs('192.0.2.1'), { previousSubnet: '10.250.1.0/24', signal: sig() });
    expect(other.subnet).toBe('10.250.2.0/24');
    await expect(m.acquireLease(attrs('192.0.2.3'), { signal: sig() })).rejects.toSatisfy((e) => isTwillError(e, 'SUBNETS_EXHAUSTED'));
    const owner = await m.acquireLease(attrs('192.0.2.50', '0a:58:00:00:00:51'), { signal: sig() });
    expect(owner).toMatchObject({ subnet: '10.250.1.0/24', expiration: null });
    expect(owner.leaseId).toBeUndefined();
    const json = JSON.parse(await etcd.ctl(['get', owner.key, '-w', 'json'])) as { kvs: { lease?: number; value: string }[] };
    expect(json.kvs[0]!.lease ?? 0).toBe(0);
    expect(Buffer.from(json.kvs[0]!.value, 'base64').toString()).toContain('0a:58:00:00:00:51');
    expect(await m.renewLease(owner, sig())).toMatchObject({ expiration: null });
    await m.releaseLease(owner, sig());
    expect(await etcd.ctl(['get', owner.key, '--print-value-only'])).toContain('192.0.2.50');
  });

  it('watch: snapshot, added, invalid, deleted → removed, TTL expiry → removed; renew → LEASE_LOST; expiry looked up for our own leases only', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    await put(`${prefix}/subnets/10.244.9.0-24`, '{"PublicIP":', 600);
    const peerMgr = manager(prefix, { leaseTtlSec: 600 });
    const peer = await peerMgr.acquireLease(attrs('192.0.2.20'), { previousSubnet: '10.244.20.0/24', signal: sig() });
    const own = manager(prefix, { leaseTtlSec: 600 });
    const w = collect(own);
    const snap = await until('snapshot', () => w.find('snapshot'));
    expect(snap.leases.map((l) => l.subnet)).toEqual(['10.244.20.0/24']);
    expect(snap.leases[0]!.expiration).toBeUndefined();   // a peer's etcd lease: not looked up
    expect(snap.leases[0]!.leaseId).toBe(peer.leaseId);
    const mine = await own.acquireLease(attrs('192.0.2.19'), { previousSubnet: '10.244.19.0/24', signal: sig() });
    const seen = await until('own lease', () => w.find('added', (e) => e.lease.key === mine.key));
    expect(seen.lease.expiration! - Date.now()).toBeGreaterThan(590_000);   // ours: looked up
    expect(snap.invalid).toMatchObject([{ key: `${prefix}/subnets/10.244.9.0-24`, reason: expect.stringContaining('not JSON') }]);
    // Lease.created is the key's create revision (etcdctl prints it as a number).
    const rev = Number(/"create_revision":(\d+)/.exec(await etcd.ctl(['get', peer.key, '-w', 'json']))?.[1]);
    expect(snap.leases[0]!.created).toBe(rev);

    const short = manager(prefix, { leaseTtlSec: 2 });
    const t0 = Date.now();
    const eph = await short.acquireLease(attrs('192.0.2.21'), { previousSubnet: '10.244.21.0/24', signal: sig() });
    const added = await until('added', () => w.find('added', (e) => e.lease.key === eph.key));
    expect(added.lease.attrs.publicIP).toBe('192.0.2.21');
    expect(added.lease.expiration).toBeUndefined();
    expect(eph.expiration! - t0).toBeLessThanOrEqual(2500);
    await until('expiry → removed', () => w.find('removed', (e) => e.lease.key === eph.key), 8000);
    await expect(short.renewLease(eph, sig())).rejects.toSatisfy((e: TwillError) => isTwillError(e, 'LEASE_LOST') && e.message.includes('expired or was revoked'));
    // re-acquire after expiry keeps the subnet (it is free again)
    expect((await short.acquireLease(attrs('192.0.2.21'), { previousSubnet: eph.subnet, signal: sig() })).subnet).toBe(eph.subnet);

    await etcd.ctl(['del', peer.key]);
    const removed = await until('delete → removed', () => w.find('removed', (e) => e.lease.key === peer.key));
    expect(removed.lease.attrs.publicIP).toBe('192.0.2.20');
    await expect(peerMgr.renewLease(peer, sig())).rejects.toThrow(/lost: its key was deleted/);
    // a valid lease overwritten with garbage → removed + invalid
    const p2 = await peerMgr.acquireLease(attrs('192.0.2.22'), { signal: sig() });
    await until('added p2', () => w.find('added', (e) => e.lease.key === p2.key));
    const n = w.events().length;
    await put(p2.key, '[]', 600);
    await until('garbage → invalid', () => w.find('invalid', (e) => e.key === p2.key, n));
    expect(w.find('removed', (e) => e.lease.key === p2.key, n)).toBeDefined();
    // ... and the garbage deleted → 'deleted' naming the key, so its verdict can be forgotten
    await etcd.ctl(['del', p2.key]);
    await until('garbage deleted → deleted', () => w.find('deleted', (e) => e.key === p2.key, n));
    await etcd.ctl(['del', `${prefix}/subnets/10.244.9.0-24`]);
    await until('undecodable from the snapshot deleted → deleted', () => w.find('deleted', (e) => e.key === `${prefix}/subnets/10.244.9.0-24`));
    await w.stop();
  });

  it('looks up our own lease\'s TTL even when the watch sees the put before the create\'s answer arrives', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    const own = manager(prefix, { leaseTtlSec: 600 });
    // The txn's answer reaches the manager 300 ms late; its put reaches the watch at once.
    const client = (own as unknown as { client: { txn: (...a: unknown[]) => Promise<unknown> } }).client;
    const txn = client.txn.bind(client);
    client.txn = async (...a: unknown[]) => { const r = await txn(...a); await new Promise((res) => setTimeout(res, 300)); return r; };
    const w = collect(own);
    await until('snapshot', () => w.find('snapshot'));
    const mine = await own.acquireLease(attrs('192.0.2.30'), { signal: sig() });
    const seen = await until('own lease', () => w.find('added', (e) => e.lease.key === mine.key));
    expect(seen.lease.expiration! - Date.now()).toBeGreaterThan(590_000);
    await w.stop();
  });

  it('renewals and acquisitions on the same manager do not disturb its watch (no relist)', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    const m = manager(prefix, { leaseTtlSec: 60 });
    const w = collect(m);
    await until('snapshot', () => w.find('snapshot'));
    let l = await m.acquireLease(attrs('192.0.2.40'), { signal: sig() });
    for (let i = 0; i < 5; i++) l = await m.renewLease(l, sig());
    await m.acquireLease(attrs('192.0.2.40'), { signal: sig() });
    const other = await manager(prefix).acquireLease(attrs('192.0.2.41'), { signal: sig() });
    await until('peer added', () => w.find('added', (e) => e.lease.key === other.key));
    expect(w.events().filter((e) => e.type === 'snapshot')).toHaveLength(1);
    await w.stop();
  });

  it('relists (new snapshot) when the watch start revision was compacted', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.244.0.0/16' });
    let lists = 0;
    const m = manager(prefix, {
      afterList: async () => {
        if (++lists > 1) return;
        // Between the list and the watch: a new lease appears (twice) and history is compacted
        // past the revision the watch will start from.
        for (const mac of ['04', '05']) {
          await put(`${prefix}/subnets/10.244.5.0-24`, JSON.stringify({ PublicIP: '192.0.2.5', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: `0a:58:00:00:00:${mac}` } }), 600);
        }
        const rev = (JSON.parse(await etcd.ctl(['get', 'x', '-w', 'json'])) as { header: { revision: number } }).header.revision;
        await etcd.ctl(['compact', String(rev)]);
      },
    });
    const w = collect(m);
    const snaps = await until('second snapshot', () => { const s = w.events().filter((e) => e.type === 'snapshot'); return s.length >= 2 && s; });
    expect(lists).toBeGreaterThanOrEqual(2);
    expect((snaps[1] as Extract<LeaseEvent, { type: 'snapshot' }>).leases.map((l) => l.subnet)).toEqual(['10.244.5.0/24']);
    // and the watch works after the relist
    await put(`${prefix}/subnets/10.244.6.0-24`, JSON.stringify({ PublicIP: '192.0.2.6', BackendType: 'vxlan', BackendData: { VNI: 1, VtepMAC: '0a:58:00:00:00:06' } }), 600);
    await until('added after relist', () => w.find('added', (e) => e.lease.subnet === '10.244.6.0/24'));
    await w.stop();
  });

  it('recovers the watch within a few seconds after an etcd restart', async () => {
    const own = await startEtcd();
    try {
      const prefix = uniquePrefix();
      await own.ctl(['put', `${prefix}/config`, JSON.stringify({ Network: '10.244.0.0/16' })]);
      const m = manager(prefix, {}, own);
      const w = collect(m);
      await until('first snapshot', () => w.find('snapshot'));
      await own.halt();
      await new Promise((r) => setTimeout(r, 1500));
      await own.start();
      const up = Date.now();
      const snapAt = await until('snapshot after restart', () => w.timed.filter((e) => e.ev.type === 'snapshot')[1]?.at, 10_000);
      const recoveryMs = snapAt - up;
      console.log(`watch recovered ${recoveryMs} ms after etcd was healthy again`);
      expect(recoveryMs).toBeLessThan(5000);
      const l = await m.acquireLease(attrs('192.0.2.30'), { signal: sig() });
      await until('event after recovery', () => w.find('added', (e) => e.lease.key === l.key), 5000);
      await w.stop();
    } finally {
      await own.stop();
    }
  });

  it('a hung etcd (SIGSTOP) ends the watch through its liveness check; it relists once etcd answers', async () => {
    const own = await startEtcd();
    try {
      const prefix = uniquePrefix();
      await own.ctl(['put', `${prefix}/config`, JSON.stringify({ Network: '10.244.0.0/16' })]);
      const m = manager(prefix, { watchLivenessMs: 300, requestTimeoutMs: 1000 }, own);
      const w = collect(m);
      await until('first snapshot', () => w.find('snapshot'));
      own.pause();   // connections stay open: only a check that expects an answer notices
      await new Promise((r) => setTimeout(r, 2500));
      own.resume();
      const snapAt = await until('snapshot after the hang', () => w.timed.filter((e) => e.ev.type === 'snapshot')[1]?.at, 10_000);
      expect(snapAt).toBeGreaterThan(0);
      const l = await m.acquireLease(attrs('192.0.2.31'), { signal: sig() });
      await until('event after recovery', () => w.find('added', (e) => e.lease.key === l.key), 5000);
      await w.stop();
    } finally {
      own.resume();
      await own.stop();
    }
  });

  it('works under flannel\'s /coreos.com/network prefix and reads flannel-written leases (dual-stack key form too)', async () => {
    const prefix = '/coreos.com/network';
    await setConfig(prefix, { Network: '10.5.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:5::/48', Backend: { Type: 'vxlan' } });
    await put(`${prefix}/subnets/10.5.7.0-24&fd00:5:0:7::-64`, '{"PublicIP":"192.0.2.77","PublicIPv6":"2001:db8::77","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:02"}}', 600);
    const m = manager(prefix);
    const w = collect(m);
    const snap = await until('snapshot', () => w.find('snapshot'));
    expect(snap.leases).toHaveLength(1);
    expect(snap.leases[0]).toMatchObject({ subnet: '10.5.7.0/24', ipv6Subnet: 'fd00:5:0:7::/64', attrs: { publicIPv6: '2001:db8::77', backendV6Data: { VtepMAC: 'aa:bb:cc:dd:ee:02' } } });
    const mine = await m.acquireLease({ ...attrs('192.0.2.78'), publicIPv6: '2001:db8::78', backendV6Data: { VNI: 1, VtepMAC: '0a:58:00:00:00:78' } }, { signal: sig() });
    expect(mine.key).toMatch(/^\/coreos\.com\/network\/subnets\/10\.5\.\d+\.0-24&fd00:5:0:[0-9a-f]+::-64$/);
    expect(mine.subnet).not.toBe('10.5.7.0/24');
    expect(mine.ipv6Subnet).not.toBe('fd00:5:0:7::/64');
    await until('own added', () => w.find('added', (e) => e.lease.key === mine.key));
    await w.stop();
    await etcd.ctl(['del', '--prefix', `${prefix}/`]);
  });

  it('20 agents racing for 16 subnets: 16 distinct leases, 4 clear SUBNETS_EXHAUSTED errors', async () => {
    const prefix = uniquePrefix();
    await setConfig(prefix, { Network: '10.250.0.0/16', SubnetMin: '10.250.1.0', SubnetMax: '10.250.16.0' });
    const ms = Array.from({ length: 20 }, () => manager(prefix));
    const results = await Promise.allSettled(ms.map((m, i) => m.acquireLease(attrs(`192.0.2.${100 + i}`), { signal: sig() })));
    const ok = results.filter((r): r is PromiseFulfilledResult<Lease> => r.status === 'fulfilled').map((r) => r.value);
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as TwillError);
    expect(ok).toHaveLength(16);
    expect(new Set(ok.map((l) => l.subnet)).size).toBe(16);
    expect(failed).toHaveLength(4);
    for (const e of failed) {
      expect(e.code).toBe('SUBNETS_EXHAUSTED');
      expect(e.message).toContain('out of subnets: no free /24 left in Network 10.250.0.0/16 between SubnetMin 10.250.1.0 and SubnetMax 10.250.16.0: all 16 subnets in the range are taken');
    }
    const keys = (await etcd.ctl(['get', '--prefix', `${prefix}/subnets/`, '--keys-only'])).split('\n').filter(Boolean);
    expect(keys).toHaveLength(16);
    const ips = await Promise.all(keys.map(async (k) => JSON.parse(await etcd.ctl(['get', k, '--print-value-only'])).PublicIP as string));
    expect(new Set(ips).size).toBe(16);
  });

  it('honours the abort signal and reports an unreachable etcd as ETCD', async () => {
    const m = manager(uniquePrefix(), { requestTimeoutMs: 500 }, { ...etcd, endpoint: 'http://127.0.0.1:1' } as EtcdHandle);
    await expect(m.getNetworkConfig(sig())).rejects.toSatisfy((e: TwillError) => isTwillError(e, 'ETCD') && e.message.includes('127.0.0.1:1'));
    const ac = new AbortController();
    ac.abort();
    await expect(manager(uniquePrefix()).getNetworkConfig(ac.signal)).rejects.toSatisfy((e) => isTwillError(e, 'ABORTED'));
  });
});
