// The nftables rendering of a PolicyModel, without a kernel: names, rules per rule kind, the
// per-pod dispatch, and the diff between two renderings (what a pod, label or policy change
// turns into). The integration tests load the same text into a real kernel.
import { describe, expect, it } from 'vitest';
import {
  comboChainName, compilePolicies, createNftPolicyEnforcer, policyChainName, renderDiff, renderFull, renderPolicyState,
  type NetworkPolicy, type NftRunner, type Pod, type PolicyModel,
} from '../../../lib/policy/index.js';
import { namespaces, np, pods } from './fixtures.js';

const compile = (policies: NetworkPolicy[], podList: Pod[] = pods()): PolicyModel =>
  compilePolicies({ policies, namespaces: namespaces(), pods: podList, nodeName: 'n1' });

const relabel = (ref: string, labels: Record<string, string>): Pod[] =>
  pods().map((p) => (`${p.metadata.namespace}/${p.metadata.name}` === ref ? { ...p, metadata: { ...p.metadata, labels } } : p));

describe('renderPolicyState', () => {
  it('one chain per policy and direction, with the rules each rule kind needs', () => {
    const s = renderPolicyState(compile([
      np('x', 'any', { podSelector: {}, ingress: [{}] }),
      np('x', 'peers', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] }),
      np('x', 'ports', { podSelector: {}, ingress: [{ ports: [{ port: 80, endPort: 82 }, { protocol: 'SCTP' }] }] }),
      np('x', 'named', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: 'http' }] }] }),
      np('x', 'eg-named', { podSelector: {}, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: {} }], ports: [{ port: 'http' }] }] }),
    ]));
    expect(s.chains.get('in/x/any')?.rules).toEqual(['accept']);
    expect(s.chains.get('in/x/peers')?.rules).toEqual(['ip saddr @in/x/peers/0/peer4 accept', 'ip6 saddr @in/x/peers/0/peer6 accept']);
    expect(s.sets.get('in/x/peers/0/peer4')).toEqual({ name: 'in/x/peers/0/peer4', type: 'ipv4_addr', interval: true, elements: ['10.0.1.1', '10.0.1.2', '10.0.1.3'] });
    expect(s.chains.get('in/x/ports')?.rules).toEqual(['meta l4proto . th dport @in/x/ports/0/ports accept']);
    expect(s.sets.get('in/x/ports/0/ports')?.elements).toEqual(['sctp . 0-65535', 'tcp . 80-82']);
    expect(s.chains.get('in/x/named')?.rules).toEqual([
      'ip saddr @in/x/named/0/peer4 ip daddr . meta l4proto . th dport @in/x/named/0/named4 accept',
      'ip6 saddr @in/x/named/0/peer6 ip6 daddr . meta l4proto . th dport @in/x/named/0/named6 accept',
    ]);
    expect(s.sets.get('in/x/named/0/named4')?.elements).toEqual(['10.0.1.3 . tcp . 8080']);
    // egress named ports: the named set holds peer pods only, no peer set is needed
    expect(s.chains.get('eg/x/eg-named')?.rules).toEqual([
      'ip daddr . meta l4proto . th dport @eg/x/eg-named/0/named4 accept',
      'ip6 daddr . meta l4proto . th dport @eg/x/eg-named/0/named6 accept',
    ]);
    expect(s.sets.has('eg/x/eg-named/0/peer4')).toBe(false);
    expect(s.sets.get('eg/x/eg-named/0/named4')?.elements).toEqual(['10.0.1.3 . tcp . 8080']);
  });

  it('pods with the same policies share one combination chain; pods nothing isolates are not dispatched', () => {
    const s = renderPolicyState(compile([
      np('x', 'all', { podSelector: {} }),
      np('x', 'a', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{}] }),
    ]));
    const both = comboChainName('ingress', ['x/a', 'x/all']);
    const one = comboChainName('ingress', ['x/all']);
    expect(s.sets.get('in4')?.elements).toEqual([`10.0.1.1 : goto ${both}`, `10.0.1.2 : goto ${one}`, `10.0.1.3 : goto ${one}`]);
    expect(s.chains.get(both)?.rules).toEqual(['jump in/x/a', 'jump in/x/all', 'counter drop']);
    expect(s.chains.get(one)?.rules).toEqual(['jump in/x/all', 'counter drop']);
    expect(s.sets.get('eg4')?.elements).toEqual([]);
    expect(s.combos).toEqual([
      { chain: both, direction: 'ingress', namespace: 'x', policies: ['x/a', 'x/all'] },
      { chain: one, direction: 'ingress', namespace: 'x', policies: ['x/all'] },
    ]);
  });

  it('base chains: conntrack first, the node allowed, then the dispatch maps', () => {
    const s = renderPolicyState(compile([]));
    const self = ['ip saddr . ip daddr @self4 accept', 'ip6 saddr . ip6 daddr @self6 accept'];
    expect(s.chains.get('egress')).toEqual({ name: 'egress', header: 'type filter hook forward priority filter; policy accept;', rules: ['ct state established,related accept', ...self, 'ip saddr vmap @eg4', 'ip6 saddr vmap @eg6'] });
    expect(s.chains.get('ingress')?.rules).toEqual(['ct state established,related accept', 'fib saddr type local accept', ...self, 'ip daddr vmap @in4', 'ip6 daddr vmap @in6']);
    expect([...s.chains.keys()]).toEqual(['egress', 'ingress']);
  });

  it('the new-pod guard: addresses in the pod CIDRs that are not known local pods are dropped, after the dispatch', () => {
    const s = renderPolicyState(compile([np('x', 'deny', { podSelector: { matchLabels: { pod: 'a' } } })]), { guardCidrs: ['10.0.0.0/16', 'fd00::/64', '10.3.0.7/24', '10.1.0.0/16'] });
    expect(s.sets.get('local4')?.elements).toEqual(['10.0.0.0-10.1.255.255', '10.3.0.0-10.3.0.255']); // adjacent CIDRs merge; host bits ignored
    expect(s.sets.get('local6')?.elements).toEqual(['fd00::-fd00::ffff:ffff:ffff:ffff']);
    // every known local pod, isolated or not
    expect(s.sets.get('known4')?.elements).toEqual(['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.2.1', '10.0.2.2', '10.0.2.3', '10.0.3.1', '10.0.3.2', '10.0.3.3']);
    expect(s.chains.get('ingress')?.rules.slice(4)).toEqual(['ip daddr vmap @in4', 'ip6 daddr vmap @in6', 'ip daddr @local4 ip daddr != @known4 counter drop', 'ip6 daddr @local6 ip6 daddr != @known6 counter drop']);
    expect(s.chains.get('egress')?.rules.slice(5)).toEqual(['ip saddr @local4 ip saddr != @known4 counter drop', 'ip6 saddr @local6 ip6 saddr != @known6 counter drop']);
    expect(renderPolicyState(compile([])).sets.has('known4')).toBe(false);
    expect(() => renderPolicyState(compile([]), { guardCidrs: ['10.0.0.0/40'] })).toThrow(/guard CIDR "10.0.0.0\/40" is not a CIDR/);
  });

  it('a new pod under the guard is one element add to known4 (plus its dispatch, when a policy selects it)', () => {
    const without = pods().filter((p) => !(p.metadata.namespace === 'x' && p.metadata.name === 'b'));
    const opts = { guardCidrs: ['10.0.0.0/16'] };
    const policies = [np('x', 'deny', { podSelector: {} })];
    const d = renderDiff(renderPolicyState(compile(policies, without), opts), renderPolicyState(compile(policies), opts));
    expect(d.text).toBe([
      `add element inet twill-policy in4 { 10.0.1.2 : goto ${comboChainName('ingress', ['x/deny'])} }`,
      'add element inet twill-policy self4 { 10.0.1.2 . 10.0.1.2 }',
      'add element inet twill-policy known4 { 10.0.1.2 }',
      '',
    ].join('\n'));
  });

  it('a pod cannot block access to itself: every isolated local pod has its own address pair in self4/self6', () => {
    const list = pods().map((p) => (p.metadata.name === 'c' && p.metadata.namespace === 'x' ? { ...p, status: { ...p.status, podIPs: [{ ip: '10.0.1.3' }, { ip: 'fd00::3' }] } } : p));
    const s = renderPolicyState(compile([np('x', 'deny', { podSelector: { matchLabels: { pod: 'c' } } }), np('y', 'eg', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] })], list));
    expect(s.sets.get('self4')?.elements).toEqual(['10.0.1.3 . 10.0.1.3', '10.0.2.1 . 10.0.2.1']);
    expect(s.sets.get('self6')?.elements).toEqual(['fd00::3 . fd00::3']);
  });

  it('a local pod newly selected by an idle policy adds that policy\'s chain and sets; no existing rule changes', () => {
    const p = [np('x', 'friends', { podSelector: { matchLabels: { role: 'x' } }, ingress: [{ from: [{ namespaceSelector: {} }] }] }), np('y', 'deny', { podSelector: {} })];
    const before = renderPolicyState(compile(p));
    expect(before.chains.has('in/x/friends')).toBe(false);
    const after = renderPolicyState(compile(p, relabel('x/a', { pod: 'a', role: 'x' })));
    const d = renderDiff(before, after);
    expect(d.text).not.toMatch(/^(flush|delete) /m);
    expect(d.text).toContain('add chain inet twill-policy in/x/friends\n');
    expect(d.text).toContain('add set inet twill-policy in/x/friends/0/peer4 { type ipv4_addr; flags interval; }\n');
    for (const [name, c] of before.chains) expect(after.chains.get(name)).toEqual(c);
  });

  it('an address is dispatched once even if a hand-made model lists it twice', () => {
    const m = compile([np('x', 'deny', { podSelector: {} }), np('x', 'open', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{}] })]);
    // a twin of x/b's address with x/a's (different) combination of policies
    const twin = { ...m, localPods: [...m.localPods, { namespace: 'x', name: 'twin', ips: ['10.0.1.2'], ingress: ['x/deny', 'x/open'], egress: [] }] };
    const elems = renderPolicyState(twin).sets.get('in4')?.elements ?? [];
    expect(elems.filter((e) => e.startsWith('10.0.1.2 '))).toEqual([`10.0.1.2 : goto ${comboChainName('ingress', ['x/deny'])}`]);
  });

  it('names too long for nft keep the namespace and hash the policy name', () => {
    const long = 'p'.repeat(250);
    expect(policyChainName('ingress', { namespace: 'x', name: 'short' })).toBe('in/x/short');
    const n = policyChainName('egress', { namespace: 'x', name: long });
    expect(n).toMatch(/^eg\/x\/h-[0-9a-f]{16}$/);
    expect(policyChainName('egress', { namespace: 'x', name: `${long}q` })).not.toBe(n);
  });

  it('the full transaction replaces the table whatever is there', () => {
    const text = renderFull(renderPolicyState(compile([np('x', 'deny', { podSelector: {} })])));
    expect(text.split('\n').slice(0, 3)).toEqual(['table inet twill-policy', 'delete table inet twill-policy', 'table inet twill-policy {']);
    expect(text).toContain('\tchain in/x/deny {\n\t}');
    // regular chains come before the base chains
    expect(text.indexOf('chain in/x/deny')).toBeLessThan(text.indexOf('chain egress'));
  });
});

