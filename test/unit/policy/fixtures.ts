// A small cluster for the policy tests, shaped like upstream's Netpol model: namespaces x, y, z,
// pods a, b, c in each (labels pod=<name>, namespace labels ns=<name>), pod address
// 10.0.<ns index>.<pod index>. Named ports: every pod serves "serve-80-tcp" (80/TCP) and
// "serve-81-udp" (81/UDP); x/c and y/a also have "http", on different numbers (8080 / 9090).
import type { Namespace, NetworkPolicy, NetworkPolicySpec, Pod, Protocol } from '../../../lib/policy/index.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;

export function podIp(ref: string): string {
  const [ns, name] = ref.split('/') as [string, string];
  return `10.0.${NAMESPACES.indexOf(ns as 'x') + 1}.${PODS.indexOf(name as 'a') + 1}`;
}

export function namespaces(): Namespace[] {
  return NAMESPACES.map((n) => ({ metadata: { name: n, labels: { ns: n } } }));
}

export function pod(ns: string, name: string, opts: { node?: string; labels?: Record<string, string>; ips?: string[]; hostNetwork?: boolean; phase?: string; http?: number } = {}): Pod {
  const ports = [
    { name: 'serve-80-tcp', containerPort: 80 },
    { name: 'serve-81-udp', containerPort: 81, protocol: 'UDP' },
    ...(opts.http === undefined ? [] : [{ name: 'http', containerPort: opts.http, protocol: 'TCP' }]),
  ];
  const ips = opts.ips ?? [podIp(`${ns}/${name}`)];
  return {
    metadata: { namespace: ns, name, labels: opts.labels ?? { pod: name } },
    spec: { nodeName: opts.node ?? 'n1', hostNetwork: opts.hostNetwork ?? false, containers: [{ ports }] },
    status: { phase: opts.phase ?? 'Running', podIP: ips[0] ?? null, podIPs: ips.map((ip) => ({ ip })) },
  };
}

export function pods(): Pod[] {
  const out: Pod[] = [];
  for (const ns of NAMESPACES) {
    for (const name of PODS) {
      const http = ns === 'x' && name === 'c' ? 8080 : ns === 'y' && name === 'a' ? 9090 : undefined;
      out.push(pod(ns, name, http === undefined ? {} : { http }));
    }
  }
  return out;
}

export function np(ns: string, name: string, spec: NetworkPolicySpec): NetworkPolicy {
  return { metadata: { namespace: ns, name }, spec };
}

/** One probe of a reachability table: `x/a -> y/b tcp 80 ok`. */
export interface Case { src: string; dst: string; protocol: Protocol | 'ICMP'; port?: number; ok: boolean }

export function parseProbe(line: string): Case {
  const m = /^(\S+) -> (\S+) (tcp|udp|sctp|icmp)(?: (\d+))? (ok|no)$/.exec(line.trim());
  if (!m) throw new Error(`bad probe line: ${line}`);
  const ip = (s: string) => (s.includes('/') ? podIp(s) : s);
  const c: Case = { src: ip(m[1] as string), dst: ip(m[2] as string), protocol: (m[3] as string).toUpperCase() as Case['protocol'], ok: m[5] === 'ok' };
  if (m[4] !== undefined) c.port = Number(m[4]);
  return c;
}
