// An agent restart never flushes the datapath: pings every 10 ms between pods keep flowing
// across a `kill -9` and a SIGTERM of the agent and its restart, with zero packets lost; the node
// keeps its subnet, its VTEP MAC and its device (same ifindex: not recreated), and ends with
// exactly its peers' entries (nothing duplicated).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeStore } from './describe.js';
import { checkPeerEntries } from '../checks.js';
import { startCluster, type Cluster } from '../cluster.js';
import { sleep } from '../exec.js';
import type { StoreMode } from '../store.js';

export function restartSuite(mode: StoreMode): void {
  describeStore(mode, `e2e ${mode}: agent restart under a running flow`, () => {
    let c: Cluster;
    beforeAll(async () => { c = await startCluster({ nodes: 3, mode }); });
    afterAll(async () => { await c?.destroy(); });

    for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
      it(`${signal === 'SIGKILL' ? 'kill -9' : 'SIGTERM'} and restart: same subnet, same VTEP MAC and device, zero packets lost`, async () => {
        const victim = c.node(1);
        const [p0, p1, p2] = [c.pods[0]!, c.pods[1]!, c.pods[2]!];
        const before = { subnet: victim.subnet, kernel: await c.kernelState(1), lease: (await c.store.leases()).find((l) => l.subnet === victim.subnet) };
        // Flows into, out of and past the victim node.
        const flows = await Promise.all([
          c.pingFlow(p0.netns, p1.ip), c.pingFlow(p1.netns, p2.ip), c.pingFlow(p2.netns, p0.ip),
        ]);
        await sleep(500);
        const exit = await c.stopAgent(1, signal);
        if (signal === 'SIGTERM') expect(exit?.code, `SIGTERM exit code; log:\n${c.logTail(1)}`).toBe(0);
        else expect(exit?.signal).toBe('SIGKILL');
        await sleep(1500);                              // the agent is down; traffic must not notice
        await c.startAgent(1);
        await c.waitReady(30_000, [1]);
        await sleep(1000);                              // the restarted agent's first reconcile is done
        const results = await Promise.all(flows.map((f) => f.stop()));
        for (const [i, r] of results.entries()) {
          expect(r.sent, `flow ${i}: ${r.output.slice(-300)}`).toBeGreaterThan(150);
          expect(r.sent - r.received, `flow ${i} lost packets across the restart: ${r.output.split('\n').slice(-3).join(' ')}`).toBe(0);
        }
        const after = await c.kernelState(1);
        expect(victim.subnet, 'subnet').toBe(before.subnet);
        expect(after.device?.ifindex, 'the device must not be recreated').toBe(before.kernel.device?.ifindex);
        expect(after.device?.mac, 'VTEP MAC').toBe(before.kernel.device?.mac);
        const lease = (await c.store.leases()).find((l) => l.subnet === victim.subnet);
        expect(lease?.vtepMAC?.toLowerCase(), 'published VTEP MAC').toBe(before.lease?.vtepMAC?.toLowerCase());
        expect(await checkPeerEntries(c)).toEqual([]);
      });
    }
  });
}
