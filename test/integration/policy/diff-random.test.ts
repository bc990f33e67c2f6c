// The incremental transactions against the kernel, at random: a seeded sequence of clusters
// (pods coming and going, labels, dual-stack addresses, policies of every kind appearing,
// changing and disappearing) is applied step by step through one enforcer; after every step the
// kernel's table must equal what a full render of the same model installs in a fresh netns.
// A diff that the kernel refuses fails the step (the enforcer's fallback is checked to be unused).
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  compilePolicies, createNftPolicyEnforcer, renderFull, renderPolicyState,
  type LabelSelector, type NetworkPolicy, type NetworkPolicyPeer, type NetworkPolicyPort, type Pod,
} from '../../../lib/policy/index.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { addNetns, delNetns, inNs, inNsInput } from '../traffic/netns.js';
import { namespaces, np, pod } from '../../unit/policy/fixtures.js';

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function shape(ns: string): Promise<unknown> {
  const j = JSON.parse(await inNs(ns, 'nft', '-j', 'list', 'table', 'inet', 'twill-policy')) as { nftables: Record<string, Record<string, unknown>>[] };
  const sets: Record<string, unknown> = {};
  const chains: Record<string, string[]> = {};
  for (const item of j.nftables) {
    const s = item.set ?? item.map;
    if (s) sets[String(s.name)] = { type: s.type, map: s.map, flags: s.flags, elem: ((s.elem as unknown[] | undefined) ?? []).map((e) => JSON.stringify(e)).sort() };
    if (item.chain) chains[String(item.chain.name)] ??= [];
    if (item.rule) (chains[String(item.rule.chain)] ??= []).push(JSON.stringify(item.rule.expr).replace(/"counter":\{[^}]*\}/g, '"counter":{}'));
  }
  return { sets, chains };
}

