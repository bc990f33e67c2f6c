// The kernel rules against the model, at random: for seeded random labels, named ports and
// policies, every pod↔pod pair (bridged), the routed outside peer towards each pod and each pod
// towards the outside peer are probed with real TCP and UDP connections, and each verdict must
// be what connectionAllowed() reads from the compiled model. The compiler's semantics are
// pinned by the hand-written unit tables; this checks that the nftables rendering implements
// exactly the model, for combinations nobody wrote by hand.
import { expect, it } from 'vitest';
import { compilePolicies, connectionAllowed, type NetworkPolicy, type Pod } from '../../../lib/policy/index.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { namespaces, pod } from '../../unit/policy/fixtures.js';
import { generator } from './random.js';
import { OUTSIDE_IP, POD_IPS, usePolicyNode } from './topology.js';

const PROBES: ['tcp' | 'udp', number][] = [['tcp', 80], ['tcp', 8080], ['udp', 53], ['udp', 81]];

describeRoot('network policy: random policies, real traffic agrees with the model', () => {
  const prefix = uniquePrefix('twp');
  const node = usePolicyNode(prefix);

  const tally = { pass: 0, blocked: 0 };
  const seeds = (process.env.TWILL_POLICY_SEEDS ?? '7,18,29,40,51,62,73,84').split(',').map(Number);
  it.each(seeds)('seed %i', async (seed) => {
    const g = generator(seed);
    const pods: Pod[] = Object.entries(POD_IPS).map(([ref, ip]) => {
      const [ns, name] = ref.split('/') as [string, string];
      return pod(ns, name, { ips: [ip], labels: g.labels(), ...(g.rnd() < 0.5 ? { http: 8080 } : {}) });
    });
    const policies: NetworkPolicy[] = Array.from({ length: 1 + Math.floor(g.rnd() * 3) }, (_, i) => g.policy(g.pick(['x', 'y']), `r${i}`));
    const model = compilePolicies({ policies, namespaces: namespaces(), pods, nodeName: 'n1' });
    expect(model.rejected).toEqual([]);
    await node.enforcer.apply(model);

    const sources = ['outside', ...Object.keys(POD_IPS)];
    const want: string[] = [];
    const got: string[] = [];
    await Promise.all(sources.map(async (src) => {
      const srcIp = src === 'outside' ? OUTSIDE_IP : (POD_IPS[src] as string);
      const list: [string, 'tcp' | 'udp', number][] = [];
      for (const [dst, dstIp] of [...Object.entries(POD_IPS), ['outside', OUTSIDE_IP] as const]) {
        if (dst === src || (src === 'outside' && dst === 'outside')) continue;
        // the outside netns serves nothing: one TCP probe, a RST back means it passed
        for (const [proto, port] of dst === 'outside' ? PROBES.slice(0, 1) : PROBES) list.push([dstIp, proto, port]);
      }
      const res = await node.topo.probe(src, list, 1500);
      list.forEach(([dstIp, proto, port], i) => {
        const line = `${src} -> ${dstIp} ${proto} ${port}`;
        const ok = connectionAllowed(model, { src: srcIp, dst: dstIp, protocol: proto === 'tcp' ? 'TCP' : 'UDP', port });
        want.push(`${line} ${ok ? 'pass' : 'blocked'}`);
        got.push(`${line} ${res[i] === 'ok' || res[i] === 'refused' ? 'pass' : 'blocked'}`);
      });
    }));
    expect(got.sort()).toEqual(want.sort());
    for (const w of want) tally[w.endsWith(' pass') ? 'pass' : 'blocked']++;
  });

  it('the seeds exercised both verdicts, many times', () => {
    expect(tally.pass).toBeGreaterThan(50);
    expect(tally.blocked).toBeGreaterThan(50);
  });
});
