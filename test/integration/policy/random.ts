// Seeded random policies and labels for the policy tests that walk many cases (diff-random,
// traffic-random). Seeded so a failure can be replayed with the seed in the test's name.
import type { LabelSelector, NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from '../../../lib/policy/index.js';
import { np } from '../../unit/policy/fixtures.js';
import { seeded } from '../../util/rng.js';

export interface Gen {
  rnd: () => number;
  pick<T>(list: readonly T[]): T;
  labels(): Record<string, string>;
  policy(ns: string, name: string): NetworkPolicy;
}

/** `outsideCidr`: an ipBlock some peers use besides the pod network (a routed peer's subnet). */
export function generator(seed: number, outsideCidr = '10.9.0.0/24'): Gen {
  const rnd = seeded(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)] as T;
  const labels = () => {
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
    if (r < 0.5) return { namespaceSelector: rnd() < 0.5 ? {} : { matchLabels: { ns: pick(['x', 'y', 'z']) } } };
    if (r < 0.7) return { namespaceSelector: { matchLabels: { ns: pick(['x', 'y']) } }, podSelector: selector() };
    if (r < 0.8) return { ipBlock: { cidr: outsideCidr } };
    return rnd() < 0.7 ? { ipBlock: { cidr: '10.0.0.0/16', except: rnd() < 0.5 ? ['10.0.2.0/24'] : [] } } : { ipBlock: { cidr: 'fd00::/64', except: ['fd00::/120'] } };
  };
  const port = (): NetworkPolicyPort => pick<NetworkPolicyPort>([
    { port: 80 }, { port: 80, endPort: 90 }, { protocol: 'UDP', port: 53 }, { port: 'http' }, { protocol: 'SCTP' },
    { port: 'serve-81-udp', protocol: 'UDP' }, { protocol: 'UDP' }, { port: 8080 },
  ]);
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
  return { rnd, pick, labels, policy };
}