describe('renderDiff', () => {
  const policies = [np('x', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'friend' } } }] }] })];

  it('equal models: nothing to do', () => {
    const a = renderPolicyState(compile(policies));
    expect(renderDiff(a, renderPolicyState(compile(policies))).text).toBe('');
  });

  it('a peer label change is one element add and no rule change', () => {
    const d = renderDiff(renderPolicyState(compile(policies)), renderPolicyState(compile(policies, relabel('y/c', { pod: 'c', role: 'friend' }))));
    // a podSelector peer is in the policy's namespace only: y/c does not count
    expect(d.text).toBe('');
    const d2 = renderDiff(renderPolicyState(compile(policies)), renderPolicyState(compile(policies, relabel('x/c', { pod: 'c', role: 'friend' }))));
    expect(d2).toEqual({ text: 'add element inet twill-policy in/x/from-b/0/peer4 { 10.0.1.3 }\n', elementsAdded: 1, elementsDeleted: 0, chainsChanged: 0, setsChanged: 0 });
  });

  it('a pod going away is one element delete per set that held it (pod addresses are never merged)', () => {
    const p = [np('x', 'all', { podSelector: {}, ingress: [{ from: [{ podSelector: {} }] }] })];
    const d = renderDiff(renderPolicyState(compile(p)), renderPolicyState(compile(p, pods().filter((x) => !(x.metadata.namespace === 'x' && x.metadata.name === 'b')))));
    expect(d.text).toBe([
      'delete element inet twill-policy in/x/all/0/peer4 { 10.0.1.2 }',
      `delete element inet twill-policy in4 { 10.0.1.2 : goto ${comboChainName('ingress', ['x/all'])} }`,
      'delete element inet twill-policy self4 { 10.0.1.2 . 10.0.1.2 }',
      '',
    ].join('\n'));
    expect(d).toMatchObject({ elementsAdded: 0, elementsDeleted: 3, chainsChanged: 0, setsChanged: 0 });
  });

  it('a policy added: its sets and chains are created before rules and elements refer to them', () => {
    const d = renderDiff(renderPolicyState(compile([])), renderPolicyState(compile(policies)));
    const lines = d.text.trim().split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/^add set inet twill-policy in\/x\/from-b\/0\/peer4 \{ type ipv4_addr; flags interval; \}$/)).toBeGreaterThanOrEqual(0);
    expect(at(/^add chain inet twill-policy in\/x\/from-b$/)).toBeLessThan(at(/^add rule inet twill-policy in-pods\/[0-9a-f]+ jump in\/x\/from-b$/));
    expect(at(/^add chain inet twill-policy in-pods\//)).toBeLessThan(at(/^add element inet twill-policy in4 \{ 10\.0\.1\.1 : goto in-pods\//));
    expect(at(/^add rule inet twill-policy in\/x\/from-b ip saddr @in\/x\/from-b\/0\/peer4 accept$/)).toBeGreaterThan(at(/^add set .*peer4/));
    expect(d.text).not.toMatch(/^(delete|flush) /m);
  });

  it('a policy removed: map elements go first, then the chains are flushed, then deleted, then its sets', () => {
    const d = renderDiff(renderPolicyState(compile(policies)), renderPolicyState(compile([])));
    const lines = d.text.trim().split('\n');
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    const delElem = at(/^delete element inet twill-policy in4 /);
    const flushPol = at(/^flush chain inet twill-policy in\/x\/from-b$/);
    const flushCombo = at(/^flush chain inet twill-policy in-pods\//);
    const delPol = at(/^delete chain inet twill-policy in\/x\/from-b$/);
    const delSet = at(/^delete set inet twill-policy in\/x\/from-b\/0\/peer4$/);
    expect(delElem).toBeGreaterThanOrEqual(0);
    expect(Math.max(delElem, flushPol, flushCombo)).toBeLessThan(Math.min(delPol, delSet));
    expect(delPol).toBeLessThan(delSet);
    expect(d.text).not.toMatch(/^add /m);
  });

  it('a policy changed in place: its chain is flushed and refilled, other chains untouched', () => {
    const changed = [np('x', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'friend' } } }], ports: [{ port: 443 }] }] })];
    const d = renderDiff(renderPolicyState(compile(policies)), renderPolicyState(compile(changed)));
    expect(d.text).toBe([
      'add set inet twill-policy in/x/from-b/0/ports { type inet_proto . inet_service; flags interval; }',
      'flush chain inet twill-policy in/x/from-b',
      'add rule inet twill-policy in/x/from-b ip saddr @in/x/from-b/0/peer4 meta l4proto . th dport @in/x/from-b/0/ports accept',
      'add rule inet twill-policy in/x/from-b ip6 saddr @in/x/from-b/0/peer6 meta l4proto . th dport @in/x/from-b/0/ports accept',
      'add element inet twill-policy in/x/from-b/0/ports { tcp . 443 }',
      '',
    ].join('\n'));
    expect(d.chainsChanged).toBe(1);
  });
});

