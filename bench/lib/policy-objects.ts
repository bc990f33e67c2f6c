// The API objects of the NetworkPolicy benchmark (bench/policy.ts): namespaces, pods and policies
// as a cluster with 1,000 pods and 500 policies holds them, generated deterministically.
//
//   pb-real                the namespace of the real pods (netns behind them): the client `c1`
//                          (role=client), the intruder `c2` (role=other) and the server `s1`
//                          (app=bench-server), all on the benchmark's node
//   pb-ns-0 … pb-ns-18     synthetic namespaces (team, env labels); their pods have no netns
//   local synthetic pods   on the benchmark's node, addresses in its podCIDR (nothing answers)
//   remote pods            on fake Nodes, 50 per Node, addresses in each Node's podCIDR
//
// The policy mix (mixPolicy): pod selectors (matchLabels, matchExpressions, {}), namespace
// selectors, both together, ipBlocks with excepts, numbered, ranged and named ports, TCP/UDP,
// ingress-only and ingress+egress, default denies. Many select local synthetic pods, so their
// chains are compiled and installed on the node; none selects the real pods, whose verdicts only
// the flip policy (flipPolicy) and the server policies (serverPolicy) decide.
import { peer, type Peer } from './kube-rig.js';

export const REAL_NS = 'pb-real';
export const SYN_NAMESPACES = 19;
export const nsName = (i: number): string => `pb-ns-${i}`;
const TEAMS = ['alpha', 'beta', 'gamma', 'delta', 'omega'];
const ENVS = ['prod', 'staging', 'dev'];
const TIERS = ['web', 'api', 'db', 'cache'];
export const APPS = 25;

export interface PodSpec { namespace: string; name: string; node: string; ip: string; labels: Record<string, string> }

export function namespaceObject(name: string, labels: Record<string, string>): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
}

export function namespaces(): object[] {
  const out = [namespaceObject(REAL_NS, { team: 'bench', env: 'prod' })];
  for (let i = 0; i < SYN_NAMESPACES; i++) out.push(namespaceObject(nsName(i), { team: TEAMS[i % TEAMS.length]!, env: ENVS[i % ENVS.length]! }));
  return out;
}

/** A Pod as the scheduler leaves it (nodeName set); its status is patched separately (podStatus). */
export function podObject(p: PodSpec): object {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: p.name, namespace: p.namespace, labels: p.labels },
    spec: {
      nodeName: p.node, automountServiceAccountToken: false,
      containers: [{ name: 'app', image: 'registry.invalid/bench/app:1', ports: [{ name: 'http', containerPort: 80 }, { name: 'metrics', containerPort: 9090 }, { name: 'dns', containerPort: 53, protocol: 'UDP' }] }],
    },
  };
}

/** What the kubelet reports once the sandbox has its address: Running, podIP(s), hostIP. */
export function podStatus(ip: string, hostIP: string): object {
  return { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }], hostIP, hostIPs: [{ ip: hostIP }] } };
}

export interface Population { pods: PodSpec[]; fakeNodes: Peer[]; localSynthetic: number }

/** The last address of a /24 (…0/24 → base + n). */
const nth = (subnet: string, n: number) => subnet.replace(/\.0\/24$/, `.${n}`);

/**
 * 1,000 pods in all: the real ones given, `localSynthetic` more on `node` in its /24 from .10 up,
 * the rest on fake Nodes (peer(i) from kube-rig: podCIDR 10.0.(i+1).0/24), 50 per Node.
 */
export function population(o: { node: string; podCIDR: string; real: PodSpec[]; total: number; localSynthetic: number; perNode?: number }): Population {
  const per = o.perNode ?? 50;
  const pods = [...o.real];
  const labels = (k: number): Record<string, string> => ({
    app: `svc-${k % APPS}`, tier: TIERS[k % TIERS.length]!, version: `v${k % 3}`, ...(k % 7 === 0 ? { canary: 'true' } : {}),
  });
  for (let i = 0; i < o.localSynthetic; i++) {
    pods.push({ namespace: nsName(i % SYN_NAMESPACES), name: `local-${i}`, node: o.node, ip: nth(o.podCIDR, 10 + i), labels: labels(i) });
  }
  const remote = o.total - pods.length;
  const fakeNodes = Array.from({ length: Math.ceil(remote / per) }, (_, i) => peer(i));
  for (let j = 0; j < remote; j++) {
    const n = fakeNodes[Math.floor(j / per)]!;
    pods.push({ namespace: nsName(j % SYN_NAMESPACES), name: `remote-${j}`, node: n.name, ip: nth(n.subnet, 2 + (j % per)), labels: labels(j + 3) });
  }
  return { pods, fakeNodes, localSynthetic: o.localSynthetic };
}

type Peerish = Record<string, unknown>;

