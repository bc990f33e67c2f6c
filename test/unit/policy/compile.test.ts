// The policy compiler, table-driven: for each set of policies, a reachability table of probes
// (source → destination, protocol, port, expected verdict) read through the compiled model.
// Every pod of the fixture is on the local node, so both the source's egress and the
// destination's ingress apply to each probe.
import { describe, expect, it } from 'vitest';
import { compilePolicies, connectionAllowed, type NetworkPolicy, type PolicyModel } from '../../../lib/policy/index.js';
import { namespaces, np, parseProbe, pod, podIp, pods } from './fixtures.js';

const compile = (policies: NetworkPolicy[], podList = pods(), nodeName = 'n1'): PolicyModel =>
  compilePolicies({ policies, namespaces: namespaces(), pods: podList, nodeName });

interface Row { name: string; policies: NetworkPolicy[]; probes: string[] }

const ROWS: Row[] = [
  { name: 'no policy: everything passes', policies: [], probes: ['x/a -> y/b tcp 80 ok', 'z/c -> x/a udp 81 ok', '192.168.9.9 -> x/a tcp 22 ok', 'x/a -> x/b icmp ok'] },
  {
    name: 'default deny ingress in x (podSelector {}, no rules)',
    policies: [np('x', 'deny', { podSelector: {} })],
    probes: ['x/b -> x/a tcp 80 no', 'y/a -> x/c udp 81 no', 'x/a -> x/b icmp no', 'x/a -> y/b tcp 80 ok', 'y/a -> y/b tcp 80 ok', '192.168.9.9 -> x/a tcp 80 no'],
  },
  {
    name: 'a missing spec.podSelector (omitted when empty by newer API servers) selects every pod of the namespace',
    policies: [np('x', 'deny-omitted', { policyTypes: ['Ingress'] })],
    probes: ['y/a -> x/a tcp 80 no', 'y/a -> x/c tcp 80 no', 'x/a -> y/b tcp 80 ok'],
  },
  {
    name: 'an empty ingress rule allows everything',
    policies: [np('x', 'all', { podSelector: {}, ingress: [{}] })],
    probes: ['y/a -> x/a tcp 80 ok', '192.168.9.9 -> x/b udp 5000 ok', 'x/c -> x/a icmp ok'],
  },
  {
    name: 'ingress rule with from: [] and ports: [] allows everything',
    policies: [np('x', 'all', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [], ports: [] }] })],
    probes: ['z/c -> x/a tcp 1234 ok', 'z/c -> x/a icmp ok'],
  },
  {
    name: 'allow from a podSelector (own namespace only)',
    policies: [np('x', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    probes: ['x/b -> x/a tcp 80 ok', 'x/b -> x/a udp 81 ok', 'x/c -> x/a tcp 80 no', 'y/b -> x/a tcp 80 no', 'x/c -> x/b tcp 80 ok'],
  },
  {
    name: 'allow from a namespaceSelector',
    policies: [np('x', 'from-y', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] })],
    probes: ['y/a -> x/a tcp 80 ok', 'y/c -> x/a udp 81 ok', 'x/b -> x/a tcp 80 no', 'z/a -> x/a tcp 80 no'],
  },
  {
    name: 'namespaceSelector and podSelector in one peer: both must match',
    policies: [np('x', 'y-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } }, podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    probes: ['y/b -> x/a tcp 80 ok', 'y/c -> x/a tcp 80 no', 'x/b -> x/a tcp 80 no', 'z/b -> x/a tcp 80 no'],
  },
  {
    name: 'the same two selectors as two peers: either matches',
    policies: [np('x', 'y-or-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }, { podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    probes: ['y/c -> x/a tcp 80 ok', 'x/b -> x/a tcp 80 ok', 'x/c -> x/a tcp 80 no', 'z/b -> x/a tcp 80 no'],
  },
  {
    name: 'namespaceSelector {}: every pod of every namespace, but not outside addresses',
    policies: [np('x', 'pods', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })],
    probes: ['z/c -> x/a tcp 80 ok', 'x/b -> x/c udp 81 ok', '192.168.9.9 -> x/a tcp 80 no'],
  },
  {
    name: 'namespaceSelector on the label the API server sets (kubernetes.io/metadata.name)',
    policies: [np('x', 'by-name', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'z' } } }] }] })],
    probes: ['z/a -> x/a tcp 80 ok', 'y/a -> x/a tcp 80 no'],
  },
  {
    name: 'ipBlock with except',
    policies: [np('x', 'block', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24'] } }] }] })],
    probes: ['x/b -> x/a tcp 80 ok', 'z/c -> x/a tcp 80 ok', 'y/b -> x/a tcp 80 no', '10.0.200.1 -> x/a tcp 80 ok', '192.168.1.1 -> x/a tcp 80 no'],
  },
  {
    name: 'numeric port, TCP by default',
    policies: [np('x', 'p80', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ port: 80 }] }] })],
    probes: ['y/b -> x/a tcp 80 ok', 'y/b -> x/a tcp 81 no', 'y/b -> x/a udp 80 no', 'y/b -> x/a icmp no'],
  },
  {
    name: 'endPort range',
    policies: [np('x', 'range', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ protocol: 'TCP', port: 80, endPort: 82 }] }] })],
    probes: ['y/b -> x/a tcp 79 no', 'y/b -> x/a tcp 80 ok', 'y/b -> x/a tcp 82 ok', 'y/b -> x/a tcp 83 no'],
  },
  {
    name: 'protocol without a port: every port of that protocol',
    policies: [np('x', 'udp', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ protocol: 'UDP' }] }] })],
    probes: ['y/b -> x/a udp 1 ok', 'y/b -> x/a udp 65535 ok', 'y/b -> x/a tcp 80 no'],
  },
  {
    name: 'SCTP port',
    policies: [np('x', 'sctp', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ ports: [{ protocol: 'SCTP', port: 80 }] }] })],
    probes: ['y/b -> x/a sctp 80 ok', 'y/b -> x/a tcp 80 no', 'y/b -> x/a sctp 81 no'],
  },
  {
    name: 'named port on ingress resolves on each destination pod',
    policies: [np('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'http' }] }] })],
    probes: ['y/b -> x/c tcp 8080 ok', 'y/b -> x/c tcp 9090 no', 'y/b -> x/a tcp 8080 no', 'y/b -> x/a tcp 80 no'],
  },
  {
    name: 'named port with the wrong protocol does not resolve',
    policies: [np('x', 'named-udp', { podSelector: {}, ingress: [{ ports: [{ port: 'serve-81-udp', protocol: 'TCP' }, { port: 'serve-80-tcp', protocol: 'TCP' }] }] })],
    probes: ['y/b -> x/a tcp 81 no', 'y/b -> x/a udp 81 no', 'y/b -> x/a tcp 80 ok'],
  },
  {
    name: 'named port on egress resolves on each peer pod',
    policies: [np('x', 'eg-named', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: {} }], ports: [{ port: 'http' }] }] })],
    probes: ['x/a -> x/c tcp 8080 ok', 'x/a -> y/a tcp 9090 ok', 'x/a -> y/a tcp 8080 no', 'x/a -> z/a tcp 8080 no', 'x/a -> 192.168.1.1 tcp 8080 no', 'y/b -> x/a tcp 80 ok'],
  },
  {
    name: 'named port towards an ipBlock resolves on the pods inside the block',
    policies: [np('x', 'eg-named-block', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ ipBlock: { cidr: '10.0.2.0/24' } }], ports: [{ port: 'http' }] }] })],
    probes: ['x/a -> y/a tcp 9090 ok', 'x/a -> x/c tcp 8080 no'],
  },
  {
    name: 'multiple policies are unioned',
    policies: [
      np('x', 'from-b', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] }),
      np('x', 'from-y', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }], ports: [{ port: 80 }] }] }),
    ],
    probes: ['x/b -> x/a tcp 80 ok', 'x/b -> x/a udp 81 ok', 'y/a -> x/a tcp 80 ok', 'y/a -> x/a udp 81 no', 'x/b -> x/c tcp 80 no', 'y/a -> x/c tcp 80 ok'],
  },
  {
    name: 'egress deny all (policyTypes Egress only): ingress untouched',
    policies: [np('x', 'deny-eg', { podSelector: {}, policyTypes: ['Egress'] })],
    probes: ['x/a -> y/b tcp 80 no', 'x/a -> x/b tcp 80 no', 'x/a -> 192.168.1.1 udp 53 no', 'y/b -> x/a tcp 80 ok'],
  },
  {
    name: 'egress deny + allow DNS-like UDP 53',
    policies: [np('x', 'dns', { podSelector: {}, policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'UDP', port: 53 }] }] })],
    probes: ['x/a -> 192.168.1.1 udp 53 ok', 'x/a -> z/a udp 53 ok', 'x/a -> z/a tcp 53 no', 'x/a -> z/a udp 54 no'],
  },
  {
    name: 'egress rules without policyTypes imply Egress and keep the implied Ingress (default deny ingress)',
    policies: [np('x', 'implied', { podSelector: { matchLabels: { pod: 'a' } }, egress: [{ to: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    probes: ['x/a -> x/b tcp 80 ok', 'x/a -> x/c tcp 80 no', 'x/b -> x/a tcp 80 no'],
  },
  {
    name: 'an empty egress list without policyTypes is ingress-only',
    policies: [np('x', 'ing-only', { podSelector: { matchLabels: { pod: 'a' } }, egress: [] })],
    probes: ['x/a -> x/b tcp 80 ok', 'x/b -> x/a tcp 80 no'],
  },
  {
    name: 'policyTypes [Ingress] ignores egress rules',
    policies: [np('x', 'ing', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Ingress'], ingress: [{}], egress: [{ to: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })],
    probes: ['x/a -> x/c tcp 80 ok', 'z/c -> x/a tcp 80 ok'],
  },
  {
    name: 'policyTypes [Egress] ignores ingress rules and leaves ingress open',
    policies: [np('x', 'eg', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }], egress: [{}] })],
    probes: ['z/c -> x/a tcp 80 ok', 'x/a -> z/c tcp 80 ok'],
  },
  {
    name: 'both directions must allow: egress of the source and ingress of the destination',
    policies: [
      np('x', 'a-out', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ namespaceSelector: { matchLabels: { ns: 'y' } } }] }] }),
      np('y', 'b-in', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'c' } } }] }] }),
    ],
    probes: ['x/a -> y/a tcp 80 ok', 'x/a -> y/b tcp 80 no', 'y/c -> y/b tcp 80 ok', 'x/a -> z/a tcp 80 no'],
  },
  {
    name: 'matchExpressions In / NotIn / Exists / DoesNotExist',
    policies: [
      np('x', 'in', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: ['a', 'b'] }] }, ingress: [{ from: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'NotIn', values: ['y'] }] } }] }] }),
      np('y', 'exists', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'Exists' }] }, ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchExpressions: [{ key: 'nothere', operator: 'DoesNotExist' }, { key: 'pod', operator: 'NotIn', values: ['c'] }] } }] }] }),
    ],
    probes: ['z/c -> x/a tcp 80 ok', 'y/a -> x/a tcp 80 no', 'x/c -> x/b tcp 80 ok', 'y/a -> x/c tcp 80 ok', 'x/a -> y/b tcp 80 ok', 'x/c -> y/b tcp 80 no', 'z/b -> y/c tcp 80 ok'],
  },
];

