// The daemon's parts on their own, without a Daemon: readiness ordering, the periodic runner, the
// store probe's config-drift report, the heap's quiet rule.
import { describe, expect, it } from 'vitest';
import { silentLogger, type Logger } from '../../../lib/log.js';
import { TwillError } from '../../../lib/errors.js';
import { parseNetConf } from '../../../lib/config/net-conf.js';
import type { SubnetManager } from '../../../lib/subnet/types.js';
import { Readiness } from '../../../agent/readiness.js';
import { runEvery } from '../../../agent/periodic.js';
import { describeConfChange, StoreProbe } from '../../../agent/store-probe.js';
import { HeapCompactor } from '../../../agent/heap.js';

describe('Readiness', () => {
  const track = () => {
    const seen: { ready: boolean; reasons: string[] }[] = [];
    const r = new Readiness((ready, reasons) => seen.push({ ready, reasons }));
    r.refresh();
    return { r, last: () => seen.at(-1)! };
  };

  it('names the pending steps in start-up order while nothing failed, and is ready when all are done', () => {
    const { r, last } = track();
    expect(last().reasons[0]).toBe('underlay interface not selected yet');
    r.cond('interface', true);
    r.storeAnswered();
    r.cond('config', true);
    expect(last().reasons).toEqual(['no subnet lease yet', 'subnet file not written yet', 'first full reconcile not done yet', 'traffic rules not installed yet']);
    for (const c of ['lease', 'subnetFile', 'firstReconcile', 'trafficRules'] as const) r.cond(c, true);
    expect(last()).toEqual({ ready: true, reasons: [] });
  });

  it('lists only the failures, in start-up order, parts outside start-up last', () => {
    const { r, last } = track();
    r.problem('policy', 'network policies not enforced yet');
    r.problem('traffic', 'traffic rules: nft failed');
    r.storeFailed(new TwillError('ETCD', 'etcd down'));
    expect(last().reasons).toEqual(['lease store unreachable: etcd down', 'traffic rules: nft failed', 'network policies not enforced yet']);
    r.storeAnswered();
    r.problem('traffic', undefined);
    r.problem('policy', undefined);
    expect(last().reasons[0]).toBe('underlay interface not selected yet');
  });
});

describe('runEvery', () => {
  it('sleeps, then runs, until the signal aborts', async () => {
    const ctl = new AbortController();
    const sleeps: number[] = [];
    let runs = 0;
    const clock = { now: () => 0, sleep: async (ms: number, s?: AbortSignal) => { sleeps.push(ms); if (s?.aborted) throw new TwillError('ABORTED', 'aborted'); } };
    await expect(runEvery({ name: 't', everyMs: 7, run: () => { if (++runs === 3) ctl.abort(); } }, clock, ctl.signal)).rejects.toThrow(/aborted/);
    expect(runs).toBe(3);
    expect(sleeps).toEqual([7, 7, 7, 7]);
  });
});

describe('StoreProbe', () => {
  const conf = (network: string) => parseNetConf(JSON.stringify({ Network: network, Backend: { Type: 'vxlan' } }));

  it('reports each distinct config change once and keeps the store condition current', async () => {
    const warns: string[] = [];
    const log = { ...silentLogger(), warn: (...a: unknown[]) => warns.push(String(a.at(-1))) } as unknown as Logger;
    let answer: () => Promise<ReturnType<typeof conf>> = async () => conf('10.244.0.0/16');
    const sm = { getNetworkConfig: () => answer() } as unknown as SubnetManager;
    const r = new Readiness(() => undefined);
    const p = new StoreProbe(sm, conf('10.244.0.0/16'), r, log);
    await p.probe(new AbortController().signal);
    expect(r.conditions.store).toBe(true);
    expect(warns).toEqual([]);
    answer = async () => conf('10.245.0.0/16');
    await p.probe(new AbortController().signal);
    await p.probe(new AbortController().signal);
    expect(warns).toEqual([expect.stringContaining('changed: network "10.244.0.0/16" → "10.245.0.0/16"')]);
    answer = async () => { throw new TwillError('ETCD', 'connection refused'); };
    await p.probe(new AbortController().signal);
    expect(r.conditions.store).toBe(false);
    expect(warns.at(-1)).toBe('lease store unreachable; datapath unchanged');
  });

  it('describes a change field by field, ignoring the raw text', () => {
    expect(describeConfChange(conf('10.244.0.0/16'), { ...conf('10.244.0.0/16'), raw: '{ }' })).toBe('');
  });
});

describe('HeapCompactor.tick', () => {
  it('never compacts within 5 s of a reconcile; a wanted compaction waits for the quiet', () => {
    const h = new HeapCompactor(Number.MAX_SAFE_INTEGER);
    let compactions = 0;
    h.compact = () => { compactions++; return true; };
    h.wantCompaction();
    h.tick(10_000, 14_999);
    expect(compactions).toBe(0);
    h.tick(10_000, 15_000);
    expect(compactions).toBe(1);
    h.tick(10_000, 20_000);
    expect(compactions).toBe(1);
  });
});
