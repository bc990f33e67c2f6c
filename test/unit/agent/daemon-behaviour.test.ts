// Daemon behaviour on the memory kernel + memory store: the periodic full resync and the
// overflow resync repairing changes that came with no notification, /metrics of a running
// daemon, readiness while the traffic rules cannot be installed, per-entry kernel failures, and
// run() rejecting with LEASE_LOST.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createServer } from 'node:net';
import type { MemoryKernel } from '../../../lib/netlink/memory.js';
import type { NetlinkHandle, NlEvent, NlEventGroup } from '../../../lib/netlink/types.js';
import { FakeTraffic, NETCONF, kernelWithUplink, mac, peerAttrs, peerState, start, stopRigs, memoryStore } from './daemon-fixture.js';

/**
 * The memory kernel emits a notification for every change, and external()/remove() have no
 * silent mode. A real kernel does change state without telling (cascaded deletions, dropped
 * notifications), so this handle passes the kernel through unchanged but, while muted, drops
 * the notifications the daemon would receive (overflow events still get through).
 */
function muteable(k: MemoryKernel): { handle: NetlinkHandle; mute: (on: boolean) => void } {
  let muted = false;
  async function* filtered(groups: readonly NlEventGroup[], signal: AbortSignal): AsyncIterable<NlEvent> {
    for await (const ev of k.watch(groups, signal)) if (ev.type === 'overflow' || !muted) yield ev;
  }
  const handle = new Proxy(k, {
    get(target, prop) {
      if (prop === 'watch') return filtered;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  }) as NetlinkHandle;
  return { handle, mute: (on) => { muted = on; } };
}

afterEach(stopRigs);

/** peerState with the FDB narrowed to this peer's entry (several peers share the device). */
async function peerEntries(k: MemoryKernel, subnet: string) {
  const p = await peerState(k, subnet);
  const m = mac(Number(subnet.split('.')[2]));
  return { ...p, fdb: p.fdb.filter((n) => n.ip !== undefined && n.mac === m) };
}
const complete = (p: Awaited<ReturnType<typeof peerEntries>>) => p.route !== undefined && p.arp !== undefined && p.fdb.length === 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One sample's value from Prometheus text (`name{labels} value`). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A port that was free a moment ago (bound on 127.0.0.1, then released). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r, j) => { s.once('error', j); s.listen(0, '127.0.0.1', () => r()); });
  const { port } = s.address() as { port: number };
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe('Daemon resync', () => {
  it('the periodic full resync (--resync-interval) repairs a change that came with no notification', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const k = kernelWithUplink();
    const { handle, mute } = muteable(k);
    const { d } = await start({ k, handle, sm, args: ['--resync-interval', '1'] });
    expect(complete(await peerEntries(k, '10.244.5.0/24'))).toBe(true);
    mute(true);
    const before = await peerEntries(k, '10.244.5.0/24');
    k.remove({ kind: 'route', ...before.route! });
    k.remove({ kind: 'neigh', ...before.arp! });
    expect((await peerEntries(k, '10.244.5.0/24')).route).toBeUndefined();
    await vi.waitFor(async () => expect(complete(await peerEntries(k, '10.244.5.0/24'))).toBe(true), { timeout: 4000, interval: 20 });
    expect(d.status.repairs).toMatchObject({ route: 1, arp: 1 });
    expect(d.status.lastReconcile?.trigger).toMatch(/resync/);
  });

  it('a notification overflow makes it dump the kernel and repair what it missed, without waiting for the resync', async () => {
    const sm = memoryStore({ config: NETCONF });
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    const k = kernelWithUplink();
    const { handle, mute } = muteable(k);
    const { d } = await start({ k, handle, sm });   // --resync-interval: the default 300 s
    mute(true);
    const before = await peerEntries(k, '10.244.5.0/24');
    k.remove({ kind: 'route', ...before.route! });
    k.remove({ kind: 'neigh', ...before.fdb[0]! });
    await sleep(300);
    expect(await peerEntries(k, '10.244.5.0/24')).toMatchObject({ route: undefined, fdb: [] });   // nobody told it
    mute(false);
    k.overflow();
    await vi.waitFor(async () => expect(complete(await peerEntries(k, '10.244.5.0/24'))).toBe(true), { timeout: 2000, interval: 10 });
    expect(d.status.repairs).toMatchObject({ route: 1, fdb: 1 });
    expect(d.status.lastReconcile?.trigger).toMatch(/overflow/);
  });
});

