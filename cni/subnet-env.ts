// Reads the node's subnet from the agent's subnet file (flannel's variable names, so tooling
// written for flannel keeps working). Strict on purpose: a half-written or hand-edited file
// must fail the pod with a message naming the variable, never hand out a wrong address.
import { pluginFs } from './runtime/fs.js';
import { CniError, CNI_ERR } from './skel/errors.js';
import type { Family } from '../lib/ip/addr.js';
import { cidrNetwork, tryParseCidr, type IpCidr } from '../lib/ip/cidr.js';
import { contains, lastAddr } from '../lib/ip/prefix.js';

export interface FamilySubnet {
  family: Family;
  network: IpCidr;    // the cluster network (FLANNEL_NETWORK)
  subnet: IpCidr;     // the node subnet; `value` is the gateway (first usable address)
}

export interface NodeSubnets {
  mtu: number;
  ipMasq: boolean;
  /** IPv4 first when both exist. */
  families: FamilySubnet[];
}

const KEYS = new Set(['FLANNEL_NETWORK', 'FLANNEL_SUBNET', 'FLANNEL_MTU', 'FLANNEL_IPMASQ',
  'FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET']);

export function readSubnetFile(path: string): NodeSubnets {
  let text: string;
  try {
    text = pluginFs().readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new CniError(CNI_ERR.tryAgainLater, `subnet file ${path} does not exist: the twill agent has not written this node's subnet yet`);
    }
    throw new CniError(CNI_ERR.io, `subnet file ${path} could not be read: ${code ?? String(err)}`, '', err);
  }
  return parseSubnetEnv(text, path);
}

export function parseSubnetEnv(text: string, where = 'subnet file'): NodeSubnets {
  const vars = parseLines(text, where);
  const fail = (key: string, rule: string): never => {
    throw new CniError(CNI_ERR.decode, `${where}: ${key}=${JSON.stringify(vars.get(key) ?? '')} is invalid: ${rule}`);
  };
  const families: FamilySubnet[] = [];
  const v4 = familyFrom(vars, 'FLANNEL_NETWORK', 'FLANNEL_SUBNET', 4, fail);
  const v6 = familyFrom(vars, 'FLANNEL_IPV6_NETWORK', 'FLANNEL_IPV6_SUBNET', 6, fail);
  if (v4) families.push(v4);
  if (v6) families.push(v6);
  if (families.length === 0) fail('FLANNEL_SUBNET', 'missing: the file names no IPv4 or IPv6 node subnet');
  const mtuStr = vars.get('FLANNEL_MTU');
  if (mtuStr === undefined || !/^\d{2,5}$/.test(mtuStr)) fail('FLANNEL_MTU', 'must be an integer');
  const mtu = Number(mtuStr);
  const minMtu = v6 ? 1280 : 68;
  if (mtu < minMtu || mtu > 65535) fail('FLANNEL_MTU', `must be between ${minMtu} and 65535`);
  const masq = vars.get('FLANNEL_IPMASQ');
  if (masq !== 'true' && masq !== 'false') fail('FLANNEL_IPMASQ', 'must be "true" or "false"');
  return { mtu, ipMasq: masq === 'true', families };
}

function parseLines(text: string, where: string): Map<string, string> {
  const vars = new Map<string, string>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!m) throw new CniError(CNI_ERR.decode, `${where}: line ${i + 1} ${JSON.stringify(line.slice(0, 80))} is invalid: expected KEY=value`);
    const [, key, value] = m as unknown as [string, string, string];
    if (vars.has(key)) throw new CniError(CNI_ERR.decode, `${where}: line ${i + 1}: ${key} is invalid: set twice`);
    if (KEYS.has(key)) vars.set(key, value);
  }
  return vars;
}

function familyFrom(
  vars: Map<string, string>, netKey: string, subKey: string, family: Family,
  fail: (key: string, rule: string) => never,
): FamilySubnet | undefined {
  const netStr = vars.get(netKey);
  const subStr = vars.get(subKey);
  if (netStr === undefined && subStr === undefined) return undefined;
  if (netStr === undefined) return fail(netKey, `missing while ${subKey} is set`);
  if (subStr === undefined) return fail(subKey, `missing while ${netKey} is set`);
  const network = tryParseCidr(netStr);
  if (!network || network.family !== family) fail(netKey, `must be an IPv${family} prefix such as ${family === 4 ? '10.244.0.0/16' : 'fd00:10:244::/56'}`);
  const subnet = tryParseCidr(subStr);
  if (!subnet || subnet.family !== family) fail(subKey, `must be an IPv${family} address/prefix such as ${family === 4 ? '10.244.1.1/24' : 'fd00:10:244:1::1/64'}`);
  const net = network!, sub = subnet!;
  const subNet = cidrNetwork(sub);
  if (!contains(cidrNetwork(net), subNet)) fail(subKey, `must lie inside ${netKey}=${netStr}`);
  const maxLen = family === 4 ? 30 : 126;
  if (sub.len > maxLen) fail(subKey, `prefix must be at most /${maxLen} to hold a gateway and pods`);
  if (sub.value === subNet.addr) fail(subKey, 'must name the gateway (first usable address), not the network address');
  if (family === 4 && sub.value === lastAddr(subNet)) fail(subKey, 'must not be the broadcast address');
  return { family, network: net, subnet: sub };
}