/** Policy i of the realistic mix, in a synthetic namespace. */
export function mixPolicy(i: number): object {
  const ns = nsName(i % SYN_NAMESPACES);
  const app = `svc-${(i * 7) % APPS}`;
  const podSelector = i % 6 === 0 ? {}
    : i % 6 === 1 ? { matchExpressions: [{ key: 'tier', operator: 'In', values: [TIERS[i % 4]!, TIERS[(i + 1) % 4]!] }] }
      : i % 6 === 2 ? { matchLabels: { app }, matchExpressions: [{ key: 'canary', operator: 'DoesNotExist' }] }
        : { matchLabels: { app } };
  const peers: Peerish[][] = [
    [{ podSelector: { matchLabels: { app: `svc-${(i + 1) % APPS}` } } }],
    [{ namespaceSelector: { matchLabels: { team: TEAMS[i % TEAMS.length]! } } }],
    [{ namespaceSelector: { matchLabels: { env: ENVS[i % 3]! } }, podSelector: { matchLabels: { tier: TIERS[i % 4]! } } }],
    [{ ipBlock: { cidr: `10.0.${1 + (i % 19)}.0/24`, except: [`10.0.${1 + (i % 19)}.${(i % 8) * 16}/28`] } }, { podSelector: { matchExpressions: [{ key: 'version', operator: 'NotIn', values: ['v0'] }] } }],
    [{ ipBlock: { cidr: `192.168.${i % 256}.0/24` } }, { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: [nsName((i + 3) % SYN_NAMESPACES)] }] } }],
  ];
  const ports: object[][] = [
    [{ protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 443 }],
    [{ protocol: 'TCP', port: 8000, endPort: 8100 }],
    [{ protocol: 'TCP', port: 'http' }, { protocol: 'UDP', port: 'dns' }],
    [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }],
    [],
  ];
  const rules = i % 23 === 0 ? [] // a default deny
    : Array.from({ length: 1 + (i % 3) }, (_, r) => {
      const from = peers[(i + r) % peers.length]!;
      const p = ports[(i + 2 * r) % ports.length]!;
      return { from, ...(p.length ? { ports: p } : {}) };
    });
  const spec: Record<string, unknown> = { podSelector, ingress: rules };
  if (i % 5 === 0) {
    spec.policyTypes = ['Ingress', 'Egress'];
    spec.egress = [
      { to: [{ namespaceSelector: {} }], ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
      { to: [{ ipBlock: { cidr: '10.0.0.0/8', except: ['10.0.200.0/24'] } }], ports: [{ protocol: 'TCP', port: 443 }] },
      ...(i % 10 === 0 ? [{ to: [{ podSelector: { matchLabels: { tier: 'db' } } }] }] : []),
    ];
  }
  return { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `mix-${i}`, namespace: ns }, spec };
}

/**
 * The policy the change benchmark flips: it isolates the server pod for ingress and allows TCP 80
 * from pods labelled role=`allowFrom` of pb-real (role=client: c1 passes; anything else: c1 is
 * denied).
 */
export function flipPolicy(allowFrom: string): object {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'flip', namespace: REAL_NS },
    spec: { podSelector: { matchLabels: { app: 'bench-server' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ podSelector: { matchLabels: { role: allowFrom } } }], ports: [{ protocol: 'TCP', port: 80 }] }] },
  };
}

/**
 * Server policy i of 100: each selects the server pod and allows the client (role=client) and the
 * outside host's block on the benchmark's ports (80, iperf3's 5201) plus a port of its own, with
 * a varied second peer; the intruder (role=other) stays denied.
 */
export function serverPolicy(i: number, outsideCidr: string): object {
  const second: Peerish[] = [
    { namespaceSelector: { matchLabels: { team: TEAMS[i % TEAMS.length]! } }, podSelector: { matchLabels: { app: `svc-${i % APPS}` } } },
    { ipBlock: { cidr: `10.0.${1 + (i % 19)}.0/24` } },
    { podSelector: { matchExpressions: [{ key: 'role', operator: 'In', values: ['client', 'probe'] }] } },
  ];
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: `srv-${i}`, namespace: REAL_NS, labels: { bench: 'srv' } },
    spec: {
      podSelector: i % 2 === 0 ? { matchLabels: { app: 'bench-server' } } : { matchExpressions: [{ key: 'app', operator: 'In', values: ['bench-server', `svc-${i % APPS}`] }] },
      policyTypes: ['Ingress'],
      ingress: [
        { from: [{ podSelector: { matchLabels: { role: 'client' } } }, { ipBlock: { cidr: outsideCidr } }], ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 5201 }, { protocol: 'TCP', port: 10000 + i }] },
        { from: [second[i % second.length]!], ports: [{ protocol: 'TCP', port: 20000 + i, endPort: 20000 + i + (i % 10) }] },
      ],
    },
  };
}
