// DEL: idempotent and independent of everything that may already be gone. It needs neither the
// subnet file nor the pod's netns (containerd's ctr calls DEL with CNI_NETNS empty): the host
// veth name derives from (container ID, ifname) and deleting it removes the pod end too; the
// address is released by (container ID, ifname). The veth goes first so an address is never
// handed out again while the old pod could still use it.
import { deleteVeth } from '../link/veth.js';
import { hostVethName } from '../link/names.js';
import { locked, storeOf } from './common.js';
import { mark } from '../trace.js';
import type { CniEnv } from '../skel/env.js';
import type { PluginConf } from '../config.js';
import type { PluginDeps } from '../deps.js';

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
  await locked(store, deps, () => store.releaseById(env.containerId, env.ifname));
}
