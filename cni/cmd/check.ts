// CHECK: compare what prevResult promised with what the kernel and the store hold now — the
// pod interface (present, up, its MAC), every address, every route via the gateway, the host
// veth on the bridge (and hairpin), and the IPAM record of each address. The first drift found
// fails with code 101 naming the object; routes added by later plugins are ignored (spec).
import { CniError, CNI_ERR } from '../skel/errors.js';
import { formatIp, tryParseIp } from '../../lib/ip/addr.js';
import { cidrNetwork, formatCidr, tryParseCidr } from '../../lib/ip/cidr.js';
import { formatPrefix } from '../../lib/ip/prefix.js';
import { hostVethName } from '../link/names.js';
import { parsePrevResult, type Result } from '../result.js';
import { locked, storeOf } from './common.js';
import { openPod } from './netns.js';
import { findLink } from '../link/bridge.js';
import type { CniEnv } from '../skel/env.js';
import type { PluginConf } from '../config.js';
import type { PluginDeps } from '../deps.js';
import type { Link, NetlinkHandle } from '../../lib/netlink/types.js';

export async function cmdCheck(env: CniEnv, conf: PluginConf, deps: PluginDeps): Promise<void> {
  if (!conf.prevResult) throw new CniError(CNI_ERR.invalidConfig, 'prevResult: missing: CHECK needs the result of the previous ADD');
  const prev = parsePrevResult(conf.prevResult);
  const pod = await openPod(deps, env.netns);
  try {
    const podLink = await checkPod(pod, env, prev);
    await checkRoutes(pod, podLink, prev);
  } finally {
    pod.close();
  }
  const host = await deps.hostHandle();
  try {
    await checkHost(host, env, conf);
  } finally {
    host.close();
  }
  await checkRecords(env, conf, deps, prev);
}

function drift(msg: string): CniError {
  return new CniError(CNI_ERR.drift, msg);
}

async function checkPod(pod: NetlinkHandle, env: CniEnv, prev: Result): Promise<Link> {
  const link = await findLink(pod, env.ifname);
  if (!link) throw drift(`interface ${env.ifname} is missing in ${env.netns}`);
  if (!link.up) throw drift(`interface ${env.ifname} in ${env.netns} is down`);
  const idx = prev.interfaces.findIndex((i) => i.name === env.ifname && i.sandbox !== undefined);
  const want = prev.interfaces[idx];
  if (want?.mac && link.mac && want.mac.toLowerCase() !== link.mac.toLowerCase()) {
    throw drift(`interface ${env.ifname} in ${env.netns} has MAC ${link.mac}, prevResult says ${want.mac}`);
  }
  const have = new Set((await pod.listAddrs()).filter((a) => a.ifindex === link.index).map((a) => `${a.address}/${a.prefixLen}`));
  for (const ip of prev.ips) {
    if (ip.interface !== undefined && ip.interface !== idx) continue;
    const canon = formatCidr(tryParseCidr(ip.address)!);
    if (!have.has(canon)) throw drift(`address ${ip.address} is missing on ${env.ifname} in ${env.netns}`);
  }
  return link;
}

async function checkRoutes(pod: NetlinkHandle, link: Link, prev: Result): Promise<void> {
  const routes = await pod.listRoutes({ table: 254 });
  for (const want of prev.routes) {
    const dstKey = formatPrefix(cidrNetwork(tryParseCidr(want.dst)!));
    const gw = want.gw ? tryParseIp(want.gw) : undefined;
    const found = routes.some((r) => {
      const rd = tryParseCidr(r.dst);
      if (!rd || formatPrefix(cidrNetwork(rd)) !== dstKey) return false;
      if (gw && (!r.gateway || r.gateway !== formatIp(gw))) return false;
      return r.ifindex === undefined || r.ifindex === link.index;
    });
    if (!found) throw drift(`route ${want.dst}${want.gw ? ` via ${want.gw}` : ''} is missing in the pod netns`);
  }
}

async function checkHost(host: NetlinkHandle, env: CniEnv, conf: PluginConf): Promise<void> {
  const bridge = await findLink(host, conf.bridge);
  if (!bridge || bridge.type !== 'bridge') throw drift(`bridge ${conf.bridge} is missing`);
  if (!bridge.up) throw drift(`bridge ${conf.bridge} is down`);
  const name = hostVethName(env.containerId, env.ifname);
  const veth = await findLink(host, name);
  if (!veth) throw drift(`host veth ${name} is missing`);
  if (veth.master !== bridge.index) throw drift(`host veth ${name} is not attached to bridge ${conf.bridge}`);
  if (!veth.up) throw drift(`host veth ${name} is down`);
  if (conf.hairpinMode && veth.hairpin === false) throw drift(`host veth ${name} has hairpin mode off`);
}

async function checkRecords(env: CniEnv, conf: PluginConf, deps: PluginDeps, prev: Result): Promise<void> {
  const store = storeOf(conf);
  const mine = await locked(store, deps, () => store.getById(env.containerId, env.ifname));
  const have = new Set(mine.map((r) => r.file));
  for (const ip of prev.ips) {
    const name = formatIp(tryParseCidr(ip.address)!);
    if (!have.has(name)) throw drift(`IPAM record for ${name} (${env.containerId}, ${env.ifname}) is missing in ${store.dir}`);
  }
}
