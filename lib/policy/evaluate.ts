// Reads a PolicyModel the way the kernel rules do, for one connection: would a new connection
// from `src` to `dst` on protocol/port be allowed? Used by `status`-style questions ("why is
// this blocked?") and by the tests, which state expectations as reachability tables.
import { tryParseIp } from '../ip/addr.js';
import type { AddrSet, CompiledRule, Direction, PolicyModel, Protocol } from './types.js';

export interface Probe { src: string; dst: string; protocol: Protocol | 'ICMP'; port?: number }

function inSet(set: AddrSet, ip: string): boolean {
  const a = tryParseIp(ip);
  if (!a) return false;
  const list = a.family === 4 ? set.v4 : set.v6;
  return list.some((r) => {
    const from = tryParseIp(r.from), to = tryParseIp(r.to);
    return from !== undefined && to !== undefined && a.value >= from.value && a.value <= to.value;
  });
}

function ruleAllows(rule: CompiledRule, dir: Direction, p: Probe): boolean {
  const peer = dir === 'ingress' ? p.src : p.dst;
  if (rule.peers !== 'any' && !inSet(rule.peers, peer)) return false;
  if (rule.ports === 'any') return true;
  if (p.protocol === 'ICMP' || p.port === undefined) return false;
  const { protocol, port } = p;
  if (rule.ports.ranges.some((r) => r.protocol === protocol && port >= r.from && port <= r.to)) return true;
  // the resolved triples name the destination: the selected pod (ingress) or the peer (egress)
  return rule.ports.resolved.some((r) => r.ip === p.dst && r.protocol === protocol && r.port === port);
}

/** The verdict of one direction on the local pod owning `ip` (src for egress, dst for ingress). */
export function directionAllows(model: PolicyModel, dir: Direction, p: Probe): boolean {
  const own = dir === 'ingress' ? p.dst : p.src;
  const pod = model.localPods.find((x) => x.ips.includes(own));
  if (!pod || pod[dir].length === 0) return true;
  const byKey = new Map(model.policies.map((x) => [x.key, x]));
  return pod[dir].some((k) => (byKey.get(k)?.[dir] ?? []).some((r) => ruleAllows(r, dir, p)));
}

/** Both directions: the source pod's egress (if local) and the destination pod's ingress (if local). */
export function connectionAllowed(model: PolicyModel, p: Probe): boolean {
  return directionAllows(model, 'egress', p) && directionAllows(model, 'ingress', p);
}
