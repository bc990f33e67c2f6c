// NetworkPolicy enforcement against the real kernel: policies compiled by lib/policy, installed
// by its nftables enforcer in a node netns, checked with real TCP/UDP connections between pods
// on a bridge (bridged pod↔pod, through br_netfilter), from a routed "outside" peer (what another
// node's pod looks like), and from the node itself. Scenarios run in order on one topology, so
// each apply() after the first is an incremental transaction from the previous scenario's table.
// SCTP: this kernel has no SCTP (socket() answers EPROTONOSUPPORT), so SCTP is covered by the
// rules loading (the ports set below) and the unit tables, not by traffic.
import { expect, it } from 'vitest';
import {
  compilePolicies, createNftPolicyEnforcer, renderFull, renderPolicyState, type NetworkPolicy, type Pod, type PolicyModel,
} from '../../../lib/policy/index.js';
import { describeRoot, uniquePrefix } from '../../util/root.js';
import { addNetns, delNetns, inNs, inNsInput } from '../traffic/netns.js';
import { namespaces, np, pod } from '../../unit/policy/fixtures.js';
import { OUTSIDE_IP, POD_IPS, tableShape, usePolicyNode } from './topology.js';


function clusterPods(labels: Record<string, Record<string, string>> = {}): Pod[] {
  return Object.entries(POD_IPS).map(([ref, ip]) => {
    const [ns, name] = ref.split('/') as [string, string];
    const opts: Parameters<typeof pod>[2] = { ips: [ip], labels: labels[ref] ?? { pod: name } };
    if (ref === 'x/a') opts.http = 8080;
    return pod(ns, name, opts);
  });
}

const compile = (policies: NetworkPolicy[], pods = clusterPods()): PolicyModel =>
  compilePolicies({ policies, namespaces: namespaces(), pods, nodeName: 'n1' });

/** Rules only: what must not change when a pod or label changes. */
async function rulesOnly(ns: string): Promise<Record<string, unknown[]>> {
  return (await tableShape(ns)).chains;
}

