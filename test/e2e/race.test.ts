// 20 agents start at once and race for 16 subnets (SubnetMin..SubnetMax): exactly 16 distinct
// leases, every winner programs the other 15; the 4 losers keep running, report "out of
// subnets" (status and log) and keep retrying: when a winner leaves, a loser takes its subnet.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRoot } from '../util/root.js';
import { checkPeerEntries } from '../harness/checks.js';
import { startCluster, waitFor, type Cluster } from '../harness/index.js';

const NET_CONF = {
  Network: '10.244.0.0/16', SubnetLen: 24, SubnetMin: '10.244.1.0', SubnetMax: '10.244.16.0',
  Backend: { Type: 'vxlan', VNI: 1 },
};

describeRoot('e2e etcd: 20 agents racing for 16 subnets', () => {
  let c: Cluster;
  let ready: number[] = [];
  let losers: number[] = [];
  beforeAll(async () => {
    c = await startCluster({ nodes: 20, netConf: NET_CONF, waitReady: false, podsPerNode: 0, logLevel: 'info' });
    await waitFor('16 agents ready', async () => {
      const r = await Promise.all(c.nodes.map(async (n) => (await c.readyz(n.index)) === 200));
      ready = r.flatMap((ok, i) => (ok ? [i] : []));
      return ready.length >= 16;
    }, 90_000, 250);
    await c.refreshSubnets();
    losers = c.nodes.map((n) => n.index).filter((i) => !ready.includes(i));
  }, 120_000);
  afterAll(async () => { await c?.destroy(); });

  it('hands out exactly 16 distinct leases, one per winning node', async () => {
    const leases = await c.store.leases();
    expect(leases).toHaveLength(16);
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(16);
    expect(new Set(leases.map((l) => l.publicIP)).size).toBe(16);
    expect(ready).toHaveLength(16);
    for (const i of ready) {
      const n = c.node(i);
      expect(leases.filter((l) => l.publicIP === n.underlayIP).map((l) => l.subnet), n.name).toEqual([n.subnet]);
    }
    const subnets = leases.map((l) => Number(l.subnet.split('.')[2])).sort((a, b) => a - b);
    expect(subnets).toEqual(Array.from({ length: 16 }, (_, k) => k + 1));
  });

  it('programs the other 15 peers on every winner', async () => {
    expect(await checkPeerEntries(c, ready)).toEqual([]);
  });

  it('keeps the 4 losers running, not ready, saying "out of subnets" in status and log', async () => {
    expect(losers).toHaveLength(4);
    for (const i of losers) {
      const n = c.node(i);
      // A slow starter may not have finished its first attempt when the 16th winner turned ready.
      const reasons = await waitFor(`${n.name} to report "out of subnets"`, async () => {
        const r = (await c.status(i)).notReadyReasons.join('\n');
        return /out of subnets/i.test(r) ? r : undefined;
      }, 30_000, 250).catch(async () => (await c.status(i)).notReadyReasons.join('\n'));
      expect(reasons, `${n.name} notReadyReasons`).toMatch(/out of subnets/i);
      expect(n.agent.running, `${n.name} must keep retrying, not exit; log:\n${c.logTail(i)}`).toBe(true);
      expect(await c.readyz(i), `${n.name} /readyz`).toBe(503);
      expect(readFileSync(n.logFile, 'utf8'), `${n.name} log`).toMatch(/out of subnets/i);
      expect(await c.subnetEnv(i), `${n.name} must not write a subnet file`).toBeUndefined();
    }
  });

  it('gives a freed subnet to a waiting loser', async () => {
    const winner = c.node(ready[0]!);
    const freed = winner.subnet!;
    await c.stopAgent(winner.index);
    await c.store.deleteLease(freed);
    const taker = await waitFor(`a loser to take ${freed}`, async () => {
      const leases = await c.store.leases();
      const l = leases.find((x) => x.subnet === freed);
      const i = l ? losers.find((k) => c.node(k).underlayIP === l.publicIP) : undefined;
      return i === undefined ? undefined : { i };
    }, 60_000, 250).then((x) => x.i);
    await c.waitReady(30_000, [taker]);
    expect(c.node(taker).subnet).toBe(freed);
  });
});
