// The store goes away for 60 s (etcd stopped; with the fake API server, kube-fake, every API
// request fails with 503 and every watch is dropped; with a real one, kube, kube-apiserver is
// stopped). The datapath must not notice (pings between pods every 50 ms lose nothing), every
// agent stays alive (/healthz 200) but reports not ready (/readyz 503) with a reason, and after
// the store returns every agent is ready again and new leases propagate.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStore } from './describe.js';
import { waitPeerEntries } from '../checks.js';
import { startCluster, type Cluster } from '../cluster.js';
import { sleep, waitFor } from '../exec.js';
import type { StoreMode } from '../store.js';

export const OUTAGE_MS = 60_000;

export function outageSuite(mode: StoreMode, outageMs = OUTAGE_MS): void {
  describeStore(mode, `e2e ${mode}: store outage of ${outageMs / 1000} s`, () => {
    let c: Cluster;
    beforeAll(async () => { c = await startCluster({ nodes: 3, mode }); });
    afterAll(async () => { await c?.destroy(); });

    it('keeps the datapath, stays alive and not ready during the outage, and recovers fully after', { timeout: outageMs + 180_000 }, async () => {
      const [p0, p1, p2] = [c.pods[0]!, c.pods[1]!, c.pods[2]!];
      const subnets = c.nodes.map((n) => n.subnet);
      const flows = await Promise.all([c.pingFlow(p0.netns, p1.ip, 0.05), c.pingFlow(p1.netns, p2.ip, 0.05), c.pingFlow(p2.netns, p0.ip, 0.05)]);
      const t0 = Date.now();
      await c.stopEtcd();
      // Every agent notices and turns not ready (well before the outage ends).
      await Promise.all(c.nodes.map((n) => waitFor(`${n.name} /readyz 503 during the outage`, async () => (await c.readyz(n.index)) === 503, outageMs / 2, 250)));
      const noticedMs = Date.now() - t0;
      // For the rest of the outage: alive, not ready, with a reason; the agent process keeps running.
      const samples: string[] = [];
      while (Date.now() - t0 < outageMs) {
        for (const n of c.nodes) {
          const [h, r] = await Promise.all([c.healthz(n.index), c.readyz(n.index)]);
          if (h !== 200 || r !== 503 || !n.agent.running) samples.push(`t+${Math.round((Date.now() - t0) / 1000)}s ${n.name}: healthz ${h} readyz ${r} running ${n.agent.running}`);
        }
        await sleep(5000);
      }
      expect(samples, `unexpected health during the outage (noticed after ${noticedMs} ms)`).toEqual([]);
      const s = await c.status(0);
      expect(s.ready).toBe(false);
      expect(s.notReadyReasons.length, 'a not-ready agent says why').toBeGreaterThan(0);
      const during = await Promise.all(flows.map((f) => f.stop()));
      for (const [i, r] of during.entries()) {
        expect(r.sent, `flow ${i}`).toBeGreaterThan(outageMs / 50 / 2);
        expect(r.sent - r.received, `flow ${i} lost packets during the outage: ${r.output.split('\n').slice(-3).join(' ')}`).toBe(0);
      }
      await c.startEtcd();
      await c.waitReady(60_000);
      expect(c.nodes.map((n) => n.subnet), 'same subnets after the outage').toEqual(subnets);
      await c.store.putLease({ subnet: '10.244.230.0/24', publicIP: '10.213.0.230', vtepMAC: '02:cc:00:00:02:30' });
      expect(await waitPeerEntries(c, 10_000), 'a new lease propagates after recovery').toEqual([]);
      const after = await c.store.leases();
      for (const n of c.nodes) expect(after.some((l) => l.subnet === n.subnet && l.publicIP === n.underlayIP), `${n.name} still holds its lease`).toBe(true);
    });
  });
}
