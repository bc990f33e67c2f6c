// One place that turns a failed netlink change into a CniError naming the object and the errno,
// so every kernel refusal reads the same way in kubelet's events.
import { CniError, CNI_ERR } from '../skel/errors.js';
import type { NetlinkHandle, NlChange, NlResult } from '../../lib/netlink/types.js';

export async function applyAll(h: NetlinkHandle, changes: readonly NlChange[], what: string): Promise<void> {
  const results = await h.apply(changes);
  results.forEach((r, i) => { if (!r.ok) throw kernelError(h, changes[i]!, r, what); });
}

/** Applies; returns the results without throwing (callers that tolerate some errnos). */
export function applyRaw(h: NetlinkHandle, changes: readonly NlChange[]): Promise<NlResult[]> {
  return h.apply(changes);
}

export function kernelError(h: NetlinkHandle, c: NlChange, r: NlResult & { ok: false }, what: string): CniError {
  const o = c.object;
  const name = o.kind === 'link' ? o.name : o.kind === 'addr' ? `${o.address}/${o.prefixLen}` : o.kind === 'route' ? o.dst : o.kind;
  return new CniError(CNI_ERR.kernel, `${what}: ${c.verb} ${o.kind} ${name} in ${h.netns} failed: ${r.code} (${r.message})`);
}
