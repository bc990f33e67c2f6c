// Long-lived abort signals must not collect a listener per wait or per probe (the agent runs for
// months; Node warns at 11 and each listener pins a closure).
import { describe, expect, it } from 'vitest';
import { getEventListeners } from 'node:events';
import { Reconciler } from '../../../agent/reconcile/loop.js';
import { MemoryKernel } from '../../../lib/netlink/memory.js';
import { deadline, systemClock } from '../../../lib/retry.js';
import { silentLogger } from '../../../lib/log.js';

describe('abort listeners', () => {
  it('the reconcile loop keeps one listener however often it waits', async () => {
    const ctl = new AbortController();
    const r = new Reconciler({ handle: new MemoryKernel(), logger: silentLogger(), clock: systemClock, desired: () => new Map(), device: () => ({ index: undefined, nexthops: true }) });
    const running = r.run(ctl.signal);
    for (let i = 0; i < 50; i++) {
      r.request(['x'], 'test');
      await new Promise((res) => setTimeout(res, 1));
    }
    expect(r.runs).toBeGreaterThan(10);
    expect(getEventListeners(ctl.signal, 'abort').length).toBeLessThanOrEqual(1);
    ctl.abort();
    await running;
    expect(getEventListeners(ctl.signal, 'abort')).toHaveLength(0);
  });

  it('deadline() detaches from its parent when done, and times out', async () => {
    const parent = new AbortController();
    for (let i = 0; i < 20; i++) deadline(parent.signal, 1000).done();
    expect(getEventListeners(parent.signal, 'abort')).toHaveLength(0);
    const d = deadline(parent.signal, 10);
    await new Promise((res) => setTimeout(res, 30));
    expect(d.signal.aborted).toBe(true);
    d.done();
  });
});
