// One rule model, two renderers (nft.ts, iptables.ts), so both backends install the same policy.
// The masquerade rules follow flannel's (pkg/trafficmngr), in order:
//   1. packets kube-proxy marked for masquerade (0x4000) are left to kube-proxy: no double NAT;
//   2. pod -> pod anywhere in the cluster network: never NAT (the Kubernetes network model);
//   3. outside -> this node's pods: keep the client address (NodePort / external clients);
//   4. pod -> outside the network, except multicast: masquerade to the node's address;
//   5. host -> a pod on another node: masquerade, so the reply comes back through the overlay.
// Forward rules accept traffic from and to the pod network, so a FORWARD policy of DROP (Docker)
// does not cut pods off. They are installed whether or not masquerading is on.
import { invalid } from '../../lib/errors.js';
import { parseCidr, type Cidr, type Family } from './cidr.js';
import type { TrafficSpec } from './types.js';

export const KUBE_PROXY_MASQ_MARK = 0x4000;

export interface Match { cidr: string; negate: boolean }

export interface Rule {
  family: Family | 'any';
  mark?: number;            // match (mark & m) == m
  src?: Match;
  dst?: Match;
  action: 'return' | 'masquerade' | 'accept';
}

export interface FamilyNet { family: Family; network: Cidr; subnet?: Cidr }

export interface NormalSpec { nets: FamilyNet[]; masquerade: boolean }

const MULTICAST: Record<Family, string> = { 4: '224.0.0.0/4', 6: 'ff00::/8' };

function familyNet(family: Family, network: string | undefined, subnet: string | undefined): FamilyNet | undefined {
  const sfield = family === 4 ? 'subnet' : 'ipv6Subnet';
  if (network === undefined) {
    if (subnet !== undefined) throw invalid(sfield, subnet, `needs ${family === 4 ? 'network' : 'ipv6Network'} to be set`);
    return undefined;
  }
  const net = parseCidr(family === 4 ? 'network' : 'ipv6Network', network, family);
  return subnet === undefined ? { family, network: net } : { family, network: net, subnet: parseCidr(sfield, subnet, family) };
}

/** Validates and canonicalises a spec; at least one network is required. */
export function normalizeSpec(spec: TrafficSpec): NormalSpec {
  const nets = [familyNet(4, spec.network, spec.subnet), familyNet(6, spec.ipv6Network, spec.ipv6Subnet)]
    .filter((n): n is FamilyNet => n !== undefined);
  if (nets.length === 0) throw invalid('network', spec.network, 'at least one of network, ipv6Network is required');
  return { nets, masquerade: spec.masquerade };
}

const m = (cidr: string, negate = false): Match => ({ cidr, negate });

export function masqueradeRules(n: FamilyNet): Rule[] {
  const { family } = n;
  const net = n.network.text;
  const rules: Rule[] = [{ family, src: m(net), dst: m(net), action: 'return' }];
  if (n.subnet) rules.push({ family, src: m(net, true), dst: m(n.subnet.text), action: 'return' });
  rules.push({ family, src: m(net), dst: m(MULTICAST[family], true), action: 'masquerade' });
  rules.push({ family, src: m(net, true), dst: m(net), action: 'masquerade' });
  return rules;
}

export const kubeProxyMarkRule = (family: Family | 'any'): Rule => ({ family, mark: KUBE_PROXY_MASQ_MARK, action: 'return' });

export function forwardRules(n: FamilyNet): Rule[] {
  return [
    { family: n.family, src: m(n.network.text), action: 'accept' },
    { family: n.family, dst: m(n.network.text), action: 'accept' },
  ];
}
