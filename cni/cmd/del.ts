// DEL: idempotent and independent of everything that may already be gone. It needs neither the
// subnet file nor the pod's netns (containerd's ctr calls DEL with CNI_NETNS empty): the host
// veth name derives from (container ID, ifname) and deleting it removes the pod end too; the
// address is released by (container ID, ifname). The veth goes first so an address is never
// handed out again while the old pod could still use it. With a prevResult (the runtime's cached
// ADD result) only its addresses' records are read: the lock is held for microseconds instead of
// a scan of every record, which matters when 20 DELs queue on it. Without one, or when a record
// does not match, the full scan runs (an ADD reuses an attachment's record, so an attachment
// never holds addresses its result does not list).
import { deleteVeth } from '../link/veth.js';
import { hostVethName } from '../link/names.js';
import { locked, storeOf } from './common.js';
import { mark } from '../runtime/trace.js';
import type { CniEnv } from '../skel/env.js';
import type { PluginConf } from '../config.js';
import type { PluginDeps } from '../deps.js';
import { formatIp } from '../../lib/ip/addr.js';
import { tryParseCidr } from '../../lib/ip/cidr.js';

/** Canonical addresses listed in prevResult.ips (malformed entries are skipped: DEL must work). */
function prevAddresses(prev: Record<string, unknown> | undefined): string[] {
  const ips = prev?.['ips'];
  if (!Array.isArray(ips)) return [];
  const out: string[] = [];
  for (const ip of ips as unknown[]) {
    const a = (ip as { address?: unknown } | null)?.address;
    const c = typeof a === 'string' ? tryParseCidr(a) : undefined;
    if (c) out.push(formatIp(c));
  }
  return out;
}

export async function cmdDel(env: CniEnv, conf: PluginConf, deps: PluginDeps): Promise<void> {
  const host = await deps.hostHandle();
  mark('handle');
  try {
    await deleteVeth(host, hostVethName(env.containerId, env.ifname));
  } finally {
    host.close();
  }
  mark('veth');
  const store = storeOf(conf);
  const known = prevAddresses(conf.prevResult);
  await locked(store, deps, () => {
    if (!store.releaseKnown(known, env.containerId, env.ifname)) store.releaseById(env.containerId, env.ifname);
  });
}
