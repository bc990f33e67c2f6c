// ADD: address first (under the store lock, held only for the allocation), then the bridge, the
// veth pair with its pod end born inside the pod netns, the pod side, forwarding. Every step
// that changed something pushes its undo; any failure runs them all, so a failed ADD leaves
// neither a reserved address nor a veth behind (proved by the TWILL_CNI_FAIL_AT tests).
import { CniError, CNI_ERR } from '../skel/errors.js';
import { readSubnetFile, type FamilySubnet } from '../subnet-env.js';
import { allocate, type Allocation } from '../ipam/allocate.js';
import { formatIp, type Family } from '../../lib/ip/addr.js';
import { cidrNetwork, formatCidr } from '../../lib/ip/cidr.js';
import { formatPrefix } from '../../lib/ip/prefix.js';
import { ensureBridge, findLink } from '../link/bridge.js';
import { createVeth, deleteVeth } from '../link/veth.js';
import { configurePod, type PodAddr } from '../link/pod.js';
import { hostVethName, macFromIp } from '../link/names.js';
import { hook, locked, poolsOf, storeOf, Undo } from './common.js';
import { openPod } from './netns.js';
import { mark } from '../runtime/trace.js';
import { podOf, policySocketOf, reportNewPod } from '../policy-notify.js';
import type { CniEnv } from '../skel/env.js';
import type { PluginConf } from '../config.js';
import type { PluginDeps } from '../deps.js';
import type { Result } from '../result.js';
import type { NetlinkHandle } from '../../lib/netlink/types.js';

export async function cmdAdd(env: CniEnv, conf: PluginConf, deps: PluginDeps): Promise<Result> {
  const subnets = readSubnetFile(conf.subnetFile);
  const mtu = conf.mtu ?? subnets.mtu;
  const pod = await openPod(deps, env.netns);
  mark('podHandle');
  let host: NetlinkHandle | undefined;
  const undo = new Undo();
  try {
    if (await findLink(pod, env.ifname)) {
      throw new CniError(CNI_ERR.invalidEnv, `CNI_IFNAME: ${JSON.stringify(env.ifname)} is invalid: an interface of that name already exists in ${env.netns}`);
    }
    const store = storeOf(conf);
    const allocs = await locked(store, deps, () => allocate(store, poolsOf(subnets), env.containerId, env.ifname));
    undo.push(() => locked(store, deps, () => store.releaseById(env.containerId, env.ifname)));
    hook(deps, 'ipam');
    // NetworkPolicy: the agent learns the pod's addresses while the veth is set up (policy-notify.ts).
    const who = podOf(env.args);
    const reported = who ? reportNewPod(policySocketOf(conf.subnetFile), { ...who, ips: allocs.map((a) => formatIp(a.ip)) }) : undefined;

    host = await deps.hostHandle();
    const h = host;
    const gateways = subnets.families.map((f) => ({ family: f.family, address: f.subnet.value, prefixLen: f.subnet.len }));
    // IPv6: no DAD on the gateway address (else the first pods cannot reach it for ≈1-2 s).
    const noDad = subnets.families.some((f) => f.family === 6) ? () => disableDad(deps, `/proc/sys/net/ipv6/conf/${conf.bridge}/accept_dad`) : undefined;
    const bridge = await ensureBridge(h, conf.bridge, mtu, gateways, noDad);
    hook(deps, 'bridge');

    const vethName = hostVethName(env.containerId, env.ifname);
    const podMac = macFromIp(allocs[0]!.ip);
    const fd = deps.openNetnsFd(env.netns);
    let hostMac: string;
    try {
      undo.push(() => deleteVeth(h, vethName));
      hostMac = await createVeth(h, { hostName: vethName, podName: env.ifname, podNetnsFd: fd, podMac, mtu, bridgeIndex: bridge.index, hairpin: conf.hairpinMode });
    } finally {
      deps.closeFd(fd);
    }
    hook(deps, 'veth');

    if (allocs.some((a) => a.ip.family === 6)) deps.writeSysctl(`/proc/sys/net/ipv6/conf/${env.ifname}/accept_dad`, '0', env.netns);
    const addrs = allocs.map((a) => podAddr(a, familyOf(subnets.families, a.pool.family), conf.isDefaultGateway));
    await configurePod(pod, env.ifname, addrs);
    hook(deps, 'pod');

    enableForwarding(deps, allocs.map((a) => a.ip.family));
    hook(deps, 'sysctl');

    if (reported) await reported;
    const result = buildResult(conf, env, allocs, addrs, { bridge: bridge.mac, host: hostMac, pod: podMac, mtu });
    hook(deps, 'result');
    return result;
  } catch (err) {
    const failures = await undo.run();
    if (failures.length && err instanceof CniError) {
      throw new CniError(err.code, err.message, [err.details, `rollback incomplete: ${failures.join('; ')}`].filter(Boolean).join(' | '), err);
    }
    throw err;
  } finally {
    pod.close();
    host?.close();
  }
}

function familyOf(families: readonly FamilySubnet[], family: Family): FamilySubnet {
  return families.find((f) => f.family === family)!;
}

function podAddr(a: Allocation, f: FamilySubnet, isDefaultGateway: boolean): PodAddr {
  const dst = isDefaultGateway ? (a.ip.family === 4 ? '0.0.0.0/0' : '::/0') : formatPrefix(cidrNetwork(f.network));
  return { family: a.ip.family, address: a.ip.value, prefixLen: f.subnet.len, gateway: f.subnet.value, routes: [dst] };
}

function disableDad(deps: PluginDeps, path: string): void {
  if (deps.readSysctl(path).trim() !== '0') deps.writeSysctl(path, '0');
}

function enableForwarding(deps: PluginDeps, families: readonly Family[]): void {
  const paths = families.map((f) => (f === 4 ? '/proc/sys/net/ipv4/ip_forward' : '/proc/sys/net/ipv6/conf/all/forwarding'));
  for (const p of paths) if (deps.readSysctl(p).trim() !== '1') deps.writeSysctl(p, '1');
}

function buildResult(
  conf: PluginConf, env: CniEnv, allocs: readonly Allocation[], addrs: readonly PodAddr[],
  macs: { bridge: string | undefined; host: string; pod: string; mtu: number },
): Result {
  return {
    interfaces: [
      { name: conf.bridge, ...(macs.bridge ? { mac: macs.bridge } : {}) },
      { name: hostVethName(env.containerId, env.ifname), mac: macs.host },
      { name: env.ifname, mac: macs.pod, mtu: macs.mtu, sandbox: env.netns },
    ],
    ips: allocs.map((a, i) => ({
      address: formatCidr({ ...a.ip, len: addrs[i]!.prefixLen }),
      gateway: formatIp({ family: a.ip.family, value: addrs[i]!.gateway }),
      interface: 2,
    })),
    routes: addrs.flatMap((a) => a.routes.map((dst) => ({ dst, gw: formatIp({ family: a.family, value: a.gateway }) }))),
    dns: conf.dns ?? {},
  };
}
