// Readiness reasons (issue 14), on the memory kernel + memory store: one reason per condition that
// failed, the error seen for it, and nothing inferred: an invalid config is not also "lease store
// unreachable", a store that is down is not also "network config not loaded".
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TwillError } from '../../../lib/errors.js';
import { NETCONF, start, stopRigs, memoryStore } from './daemon-fixture.js';

afterEach(stopRigs);

const WAIT = { timeout: 10_000, interval: 10 };

describe('Readiness names exactly the conditions that failed', () => {
  it('an invalid config: only the config (the store answered)', async () => {
    const sm = memoryStore({ config: '{"Network": 42}' });
    const { d } = await start({ sm, waitReady: false });
    await vi.waitFor(() => expect(d.status.notReadyReasons.length).toBeGreaterThan(0), WAIT);
    await vi.waitFor(() => expect(d.status.notReadyReasons).toEqual([expect.stringMatching(/^network config: .*Network.*42/)]), WAIT);
    expect(d.status.conditions.store).toBe(true);
  });

  it('a missing config: only the config', async () => {
    const { d } = await start({ sm: memoryStore({}), waitReady: false });
    await vi.waitFor(() => expect(d.status.notReadyReasons).toEqual([expect.stringMatching(/^network config: no network config/)]), WAIT);
  });

  const startFailures: [string, 'getNetworkConfig' | 'acquireLease', TwillError, string][] = [
    ['the store unreachable at start: only the store, until it answers', 'getNetworkConfig',
      new TwillError('ETCD', 'etcd http://10.0.0.1:2379: connect ECONNREFUSED'), 'lease store unreachable: etcd http://10.0.0.1:2379: connect ECONNREFUSED'],
    ['no lease: only the lease, until there is one', 'acquireLease',
      new TwillError('SUBNETS_EXHAUSTED', 'out of subnets: all 256 subnets in the range are taken'), 'out of subnets: all 256 subnets in the range are taken'],
  ];
  for (const [name, op, err, reason] of startFailures) {
    it(name, async () => {
      const sm = memoryStore({ config: NETCONF });
      sm.failNext(op, err);
      const { d } = await start({ sm, waitReady: false });
      await vi.waitFor(() => expect(d.status.notReadyReasons).toEqual([reason]), WAIT);
      await vi.waitFor(() => expect(d.status.ready).toBe(true), WAIT);
    });
  }

  it('the store stops answering while running: only the store', async () => {
    const sm = memoryStore({ config: NETCONF });
    const { d } = await start({ sm });
    for (let i = 0; i < 3; i++) sm.failNext('getNetworkConfig', new TwillError('ETCD', 'etcd: deadline exceeded'));
    await vi.waitFor(() => expect(d.status.notReadyReasons).toEqual(['lease store unreachable: etcd: deadline exceeded']), { timeout: 15_000, interval: 20 });
    await vi.waitFor(() => expect(d.status.ready).toBe(true), { timeout: 30_000, interval: 20 });
  }, 60_000);

  it('while nothing has failed yet, the pending steps are named, none as a failure', async () => {
    const sm = memoryStore({ config: NETCONF });
    const { d } = await start({ sm, waitReady: false });
    // Captured at once: start-up has not got past its first awaits.
    expect(d.status.notReadyReasons.length).toBeGreaterThan(0);
    expect(d.status.notReadyReasons.every((r) => /not (selected|contacted|loaded|written|done|installed) yet|^no subnet lease yet$/.test(r)), d.status.notReadyReasons.join('; ')).toBe(true);
    expect(d.status.notReadyReasons.join('; ')).not.toMatch(/unreachable/);
    await vi.waitFor(() => expect(d.status.ready).toBe(true), WAIT);
  });
});