describe('Daemon /metrics', () => {
  it('serves the peer gauges, invalid-lease counter and latency histograms of a running daemon', async () => {
    const port = await freePort();
    const { d, sm } = await start({ args: ['--healthz-ip', '127.0.0.1', '--healthz-port', String(port)] });
    const scrape = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
      return res.text();
    };
    const base = await scrape();
    const latency0 = sample(base, 'twill_lease_event_to_programmed_seconds_count')!;
    expect(sample(base, 'twill_peers{state="valid"}')).toBe(0);
    expect(sample(base, 'twill_reconcile_duration_seconds_count')).toBeGreaterThanOrEqual(1);   // the start-up pass
    expect(sample(base, 'twill_ready')).toBe(1);

    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    // Invalid: an entry that does not decode, and a lease that decodes but fails validation.
    sm.putRaw('10.244.6.0-24', '{"PublicIP": "192.0.2.6", "BackendType": ');
    sm.putLease({ subnet: '10.244.7.0/24', attrs: { ...peerAttrs(7), publicIP: '224.0.0.7' } });
    await vi.waitFor(() => expect(d.snapshot().peers.map((p) => p.state).sort()).toEqual(['invalid', 'invalid', 'programmed']), { timeout: 10_000, interval: 10 });
    await vi.waitFor(async () => expect(sample(await scrape(), 'twill_lease_event_to_programmed_seconds_count')).toBe(latency0 + 3), { timeout: 10_000, interval: 20 });

    const text = await scrape();
    expect(sample(text, 'twill_peers{state="valid"}')).toBe(1);
    expect(sample(text, 'twill_peers{state="invalid"}')).toBe(2);
    expect(sample(text, 'twill_peers{state="programmed"}')).toBe(1);
    expect(sample(text, 'twill_invalid_leases_total{reason="decode"}')).toBe(1);
    expect(sample(text, 'twill_invalid_leases_total{reason="public-ip"}')).toBe(1);
    expect(text.match(/^twill_invalid_leases_total\{/gm)).toHaveLength(2);
    const reconciles = sample(text, 'twill_reconcile_duration_seconds_count')!;
    expect(reconciles).toBeGreaterThan(sample(base, 'twill_reconcile_duration_seconds_count')!);
    expect(reconciles).toBe(sample(text, 'twill_reconciles_total{result="ok"}')! + sample(text, 'twill_reconciles_total{result="error"}')!);
    expect(sample(text, 'twill_reconcile_duration_seconds_bucket{le="+Inf"}')).toBe(reconciles);
    expect(sample(text, 'twill_reconcile_duration_seconds_sum')).toBeGreaterThan(0);
    expect(sample(text, 'twill_lease_event_to_programmed_seconds_bucket{le="+Inf"}')).toBe(latency0 + 3);
    expect(sample(text, 'twill_lease_event_to_programmed_seconds_bucket{le="10"}')).toBe(latency0 + 3);   // well under 10 s
    expect(sample(text, 'twill_lease_event_to_programmed_seconds_sum')).toBeGreaterThanOrEqual(0);
  });
});

describe('Daemon readiness', () => {
  it('is not ready, with the reason, while the traffic rules cannot be installed; ready once they can', async () => {
    const traffic = new FakeTraffic();
    traffic.failing = 'nft: Operation not permitted';
    const { d } = await start({ traffic, args: ['--iptables-resync', '1'], waitReady: false });
    await vi.waitFor(() => expect(d.status.conditions.firstReconcile && d.status.conditions.subnetFile).toBe(true), { timeout: 5000, interval: 10 });
    await sleep(1300);   // past one --iptables-resync retry
    expect(d.status.ready).toBe(false);
    expect(d.status.conditions.trafficRules).toBe(false);
    expect(d.status.notReadyReasons).toEqual(['traffic rules: nft: Operation not permitted']);
    traffic.failing = undefined;
    await vi.waitFor(() => expect(d.status.ready).toBe(true), { timeout: 4000, interval: 20 });
    expect(d.status.notReadyReasons).toEqual([]);
    expect(traffic.specs.at(-1)).toMatchObject({ network: '10.244.0.0/16', subnet: d.status.lease.subnet });
  });
});

describe('Daemon kernel failures', () => {
  it('a refused entry leaves the other peers programmed, is retried until it succeeds, and is counted', async () => {
    const { k, d, sm } = await start();
    // The kernel refuses the route of peer 6 three times (EINVAL), then accepts it: retries
    // back off 0.5 s, 1 s, 2 s (±20 %), so the route stays missing for ≥ 2.8 s after the first.
    k.failNext((c) => c.object.kind === 'route' && c.object.dst === '10.244.6.0/24' && c.verb !== 'delete', 22, 3);
    sm.putLease({ subnet: '10.244.5.0/24', attrs: peerAttrs(5) });
    sm.putLease({ subnet: '10.244.6.0/24', attrs: peerAttrs(6) });
    const errors = async () => sample(await d.metrics.text(), 'twill_netlink_errors_total{op="replace-route"}') ?? 0;
    await vi.waitFor(async () => expect(await errors()).toBeGreaterThanOrEqual(1), { timeout: 4000, interval: 10 });
    expect(complete(await peerEntries(k, '10.244.5.0/24'))).toBe(true);
    const six = await peerEntries(k, '10.244.6.0/24');
    expect([six.route, six.arp !== undefined, six.fdb.length]).toEqual([undefined, true, 1]);   // only the refused entry is missing
    expect(d.snapshot().peers.map((p) => [p.subnet, p.state])).toEqual(expect.arrayContaining([['10.244.5.0/24', 'programmed'], ['10.244.6.0/24', 'pending']]));
    await vi.waitFor(async () => expect((await peerEntries(k, '10.244.6.0/24')).route).toBeDefined(), { timeout: 10_000, interval: 20 });
    expect(await errors()).toBe(3);
    expect(d.snapshot().peers.map((p) => p.state)).toEqual(['programmed', 'programmed']);
    expect(complete(await peerEntries(k, '10.244.5.0/24'))).toBe(true);
  }, 20_000);
});

describe('Daemon lease loss', () => {
  it('run() rejects with LEASE_LOST when our lease vanished and another node now holds the subnet', async () => {
    const { d, sm, done } = await start();
    const subnet = d.status.lease.subnet!;
    sm.removeLease(subnet);
    sm.putLease({ subnet, attrs: peerAttrs(9) });          // someone else took it
    const outcome = await Promise.race([done.then(() => 'resolved', (err: unknown) => err), sleep(3000).then(() => 'still running')]);
    expect(outcome).toMatchObject({ code: 'LEASE_LOST', message: expect.stringContaining(subnet) });
    expect(sm.leases().filter((l) => l.attrs.publicIP === '192.0.2.1')).toEqual([]);   // gave the new lease back
    expect(sm.leases().find((l) => l.subnet === subnet)?.attrs.publicIP).toBe('192.0.2.9');
  });
});
