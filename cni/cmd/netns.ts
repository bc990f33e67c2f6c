// Opening the pod's netns: a missing one is the runtime telling us the container is gone
// (code 3), anything else is an I/O error naming the path.
import { CniError, CNI_ERR } from '../skel/errors.js';
import type { PluginDeps } from '../deps.js';
import type { NetlinkHandle } from '../../lib/netlink/types.js';

export async function openPod(deps: PluginDeps, netns: string): Promise<NetlinkHandle> {
  try {
    return await deps.podHandle(netns);
  } catch (err) {
    throw netnsError(netns, err);
  }
}

export function netnsError(netns: string, err: unknown): CniError {
  const code = (err as { code?: unknown; errno?: unknown } | null)?.code;
  const errno = (err as { errno?: unknown } | null)?.errno;
  if (code === 'ENOENT' || errno === 2 || errno === -2) {
    return new CniError(CNI_ERR.unknownContainer, `CNI_NETNS: ${JSON.stringify(netns)}: the network namespace does not exist`);
  }
  if (err instanceof CniError) return err;
  return new CniError(CNI_ERR.io, `CNI_NETNS: ${JSON.stringify(netns)}: cannot open the network namespace: ${err instanceof Error ? err.message : String(err)}`, '', err);
}
