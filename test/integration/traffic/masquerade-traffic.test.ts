// Real packets through the rules. Topology, all in fresh netns:
//
//   pod1 10.244.1.2 --- 10.244.1.1 [node] 192.0.2.1 --- 192.0.2.2 ext
//   pod2 10.244.2.2 --- 10.244.2.1 [node]
//
// node forwards and holds the traffic rules for network 10.244.0.0/16, its own subnet
// 10.244.1.0/24 (pod1). pod2 stands in for a pod on another node (in the network, not in our
// subnet). ext routes 10.244.0.0/16 back via node, so without masquerading it would see pod
// addresses: the rules, not the topology, decide what ext sees.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTrafficRules, type TrafficBackend, type TrafficRules, type TrafficSpec } from '../../../agent/traffic/index.js';
import { silentLogger } from '../../../lib/log.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { addNetns, delNetns, inNs, sh, startPeerServer, seenSource, veth, type PeerEchoServer } from './netns.js';

const SPEC: TrafficSpec = { network: '10.244.0.0/16', subnet: '10.244.1.0/24', masquerade: true };
const PORT = 18080;

describeRoot('traffic rules: real traffic', () => {
  for (const backend of ['nftables', 'iptables'] as const satisfies readonly TrafficBackend[]) {
    describe(backend, () => {
      const p = uniquePrefix('twt');
      const ns = { pod1: `${p}pod1`, pod2: `${p}pod2`, node: `${p}node`, ext: `${p}ext` };
      const servers: PeerEchoServer[] = [];
      let rules: TrafficRules;

      beforeAll(async () => {
        try {
          for (const n of Object.values(ns)) await addNetns(n);
          await veth(ns.node, 'p1', '10.244.1.1/24', ns.pod1, 'eth0', '10.244.1.2/24');
          await veth(ns.node, 'p2', '10.244.2.1/24', ns.pod2, 'eth0', '10.244.2.2/24');
          await veth(ns.node, 'up0', '192.0.2.1/24', ns.ext, 'eth0', '192.0.2.2/24');
          await sh('ip', ['-n', ns.pod1, 'route', 'add', 'default', 'via', '10.244.1.1']);
          await sh('ip', ['-n', ns.pod2, 'route', 'add', 'default', 'via', '10.244.2.1']);
          await sh('ip', ['-n', ns.ext, 'route', 'add', '10.244.0.0/16', 'via', '192.0.2.1']);
          await inNs(ns.node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
          for (const n of [ns.ext, ns.pod1, ns.pod2]) servers.push(await startPeerServer(n, PORT));
          rules = await createTrafficRules({ logger: silentLogger(), netns: ns.node, prefer: backend });
          expect(rules.backend).toBe(backend);
        } catch (err) {
          for (const s of servers) s.stop();
          await delNetns(...Object.values(ns));
          throw err;
        }
      });

      afterAll(async () => {
        for (const s of servers) s.stop();
        await delNetns(...Object.values(ns));
      });

      it('without rules, ext sees the pod address (the test can tell NAT from no NAT)', async () => {
        expect(await seenSource(ns.pod1, '192.0.2.2', PORT)).toBe('10.244.1.2');
      });

      it('masquerade on: pod -> outside arrives from the node address', async () => {
        await rules.ensure(SPEC);
        expect(await seenSource(ns.pod1, '192.0.2.2', PORT)).toBe('192.0.2.1');
      });

      it('masquerade on: pod -> pod keeps the pod address, both ways', async () => {
        await rules.ensure(SPEC);
        expect(await seenSource(ns.pod1, '10.244.2.2', PORT)).toBe('10.244.1.2');
        expect(await seenSource(ns.pod2, '10.244.1.2', PORT)).toBe('10.244.2.2');
      });

      it('masquerade on: outside -> our pod keeps the client address; outside -> another subnet is masqueraded (flannel)', async () => {
        await rules.ensure(SPEC);
        expect(await seenSource(ns.ext, '10.244.1.2', PORT)).toBe('192.0.2.2');
        expect(await seenSource(ns.ext, '10.244.2.2', PORT)).toBe('10.244.2.1');
      });

      it('masquerade off, then removed: ext sees the pod address again', async () => {
        await rules.ensure({ ...SPEC, masquerade: false });
        expect(await seenSource(ns.pod1, '192.0.2.2', PORT)).toBe('10.244.1.2');
        await rules.ensure(SPEC);
        expect(await seenSource(ns.pod1, '192.0.2.2', PORT)).toBe('192.0.2.1');
        await rules.remove();
        expect(await seenSource(ns.pod1, '192.0.2.2', PORT)).toBe('10.244.1.2');
      });
    });
  }
});
