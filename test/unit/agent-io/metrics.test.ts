import { register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS, Metrics, REPAIR_KINDS } from '../../../agent/metrics.js';
import { notReadyStatus } from './fixture.js';

describe('Metrics', () => {
  it('uses its own registry, never the global default', async () => {
    const a = new Metrics({ defaultMetrics: false });
    const b = new Metrics({ defaultMetrics: false });
    a.repair('fdb', 3);
    expect(await a.text()).toContain('twill_kernel_repairs_total{kind="fdb"} 3');
    expect(await b.text()).toContain('twill_kernel_repairs_total{kind="fdb"} 0');
    expect(await globalRegistry.metrics()).not.toContain('twill_');
  });

  it('pre-sets known label values to zero', async () => {
    const text = await new Metrics({ defaultMetrics: false }).text();
    for (const k of REPAIR_KINDS) expect(text).toContain(`twill_kernel_repairs_total{kind="${k}"} 0`);
    for (const s of ['valid', 'invalid', 'programmed']) expect(text).toContain(`twill_peers{state="${s}"} 0`);
    expect(text).toContain('twill_reconciles_total{result="ok"} 0');
    expect(text).toContain('twill_reconciles_total{result="error"} 0');
    expect(text).toContain('twill_ready 0');
  });

  it('records reconciles, event latency, errors and invalid leases', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.observeReconcile(0.004, true);
    m.observeReconcile(0.2, false);
    m.observeEventToProgrammed(0.0015);
    m.netlinkError('route.add');
    m.netlinkError('route.add');
    m.invalidLease('overlap');
    m.setLeaseExpiry(1_700_000_000_500);
    m.setReady(true);
    m.setPeers({ valid: 5, invalid: 1, programmed: 4 });
    const text = await m.text();
    expect(text).toContain('twill_reconciles_total{result="ok"} 1');
    expect(text).toContain('twill_reconciles_total{result="error"} 1');
    expect(text).toContain('twill_reconcile_duration_seconds_bucket{le="0.005"} 1');
    expect(text).toContain('twill_reconcile_duration_seconds_count 2');
    expect(text).toContain('twill_lease_event_to_programmed_seconds_bucket{le="0.001"} 0');
    expect(text).toContain('twill_lease_event_to_programmed_seconds_bucket{le="0.0025"} 1');
    expect(text).toContain('twill_lease_event_to_programmed_seconds_bucket{le="10"} 1');
    expect(text).toContain('twill_netlink_errors_total{op="route.add"} 2');
    expect(text).toContain('twill_invalid_leases_total{reason="overlap"} 1');
    expect(text).toContain('twill_lease_expiry_timestamp_seconds 1700000000.5');
    expect(text).toContain('twill_ready 1');
    expect(text).toContain('twill_peers{state="programmed"} 4');
    expect(LATENCY_BUCKETS[0]).toBe(0.001);
    expect(LATENCY_BUCKETS.at(-1)).toBe(10);
  });

  it('updateFromStatus mirrors a not-ready status', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.setReady(true);
    m.setLeaseExpiry(5000);
    m.updateFromStatus(notReadyStatus());
    const text = await m.text();
    expect(text).toContain('twill_ready 0');
    expect(text).toContain('twill_lease_expiry_timestamp_seconds 0');
    expect(text).toContain('twill_peers{state="valid"} 0');
  });

  it('reads the peer gauge from its source at scrape time, every scrape', async () => {
    const m = new Metrics({ defaultMetrics: false });
    let calls = 0;
    let counts = { valid: 3, invalid: 1, programmed: 2 };
    m.setPeerSource(() => { calls++; return counts; });
    expect(calls).toBe(0);
    let text = await m.text();
    expect(text).toContain('twill_peers{state="valid"} 3');
    expect(text).toContain('twill_peers{state="invalid"} 1');
    expect(text).toContain('twill_peers{state="programmed"} 2');
    counts = { valid: 4, invalid: 0, programmed: 4 };
    text = await m.text();
    expect(text).toContain('twill_peers{state="programmed"} 4');
    expect(calls).toBe(2);
  });
});