describe('compilePolicies: reachability tables', () => {
  for (const row of ROWS) {
    it(row.name, () => {
      const model = compile(row.policies);
      expect(model.rejected).toEqual([]);
      const got = row.probes.map((line) => {
        const c = parseProbe(line);
        const probe = c.port === undefined ? { src: c.src, dst: c.dst, protocol: c.protocol } : { src: c.src, dst: c.dst, protocol: c.protocol, port: c.port };
        return `${line.replace(/ (ok|no)$/, '')} ${connectionAllowed(model, probe) ? 'ok' : 'no'}`;
      });
      expect(got).toEqual(row.probes.map((l) => l.trim()));
    });
  }
});

describe('compilePolicies: the model', () => {
  it('isolation per local pod and direction, with the policies that isolate it', () => {
    const m = compile([
      np('x', 'deny', { podSelector: {} }),
      np('x', 'eg', { podSelector: { matchLabels: { pod: 'a' } }, policyTypes: ['Egress'] }),
    ]);
    const xa = m.localPods.find((p) => p.namespace === 'x' && p.name === 'a');
    const yb = m.localPods.find((p) => p.namespace === 'y' && p.name === 'b');
    expect(xa).toEqual({ namespace: 'x', name: 'a', ips: ['10.0.1.1'], ingress: ['x/deny'], egress: ['x/eg'] });
    expect(yb).toEqual({ namespace: 'y', name: 'b', ips: ['10.0.2.2'], ingress: [], egress: [] });
    expect(m.policies.map((p) => [p.key, p.ingress?.length, p.egress?.length])).toEqual([['x/deny', 0, undefined], ['x/eg', undefined, 0]]);
  });

  it('ipBlock except is cut out of the range; pods outside every block are single elements', () => {
    const m = compile([np('x', 'b', {
      podSelector: {},
      ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.0.2.0/24', '10.0.9.128/25'] } }, { namespaceSelector: { matchLabels: { ns: 'y' } } }, { ipBlock: { cidr: '192.168.0.7/24' } }] }],
    })]);
    const rule = m.policies[0]?.ingress?.[0];
    expect(rule?.peers).toEqual({
      v4: [
        // y's pods are in the cut-out /24 but selected by the namespaceSelector: one element each
        { from: '10.0.0.0', to: '10.0.1.255' },
        { from: '10.0.2.1', to: '10.0.2.1' },
        { from: '10.0.2.2', to: '10.0.2.2' },
        { from: '10.0.2.3', to: '10.0.2.3' },
        { from: '10.0.3.0', to: '10.0.9.127' },
        { from: '10.0.10.0', to: '10.0.255.255' },
        // host bits in an ipBlock cidr are ignored, as the API server's legacy parsing does
        { from: '192.168.0.0', to: '192.168.0.255' },
      ],
      v6: [],
    });
  });

  it('port ranges of one protocol merge; named ports stay per pod', () => {
    const m = compile([np('x', 'p', { podSelector: {}, ingress: [{ ports: [{ port: 80 }, { port: 81, endPort: 90 }, { port: 85, endPort: 100 }, { protocol: 'UDP', port: 53 }, { port: 'http' }, { port: 200 }] }] })]);
    expect(m.policies[0]?.ingress?.[0]?.ports).toEqual({
      ranges: [{ protocol: 'TCP', from: 80, to: 100 }, { protocol: 'TCP', from: 200, to: 200 }, { protocol: 'UDP', from: 53, to: 53 }],
      named: true,
      resolved: [{ ip: '10.0.1.3', protocol: 'TCP', port: 8080 }],
    });
  });

  it('ingress named ports resolve only on local selected pods', () => {
    const list = pods().map((p) => (p.metadata.namespace === 'x' && p.metadata.name === 'c' ? { ...p, spec: { ...p.spec, nodeName: 'n2' } } : p));
    const m = compile([np('x', 'named', { podSelector: {}, ingress: [{ ports: [{ port: 'http' }] }] })], list);
    expect(m.policies[0]?.ingress?.[0]?.ports).toEqual({ ranges: [], named: true, resolved: [] });
    expect(m.localPods.map((p) => `${p.namespace}/${p.name}`)).not.toContain('x/c');
  });

  it('only pods of the local node are isolated here; remote pods are still peers', () => {
    const list = [pod('x', 'a'), pod('x', 'b', { node: 'n2' })];
    const m = compile([np('x', 'from-b', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })], list);
    expect(m.localPods.map((p) => p.name)).toEqual(['a']);
    expect(m.policies[0]?.ingress?.[0]?.peers).toEqual({ v4: [{ from: '10.0.1.2', to: '10.0.1.2' }], v6: [] });
  });

  it('policies that isolate no pod of this node are idle here: listed, not compiled', () => {
    const list = [pod('x', 'a'), pod('x', 'b', { node: 'n2' }), pod('y', 'a')];
    const m = compile([
      np('x', 'b-only', { podSelector: { matchLabels: { pod: 'b' } } }),
      np('z', 'empty-ns', { podSelector: {} }),
      np('x', 'a-only', { podSelector: { matchLabels: { pod: 'a' } } }),
    ], list);
    expect(m.policies.map((p) => p.key)).toEqual(['x/a-only']);
    expect(m.idle).toEqual(['x/b-only', 'z/empty-ns']);
  });

  it('two local pods claiming one address: the one not being deleted owns it, the other is only a peer', () => {
    const old = pod('x', 'a', { ips: ['10.0.1.9'], labels: { pod: 'a' } });
    old.metadata.deletionTimestamp = '2026-12-07T22:00:00Z';
    const fresh = pod('x', 'z', { ips: ['10.0.1.9'], labels: { pod: 'b' } });
    const policies = [np('x', 'a', { podSelector: { matchLabels: { pod: 'a' } } }), np('x', 'b', { podSelector: { matchLabels: { pod: 'b' } }, ingress: [{}] })];
    const m = compile(policies, [old, fresh]);
    expect(m.localPods).toEqual([{ namespace: 'x', name: 'z', ips: ['10.0.1.9'], ingress: ['x/b'], egress: [] }]);
    expect(m.idle).toEqual(['x/a']);
    // without deletion marks the first by namespace/name wins
    const tie = compile(policies, [fresh, pod('x', 'a', { ips: ['10.0.1.9'] })]);
    expect(tie.localPods.map((p) => p.name)).toEqual(['a']);
  });

  it('host-network, IP-less and finished pods are neither isolated nor peers', () => {
    const list = [
      pod('x', 'a'),
      pod('x', 'b', { hostNetwork: true, ips: ['192.168.50.1'] }),
      pod('x', 'c', { ips: [] }),
      pod('x', 'd', { phase: 'Succeeded', labels: { pod: 'b' } }),
      pod('x', 'e', { phase: 'Pending', labels: { pod: 'b' }, ips: ['10.0.1.5'] }),
    ];
    const m = compile([np('x', 'from-b', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }] }] })], list);
    expect(m.localPods.map((p) => p.name)).toEqual(['a', 'e']);
    expect(m.policies[0]?.ingress?.[0]?.peers).toEqual({ v4: [{ from: '10.0.1.5', to: '10.0.1.5' }], v6: [] });
  });

  it('dual-stack pods: both addresses isolated, v6 peers and ipBlocks in their own family', () => {
    const list = [pod('x', 'a', { ips: ['10.0.1.1', 'FD00::1'] }), pod('x', 'b', { ips: ['10.0.1.2', 'fd00::2'] })];
    const m = compile([np('x', 'p', { podSelector: { matchLabels: { pod: 'a' } }, ingress: [{ from: [{ podSelector: { matchLabels: { pod: 'b' } } }, { ipBlock: { cidr: 'fd00:1::/64', except: ['fd00:1::/65'] } }] }] })], list);
    expect(m.localPods[0]?.ips).toEqual(['10.0.1.1', 'fd00::1']);
    expect(m.policies[0]?.ingress?.[0]?.peers).toEqual({
      v4: [{ from: '10.0.1.2', to: '10.0.1.2' }],
      v6: [{ from: 'fd00::2', to: 'fd00::2' }, { from: 'fd00:1:0:0:8000::', to: 'fd00:1::ffff:ffff:ffff:ffff' }],
    });
    expect(connectionAllowed(m, { src: 'fd00::2', dst: 'fd00::1', protocol: 'TCP', port: 80 })).toBe(true);
    expect(connectionAllowed(m, { src: 'fd00:1::1', dst: 'fd00::1', protocol: 'TCP', port: 80 })).toBe(false);
  });

  it('pods in a namespace the compiler has not seen still match namespaceSelector {} and the name label', () => {
    const list = [pod('x', 'a'), pod('w', 'b', { ips: ['10.0.7.2'] })];
    const m = compile([np('x', 'p', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'w' } } }] }] })], list);
    expect(m.policies[0]?.ingress?.[0]?.peers).toEqual({ v4: [{ from: '10.0.1.1', to: '10.0.1.1' }, { from: '10.0.7.2', to: '10.0.7.2' }], v6: [] });
  });

  it('is deterministic: input order does not change the model', () => {
    const ps = [np('x', 'b', { podSelector: {} }), np('x', 'a', { podSelector: {}, ingress: [{ from: [{ namespaceSelector: {} }] }] })];
    expect(compile(ps, pods())).toEqual(compile([...ps].reverse(), [...pods()].reverse()));
  });
});