describe('createNftPolicyEnforcer (fake nft)', () => {
  function fake(failOn?: RegExp) {
    const calls: string[] = [];
    const run: NftRunner = async (args, input) => {
      calls.push(`${args.join(' ')}\n${input ?? ''}`);
      if (failOn && input !== undefined && failOn.test(input)) throw new Error('nft -f -: No such file or directory');
      if (args[0] === '-j') {
        return JSON.stringify({ nftables: [
          { metainfo: {} },
          { rule: { chain: comboChainName('ingress', ['x/deny']), expr: [{ counter: { packets: 7, bytes: 420 } }, { drop: null }] } },
          { rule: { chain: 'ingress', expr: [{ counter: { packets: 99, bytes: 1 } }] } },
        ] });
      }
      return '';
    };
    return { run, calls };
  }

  it('full first, then diffs, nothing when unchanged; serialised', async () => {
    const f = fake();
    const e = createNftPolicyEnforcer({ run: f.run });
    const deny = compile([np('x', 'deny', { podSelector: {} })]);
    const [r1, r2] = await Promise.all([e.apply(compile([])), e.apply(deny)]);
    expect(r1.mode).toBe('full');
    expect(r2.mode).toBe('incremental');
    expect((await e.apply(deny)).mode).toBe('none');
    expect(f.calls).toHaveLength(2);
    expect(f.calls[0]).toMatch(/^-f -\ntable inet twill-policy\ndelete table inet twill-policy\n/);
    expect(f.calls[1]).toMatch(/^-f -\nadd chain inet twill-policy in\/x\/deny\n/);
  });

  it('falls back to a full replacement when the diff fails', async () => {
    const f = fake(/^add chain/);
    const e = createNftPolicyEnforcer({ run: f.run });
    await e.apply(compile([]));
    const r = await e.apply(compile([np('x', 'deny', { podSelector: {} })]));
    expect(r.mode).toBe('full');
    expect(r.fallbackReason).toMatch(/No such file/);
    expect(f.calls[2]).toMatch(/^-f -\ntable inet twill-policy\ndelete table/);
    expect(e.installed()?.chains.has('in/x/deny')).toBe(true);
  });

  it('drop counters come from the combination chains only, named by namespace and policies', async () => {
    const f = fake();
    const e = createNftPolicyEnforcer({ run: f.run });
    expect(await e.dropCounters()).toEqual([]);
    await e.apply(compile([np('x', 'deny', { podSelector: {} })]));
    expect(await e.dropCounters()).toEqual([
      { reason: 'policy', direction: 'ingress', namespace: 'x', policies: ['x/deny'], chain: comboChainName('ingress', ['x/deny']), packets: 7, bytes: 420 },
      { reason: 'unknown-pod', direction: 'ingress', namespace: '', policies: [], chain: 'ingress', packets: 99, bytes: 1 },
    ]);
  });
});
