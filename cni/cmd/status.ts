// STATUS (CNI 1.1): ready when the agent has written a valid subnet file and the node subnet
// still has a free address; otherwise code 50 with the reason, so the runtime reports the node
// network as not ready instead of failing pods one by one.
import { CniError, CNI_ERR } from '../skel/errors.js';
import { readSubnetFile } from '../subnet-env.js';
import { poolSize, rangeOf } from '../ipam/allocate.js';
import { tryParseIp } from '../../lib/ip/addr.js';
import { cidrNetwork } from '../../lib/ip/cidr.js';
import { formatPrefix } from '../../lib/ip/prefix.js';
import { poolsOf, storeOf } from './common.js';
import type { PluginConf } from '../config.js';

export function cmdStatus(conf: PluginConf): void {
  let subnets;
  try {
    subnets = readSubnetFile(conf.subnetFile);
  } catch (err) {
    throw new CniError(CNI_ERR.notAvailable, `twill is not ready: ${(err as Error).message}`);
  }
  const reserved = [...storeOf(conf).reservedNames()].map((n) => tryParseIp(n)!);
  for (const pool of poolsOf(subnets)) {
    const r = rangeOf(pool);
    const used = reserved.filter((ip) => ip.family === pool.family && ip.value >= r.start && ip.value <= r.end && ip.value !== r.gateway).length;
    if (BigInt(used) >= poolSize(pool)) {
      throw new CniError(CNI_ERR.notAvailable, `twill is not ready: node subnet ${formatPrefix(cidrNetwork(pool.subnet))} has no free address (${used} reserved)`);
    }
  }
}