describe('compilePolicies: policies twill cannot express are reported and left out whole', () => {
  const BAD: [string, NetworkPolicy['spec'], string, RegExp][] = [
    ['unknown operator', { podSelector: { matchExpressions: [{ key: 'pod', operator: 'Gt', values: ['1'] }] } }, 'spec.podSelector.matchExpressions[0].operator', /"Gt" is not one of/],
    ['In without values', { podSelector: {}, ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: 'pod', operator: 'In', values: [] }] } }] }] }, 'spec.ingress[0].from[0].podSelector.matchExpressions[0].values', /non-empty for In/],
    ['Exists with values', { podSelector: {}, egress: [{ to: [{ namespaceSelector: { matchExpressions: [{ key: 'ns', operator: 'Exists', values: ['x'] }] } }] }] }, 'spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values', /empty for Exists/],
    ['an empty peer', { podSelector: {}, ingress: [{ from: [{}] }] }, 'spec.ingress[0].from[0]', /must set podSelector, namespaceSelector or ipBlock/],
    ['ipBlock with a selector', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/8' }, podSelector: {} }] }] }, 'spec.ingress[0].from[0]', /cannot be combined/],
    ['a bad cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/33' } }] }] }, 'spec.ingress[0].from[0].ipBlock.cidr', /not a CIDR/],
    ['except outside the cidr', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['10.1.0.0/24'] } }] }] }, 'spec.ingress[0].from[0].ipBlock.except[0]', /not inside cidr/],
    ['except of the other family', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.0.0.0/16', except: ['fd00::/64'] } }] }] }, 'spec.ingress[0].from[0].ipBlock.except[0]', /not inside cidr/],
    ['unknown protocol', { podSelector: {}, ingress: [{ ports: [{ protocol: 'ICMP', port: 1 }] }] }, 'spec.ingress[0].ports[0].protocol', /not TCP, UDP or SCTP/],
    ['port 0', { podSelector: {}, ingress: [{ ports: [{ port: 0 }] }] }, 'spec.ingress[0].ports[0].port', /not a port number/],
    ['endPort below port', { podSelector: {}, egress: [{ ports: [{ port: 90, endPort: 80 }] }] }, 'spec.egress[0].ports[0].endPort', /must be an integer from port/],
    ['endPort with a named port', { podSelector: {}, ingress: [{ ports: [{ port: 'http', endPort: 90 }] }] }, 'spec.ingress[0].ports[0].endPort', /named port/],
    ['endPort without a port', { podSelector: {}, ingress: [{ ports: [{ endPort: 90 }] }] }, 'spec.ingress[0].ports[0].endPort', /needs a numeric port/],
    ['a numeric string port', { podSelector: {}, ingress: [{ ports: [{ port: '80' }] }] }, 'spec.ingress[0].ports[0].port', /not a valid port name/],
    ['unknown policyType', { podSelector: {}, policyTypes: ['Both'] }, 'spec.policyTypes[0]', /not Ingress or Egress/],
  ];
  for (const [what, spec, field, reason] of BAD) {
    it(what, () => {
      const good = np('x', 'good', { podSelector: { matchLabels: { pod: 'b' } } });
      const m = compile([np('x', 'bad', spec), good]);
      expect(m.rejected).toHaveLength(1);
      expect(m.rejected[0]).toMatchObject({ namespace: 'x', name: 'bad', field });
      expect(m.rejected[0]?.reason).toMatch(reason);
      // left out whole: it isolates nothing; the other policy still applies
      expect(m.policies.map((p) => p.key)).toEqual(['x/good']);
      expect(m.localPods.filter((p) => p.ingress.length > 0 || p.egress.length > 0).map((p) => `${p.namespace}/${p.name}`)).toEqual(['x/b']);
    });
  }
});

describe('fixture sanity', () => {
  it('addresses follow the 10.0.<ns>.<pod> plan', () => {
    expect([podIp('x/a'), podIp('y/b'), podIp('z/c')]).toEqual(['10.0.1.1', '10.0.2.2', '10.0.3.3']);
  });
});
