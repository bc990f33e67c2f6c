// The incremental transactions against the kernel, at random: a seeded sequence of clusters
// (pods coming and going, labels, dual-stack addresses, policies of every kind appearing,
// changing and disappearing) is applied step by step through one enforcer; after every step the
// kernel's table must equal what a full render of the same model installs in a fresh netns.
// A diff that the kernel refuses fails the step (the enforcer's fallback is checked to be unused).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { compilePolicies, createNftPolicyEnforcer, renderFull, renderPolicyState, type NetworkPolicy, type Pod } from '../../../lib/policy/index.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { addNetns, delNetns, inNsInput } from '../traffic/netns.js';
import { namespaces, pod } from '../../unit/policy/fixtures.js';
import { generator } from './random.js';
import { tableShape } from './topology.js';

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
    const { rnd, pick, labels: labelsOf, policy } = generator(seed);
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
      expect(await tableShape(live), `step ${step}`).toEqual(await tableShape(ref));
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