describeRoot('network policy: nftables enforcement in a netns', () => {
  const prefix = uniquePrefix('twp');
  const node = usePolicyNode(prefix);

  /**
   * Runs "src -> dst proto port ok|no|refused" lines, sources in parallel, and returns them with
   * the observed verdict. refused: a RST came back, so the packets did pass both ways.
   */
  async function observe(lines: string[]): Promise<string[]> {
    const parsed = lines.map((l) => {
      const m = /^(\S+) -> (\S+) (tcp|udp) (\d+) (ok|no|refused)$/.exec(l);
      if (!m) throw new Error(`bad probe: ${l}`);
      const dst = POD_IPS[m[2] as string] ?? (m[2] as string);
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(dst)) throw new Error(`probe destination must be a pod or an address: ${l}`);
      return { line: l, src: m[1] as string, dst, proto: m[3] as 'tcp' | 'udp', port: Number(m[4]) };
    });
    const bySrc = new Map<string, typeof parsed>();
    for (const p of parsed) bySrc.set(p.src, [...(bySrc.get(p.src) ?? []), p]);
    const verdict = new Map<(typeof parsed)[number], string>();
    await Promise.all([...bySrc.entries()].map(async ([src, list]) => {
      const r = await node.topo.probe(src, list.map((p) => [p.dst, p.proto, p.port]));
      list.forEach((p, i) => verdict.set(p, r[i] ?? '?'));
    }));
    return parsed.map((p) => p.line.replace(/(ok|no|refused)$/, verdict.get(p) ?? '?'));
  }

  const SCENARIOS: { name: string; policies: NetworkPolicy[]; probes: string[] }[] = [
    {
      name: 'no policy: everything connects',
      policies: [],
      probes: ['x/b -> x/a tcp 80 ok', 'y/a -> x/a udp 53 ok', 'outside -> x/a tcp 80 ok', 'node -> x/a tcp 80 ok', 'x/a -> z/a udp 81 ok'],
    },
    {
      name: 'default deny ingress in x: bridged and routed peers blocked, the node allowed, replies to x pass',
      policies: [np('x', 'deny', { podSelector: {} })],
      probes: [
        'x/b -> x/a tcp 80 no', 'y/a -> x/a udp 53 no', 'z/a -> x/b tcp 8080 no', 'outside -> x/a tcp 80 no',
        'node -> x/a tcp 80 ok', 'node -> x/b udp 53 ok',
        'x/a -> y/a tcp 80 ok', 'x/b -> 10.9.0.2 tcp 9 refused', 'x/a -> z/a udp 53 ok', 'y/a -> z/a tcp 80 ok',
      ],
    },
    {
      name: 'allow from a podSelector',
      policies: [np('x', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })],
      probes: ['x/b -> x/a tcp 80 ok', 'x/b -> x/a udp 53 ok', 'y/a -> x/a tcp 80 no', 'outside -> x/a tcp 80 no', 'y/a -> x/b tcp 80 ok'],
    },
    {
      name: 'allow from a namespaceSelector',
      policies: [np('x', 'from-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })],
      probes: ['y/a -> x/a tcp 80 ok', 'y/a -> x/b udp 81 ok', 'x/b -> x/a tcp 80 no', 'z/a -> x/a tcp 80 no'],
    },
    {
      name: 'allow from an ipBlock with except (pods and the routed outside address)',
      policies: [np('x', 'block', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.2.0/24', `${OUTSIDE_IP}/32`] } }] }] })],
      probes: ['x/b -> x/a tcp 80 ok', 'z/a -> x/a udp 53 ok', 'y/a -> x/a tcp 80 no', 'outside -> x/a tcp 80 no'],
    },
    {
      name: 'allow from an ipBlock that holds the outside address only',
      policies: [np('x', 'block', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.9.0.0/24' } }] }] })],
      probes: ['outside -> x/a tcp 80 ok', 'x/b -> x/a tcp 80 no', 'z/a -> x/a tcp 80 no'],
    },
    {
      name: 'a named port resolves on each destination pod',
      policies: [np('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'http' }] }] })],
      probes: ['y/a -> x/a tcp 8080 ok', 'y/a -> x/a tcp 80 no', 'y/a -> x/b tcp 8080 no', 'outside -> x/a tcp 8080 ok'],
    },
    {
      name: 'endPort: a port range',
      policies: [np('x', 'range', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80, endPort: 81 }, { protocol: 'SCTP', port: 80 }] }] })],
      probes: ['y/a -> x/a tcp 80 ok', 'y/a -> x/a tcp 81 ok', 'y/a -> x/a tcp 8080 no', 'y/a -> x/a udp 81 no'],
    },
    {
      name: 'policies are unioned',
      policies: [
        np('x', 'b-tcp80', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }], ports: [{ port: 80 }] }] }),
        np('x', 'y-udp53', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ protocol: 'UDP', port: 53 }] }] }),
      ],
      probes: ['x/b -> x/a tcp 80 ok', 'x/b -> x/a udp 53 no', 'y/a -> x/a udp 53 ok', 'y/a -> x/a tcp 80 no'],
    },
    {
      name: 'egress deny with a DNS-like UDP 53 allowance; ingress to x and replies still pass',
      policies: [np('x', 'dns-only', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }] })],
      probes: ['x/a -> y/a udp 53 ok', 'x/b -> z/a udp 53 ok', 'x/a -> y/a udp 81 no', 'x/a -> y/a tcp 80 no', 'x/a -> x/b tcp 80 no', 'y/a -> x/a tcp 80 ok', 'node -> x/b tcp 80 ok', 'outside -> x/a tcp 8080 ok'],
    },
    {
      name: 'egress to a named port resolves on each peer pod',
      policies: [np('x', 'eg-http', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'http' }] }] })],
      probes: ['x/b -> x/a tcp 8080 ok', 'x/b -> x/a tcp 80 no', 'x/b -> y/a tcp 8080 no', 'x/a -> y/a tcp 80 ok'],
    },
    {
      name: 'both ends isolated: the source egress and the destination ingress must both allow',
      policies: [
        np('x', 'a-out', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { namespaceSelector: { matchLabels: { ns: 'z' } } }] }] }),
        np('y', 'a-in', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'x' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] }),
      ],
      probes: ['x/a -> y/a tcp 80 no', 'x/b -> y/a tcp 80 ok', 'x/a -> z/a tcp 80 ok', 'x/a -> x/b tcp 80 no'],
    },
  ];

  for (const sc of SCENARIOS) {
    it(sc.name, async () => {
      const model = compile(sc.policies);
      expect(model.rejected).toEqual([]);
      await node.enforcer.apply(model);
      expect(await observe(sc.probes)).toEqual(sc.probes);
    });
  }

  it('the incremental transactions above left exactly the table a full render gives', async () => {
    const last = SCENARIOS[SCENARIOS.length - 1];
    const check = `${prefix}chk`;
    await addNetns(check);
    try {
      await inNsInput(check, renderFull(renderPolicyState(compile(last?.policies ?? []))), 'nft', '-f', '-');
      expect(await tableShape(node.topo.node)).toEqual(await tableShape(check));
    } finally {
      await delNetns(check);
    }
  });

  it('a label change is applied as element updates only: the rules do not change, the new peer connects', async () => {
    const policies = [np('x', 'friends', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { role: 'friend' } } }], ports: [{ port: 'http' }, { port: 80 }] }] })];
    await node.enforcer.apply(compile(policies));
    expect(await observe(['x/b -> x/a tcp 80 no', 'x/b -> x/a tcp 8080 no'])).toEqual(['x/b -> x/a tcp 80 no', 'x/b -> x/a tcp 8080 no']);
    const before = await rulesOnly(node.topo.node);
    const res = await node.enforcer.apply(compile(policies, clusterPods({ 'x/b': { pod: 'b', role: 'friend' } })));
    expect(res.mode).toBe('incremental');
    expect(res.diff).toMatchObject({ chainsChanged: 0, setsChanged: 0, elementsAdded: 1, elementsDeleted: 0 });
    expect(res.diff?.text).toBe('add element inet twill-policy in/x/friends/0/peer4 { 10.0.1.2 }\n');
    expect(await rulesOnly(node.topo.node)).toEqual(before);
    expect(await observe(['x/b -> x/a tcp 80 ok', 'x/b -> x/a tcp 8080 ok', 'y/a -> x/a tcp 80 no'])).toEqual(['x/b -> x/a tcp 80 ok', 'x/b -> x/a tcp 8080 ok', 'y/a -> x/a tcp 80 no']);
    // and back: the label removed, the connection blocked again, still without a rule change
    const back = await node.enforcer.apply(compile(policies));
    expect(back.diff?.text).toBe('delete element inet twill-policy in/x/friends/0/peer4 { 10.0.1.2 }\n');
    expect(await rulesOnly(node.topo.node)).toEqual(before);
    expect(await observe(['x/b -> x/a tcp 80 no'])).toEqual(['x/b -> x/a tcp 80 no']);
  });

  it('a pod newly selected by a policy is isolated through a verdict-map element', async () => {
    const policies = [np('x', 'deny-labelled', { podSelector: { matchLabels: { locked: 'yes' } } })];
    await node.enforcer.apply(compile(policies));
    const before = await rulesOnly(node.topo.node);
    expect(await observe(['y/a -> x/b tcp 80 ok'])).toEqual(['y/a -> x/b tcp 80 ok']);
    const res = await node.enforcer.apply(compile(policies, clusterPods({ 'x/b': { pod: 'b', locked: 'yes' } })));
    // the pod's combination of policies is new: one chain appears, no existing rule changes
    expect(res.diff?.text).toContain('add element inet twill-policy in4 { 10.0.1.2 : goto in-pods/');
    const after = await rulesOnly(node.topo.node);
    for (const [chain, rules] of Object.entries(before)) expect(after[chain]).toEqual(rules);
    expect(await observe(['y/a -> x/b tcp 80 no', 'node -> x/b tcp 80 ok'])).toEqual(['y/a -> x/b tcp 80 no', 'node -> x/b tcp 80 ok']);
  });

  it('counts drops per combination of policies (namespace and policy names)', async () => {
    await node.enforcer.apply(compile([np('x', 'deny', { podSelector: { matchLabels: { pod: 'a' } } })]));
    const zero = await node.enforcer.dropCounters();
    expect(zero).toEqual([{ reason: 'policy', direction: 'ingress', namespace: 'x', policies: ['x/deny'], chain: expect.stringMatching(/^in-pods\//), packets: 0, bytes: 0 }]);
    await observe(['y/a -> x/a tcp 80 no', 'z/a -> x/a udp 53 no']);
    const [c] = await node.enforcer.dropCounters();
    expect(c?.packets).toBeGreaterThanOrEqual(2);
    expect(c?.bytes).toBeGreaterThan(0);
  });

  it('without bridge-nf-call-iptables, bridged pod↔pod traffic bypasses the forward hook (the agent must set it)', async () => {
    await node.enforcer.apply(compile([np('x', 'deny', { podSelector: {} })]));
    await inNs(node.topo.node, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0');
    try {
      expect(await observe(['x/b -> x/a tcp 80 ok', 'outside -> x/a tcp 80 no'])).toEqual(['x/b -> x/a tcp 80 ok', 'outside -> x/a tcp 80 no']);
    } finally {
      await inNs(node.topo.node, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1');
    }
    expect(await observe(['x/b -> x/a tcp 80 no'])).toEqual(['x/b -> x/a tcp 80 no']);
  });

  it('a pod cannot block access to itself: hairpin through a Service address passes its own ingress policy', async () => {
    // a kube-proxy-like Service 10.96.0.10:80 → x/a:80, masqueraded when the client is the backend
    const svc = 'table ip twp-svc {\n chain pre { type nat hook prerouting priority dstnat; ip daddr 10.96.0.10 tcp dport 80 dnat to 10.0.1.1:80; }\n'
      + ' chain post { type nat hook postrouting priority srcnat; ip saddr 10.0.1.1 ip daddr 10.0.1.1 masquerade; }\n}\n';
    await inNsInput(node.topo.node, svc, 'nft', '-f', '-');
    try {
      await node.enforcer.apply(compile([np('x', 'deny', { podSelector: {} })]));
      expect(await observe(['x/a -> 10.96.0.10 tcp 80 ok', 'x/b -> 10.96.0.10 tcp 80 no'])).toEqual(['x/a -> 10.96.0.10 tcp 80 ok', 'x/b -> 10.96.0.10 tcp 80 no']);
      // it is the self pair that lets it through
      await inNs(node.topo.node, 'nft', 'flush', 'set', 'inet', 'twill-policy', 'self4');
      expect(await observe(['x/a -> 10.96.0.10 tcp 80 no'])).toEqual(['x/a -> 10.96.0.10 tcp 80 no']);
    } finally {
      await node.enforcer.remove();   // the kernel no longer matches what the enforcer installed
      await inNs(node.topo.node, 'nft', 'delete', 'table', 'ip', 'twp-svc');
    }
  });

  it('a table changed behind its back is replaced whole on the next apply', async () => {
    await node.enforcer.apply(compile([np('x', 'deny', { podSelector: {} })]));
    await inNs(node.topo.node, 'nft', 'delete', 'table', 'inet', 'twill-policy');
    const res = await node.enforcer.apply(compile([np('x', 'deny', { podSelector: {} }), np('x', 'from-b', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })]));
    expect(res.mode).toBe('full');
    expect(res.fallbackReason).toMatch(/nft -f -/);
    expect(await observe(['x/b -> x/a tcp 80 ok', 'y/a -> x/a tcp 80 no'])).toEqual(['x/b -> x/a tcp 80 ok', 'y/a -> x/a tcp 80 no']);
  });

  it('touches no other table; remove() deletes only its own, idempotently', async () => {
    await inNsInput(node.topo.node, 'table ip foreign {\n chain fchain { type filter hook forward priority 10; policy accept; tcp dport 9999 drop; }\n}\n', 'nft', '-f', '-');
    const foreign = await inNs(node.topo.node, 'nft', 'list', 'table', 'ip', 'foreign');
    await node.enforcer.apply(compile([np('x', 'deny', { podSelector: {} })]));
    expect(await inNs(node.topo.node, 'nft', 'list', 'table', 'ip', 'foreign')).toBe(foreign);
    await node.enforcer.remove();
    await node.enforcer.remove();
    const tables = await inNs(node.topo.node, 'nft', 'list', 'tables');
    expect(tables).not.toContain('twill-policy');
    expect(tables).toContain('table ip foreign');
    expect(await observe(['x/b -> x/a tcp 80 ok'])).toEqual(['x/b -> x/a tcp 80 ok']);
  });

  it('the new-pod guard keeps a pod the agent does not know yet closed, then opens it as a known pod', async () => {
    const guarded = createNftPolicyEnforcer({ netns: node.topo.node, guardCidrs: ['10.0.0.0/16'] });
    const policies = [np('x', 'deny', { podSelector: { matchLabels: { pod: 'b' } } })];
    const unseen = clusterPods().filter((p) => p.metadata.name !== 'b');
    try {
      await guarded.apply(compile(policies, unseen));
      // x/b is not in the model: closed both ways, except to and from the node itself
      const closed = ['y/a -> x/b tcp 80 no', 'outside -> x/b tcp 80 no', 'x/b -> y/a tcp 80 no', 'x/b -> 10.9.0.2 tcp 9 no', 'node -> x/b tcp 80 ok', 'y/a -> x/a tcp 80 ok', 'x/a -> z/a udp 53 ok'];
      expect(await observe(closed)).toEqual(closed);
      const counters = await guarded.dropCounters();
      expect(counters.filter((c) => c.reason === 'unknown-pod').reduce((n, c) => n + c.packets, 0)).toBeGreaterThanOrEqual(4);
      // now the agent knows it, selected by a deny policy: ingress stays closed, egress opens
      await guarded.apply(compile(policies));
      const known = ['y/a -> x/b tcp 80 no', 'x/b -> y/a tcp 80 ok', 'x/b -> 10.9.0.2 tcp 9 refused', 'node -> x/b tcp 80 ok'];
      expect(await observe(known)).toEqual(known);
    } finally {
      await guarded.remove();
    }
  });
});

describeRoot('network policy: dual-stack and SCTP rules load into the kernel', () => {
  it('IPv6 pod addresses, v6 ipBlock ranges with except, named ports on v6 and SCTP ports are accepted by nft', async () => {
    const ns = `${uniquePrefix('twp')}v6`;
    await addNetns(ns);
    try {
      const list = [pod('x', 'a', { ips: ['10.0.1.1', 'fd00::1'], http: 8080 }), pod('x', 'b', { ips: ['10.0.1.2', 'fd00::2'] })];
      const model = compilePolicies({
        policies: [
          np('x', 'v6', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: {} }, { ipBlock: { cidr: 'fd00:1::/48', except: ['fd00:1:0:8000::/49'] } }], ports: [{ port: 'http' }, { protocol: 'SCTP', port: 9000, endPort: 9100 }] }] }),
          np('x', 'v6-eg', { podSelector: { matchLabels: { pod: 'b' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { pod: 'a' } } }], ports: [{ port: 'http' }] }] }),
        ],
        namespaces: namespaces(),
        pods: list,
        nodeName: 'n1',
      });
      const e = createNftPolicyEnforcer({ netns: ns });
      expect((await e.apply(model)).mode).toBe('full');
      const text = await inNs(ns, 'nft', 'list', 'table', 'inet', 'twill-policy');
      // the /48 minus its upper /49 is the lower /49, which nft prints back as a prefix
      expect(text).toContain('fd00:1::/49');
      expect(text).not.toContain('fd00:1:0:8000::');
      expect(text).toMatch(/fd00::1 \. tcp \. 8080/);
      expect(text).toContain('sctp . 9000-9100');
      expect(text).toMatch(/fd00::1 : goto in-pods\/[0-9a-f]{16}/);
      expect(text).toMatch(/fd00::2 : goto eg-pods\/[0-9a-f]{16}/);
      // and an incremental change on the v6 side
      const r = await e.apply(compilePolicies({ policies: [], namespaces: namespaces(), pods: list, nodeName: 'n1' }));
      expect(r.mode).toBe('incremental');
      expect(await inNs(ns, 'nft', 'list', 'table', 'inet', 'twill-policy')).not.toContain('fd00');
    } finally {
      await delNetns(ns);
    }
  });
});