describeRoot('network policy: random incremental transactions match a full render', () => {
  const prefix = uniquePrefix('twp');
  const live = `${prefix}live`;
  const ref = `${prefix}ref`;
  beforeAll(async () => { await addNetns(live); await addNetns(ref); });
  afterAll(async () => { await delNetns(live, ref); });

  // TWILL_POLICY_SEEDS="1,2,3" TWILL_POLICY_STEPS=200 widens the walk for a local soak.
  const seeds = (process.env.TWILL_POLICY_SEEDS ?? '18,1807').split(',').map(Number);
  const steps = Number(process.env.TWILL_POLICY_STEPS ?? 40);
  it.each(seeds)(`${steps} random steps, seed %i`, async (seed) => {
    const rnd = prng(seed);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
    const labelsOf = () => {
      const l: Record<string, string> = { pod: pick(['a', 'b', 'c']) };
      if (rnd() < 0.5) l.role = pick(['web', 'db']);
      return l;
    };
    const selector = (): LabelSelector => {
      if (rnd() < 0.3) return {};
      if (rnd() < 0.6) return { matchLabels: { pod: pick(['a', 'b', 'c']) } };
      const operator = pick(['In', 'NotIn', 'Exists', 'DoesNotExist']);
      return { matchExpressions: [{ key: 'role', operator, ...(operator === 'In' || operator === 'NotIn' ? { values: ['web'] } : {}) }] };
    };
    const peer = (): NetworkPolicyPeer => {
      const r = rnd();
      if (r < 0.3) return { podSelector: selector() };
      if (r < 0.55) return { namespaceSelector: rnd() < 0.5 ? {} : { matchLabels: { ns: pick(['x', 'y', 'z']) } } };
      if (r < 0.75) return { namespaceSelector: { matchLabels: { ns: pick(['x', 'y']) } }, podSelector: selector() };
      return rnd() < 0.7 ? { ipBlock: { cidr: '10.0.0.0/16', except: rnd() < 0.5 ? ['10.0.2.0/24'] : [] } } : { ipBlock: { cidr: 'fd00::/64', except: ['fd00::/120'] } };
    };
    const port = (): NetworkPolicyPort => pick<NetworkPolicyPort>([{ port: 80 }, { port: 80, endPort: 90 }, { protocol: 'UDP', port: 53 }, { port: 'http' }, { protocol: 'SCTP' }, { port: 'serve-81-udp', protocol: 'UDP' }]);
    const rule = () => ({
      ...(rnd() < 0.2 ? {} : { peers: Array.from({ length: 1 + Math.floor(rnd() * 2) }, peer) }),
      ...(rnd() < 0.3 ? {} : { ports: Array.from({ length: 1 + Math.floor(rnd() * 2) }, port) }),
    });
    const policy = (ns: string, name: string): NetworkPolicy => {
      const types = pick([undefined, ['Ingress'], ['Egress'], ['Ingress', 'Egress']]);
      const ingress = Array.from({ length: Math.floor(rnd() * 3) }, rule).map((r) => ({ from: r.peers, ports: r.ports }));
      const egress = Array.from({ length: Math.floor(rnd() * 3) }, rule).map((r) => ({ to: r.peers, ports: r.ports }));
      return np(ns, name, { podSelector: selector(), ...(types ? { policyTypes: types } : {}), ingress, egress });
    };

    const policyNames = ['p1', 'p2', 'p3', 'p4', 'p5', 'p6'];
    let policies = new Map<string, NetworkPolicy>();
    let pods = new Map<string, Pod>();
    const enforcer = createNftPolicyEnforcer({ netns: live, guardCidrs: ['10.0.0.0/16', 'fd00::/64'] });
    let incremental = 0;
    const seen = { activePolicies: 0, combos: 0, named: 0, v6: 0, chainChanges: 0, elementChanges: 0 };
    for (let step = 0; step < steps; step++) {
      // mutate: a few pods and policies change each step
      for (let k = 0; k < 3; k++) {
        const ns = pick(['x', 'y', 'z']);
        const name = pick(['a', 'b', 'c', 'd']);
        const key = `${ns}/${name}`;
        if (pods.has(key) && rnd() < 0.3) pods.delete(key);
        else {
          const idx = ['a', 'b', 'c', 'd'].indexOf(name) + 1 + (rnd() < 0.2 ? 10 : 0);
          const nsIdx = ['x', 'y', 'z'].indexOf(ns) + 1;
          const ips = [`10.0.${nsIdx}.${idx}`, ...(rnd() < 0.4 ? [`fd00::${nsIdx}:${idx}`] : [])];
          pods.set(key, pod(ns, name, { ips, labels: labelsOf(), node: rnd() < 0.7 ? 'n1' : 'n2', ...(rnd() < 0.4 ? { http: 8080 + idx } : {}) }));
        }
      }
      for (let k = 0; k < 2; k++) {
        const ns = pick(['x', 'y']);
        const key = `${ns}/${pick(policyNames)}`;
        if (policies.has(key) && rnd() < 0.3) policies.delete(key);
        else policies.set(key, policy(ns, key.split('/')[1] as string));
      }
      policies = new Map([...policies].sort());
      pods = new Map([...pods].sort());
      const model = compilePolicies({ policies: [...policies.values()], namespaces: namespaces(), pods: [...pods.values()], nodeName: 'n1' });
      expect(model.rejected).toEqual([]);
      const res = await enforcer.apply(model);
      expect(res.fallbackReason).toBeUndefined();
      if (res.mode === 'incremental') incremental++;
      const st = enforcer.installed();
      seen.activePolicies = Math.max(seen.activePolicies, model.policies.length);
      seen.combos = Math.max(seen.combos, st?.combos.length ?? 0);
      seen.named += [...(st?.sets.values() ?? [])].filter((x) => x.name.endsWith('/named4') && x.elements.length > 0).length;
      seen.v6 += st?.sets.get('in6')?.elements.length ?? 0;
      seen.chainChanges += res.diff?.chainsChanged ?? 0;
      seen.elementChanges += (res.diff?.elementsAdded ?? 0) + (res.diff?.elementsDeleted ?? 0);
      await inNsInput(ref, renderFull(renderPolicyState(model, { guardCidrs: ['10.0.0.0/16', 'fd00::/64'] })), 'nft', '-f', '-');
      expect(await shape(live), `step ${step}`).toEqual(await shape(ref));
    }
    // the first step is the full install; (nearly) all others went through diffs
    expect(incremental).toBeGreaterThanOrEqual(steps * 0.75);
    // and the walk did exercise what it is meant to: several policies and combinations at once,
    // resolved named ports, IPv6 dispatch, chain changes and element changes
    expect(seen.activePolicies).toBeGreaterThanOrEqual(3);
    expect(seen.combos).toBeGreaterThanOrEqual(3);
    expect(Math.min(seen.named, seen.v6, seen.chainChanges, seen.elementChanges)).toBeGreaterThan(0);
  });
});
