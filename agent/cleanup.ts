// `twilld --cleanup`: removes everything twill installed on this node (uninstall). The VXLAN
// devices go first (the kernel drops their neighbours, FDB entries, and the routes and nexthops
// through them), then any leftover routes/nexthops tagged with twill's protocol, the traffic
// rules, the NetworkPolicy table and the subnet file.
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { openHandle } from '../lib/netlink/handle.js';
import { RTPROT_TWILL, type NlChange } from '../lib/netlink/types.js';
import type { AgentOptions } from './options.js';
import { removeAllTrafficRules } from './traffic/index.js';
import { createNftPolicyEnforcer } from '../lib/policy/nft.js';
import { POLICY_SOCKET } from '../lib/policy/report.js';

export async function cleanup(o: AgentOptions, log: Logger): Promise<number> {
  const h = openHandle({ logger: log });
  let failures = 0;
  try {
    const devs = (await h.listLinks()).filter((l) => l.type === 'vxlan' && /^twill\.\d+$/.test(l.name));
    const changes: NlChange[] = devs.map((l) => ({ verb: 'delete', object: { kind: 'link', name: l.name, index: l.index } }));
    for (const r of await h.listRoutes({ protocol: RTPROT_TWILL })) if (r.protocol === RTPROT_TWILL) changes.push({ verb: 'delete', object: { kind: 'route', ...r } });
    for (const n of await h.listNexthops()) if (n.protocol === RTPROT_TWILL) changes.push({ verb: 'delete', object: { kind: 'nexthop', ...n } });
    const results = await h.apply(changes);
    results.forEach((r, i) => { if (!r.ok) { failures++; log.error({ change: changes[i], err: r.message }, 'cleanup: kernel refused'); } });
    log.info({ devices: devs.map((d) => d.name), entries: changes.length }, 'cleanup: kernel state removed');
  } finally {
    h.close();
  }
  try {
    const removed = await removeAllTrafficRules({ logger: log });
    log.info({ backends: removed }, 'cleanup: traffic rules removed');
  } catch (err) {
    failures++;
    log.error({ err: errorMessage(err) }, 'cleanup: traffic rules');
  }
  try {
    await createNftPolicyEnforcer().remove();
    log.info('cleanup: network policy table removed');
  } catch (err) {
    // No nft on this host: there cannot be a policy table either.
    if ((err as { cause?: { code?: unknown } }).cause?.code !== 'ENOENT') { failures++; log.error({ err: errorMessage(err) }, 'cleanup: network policy table'); }
  }
  await rm(o.subnetFile, { force: true });
  await rm(join(dirname(o.subnetFile), POLICY_SOCKET), { force: true });
  return failures ? 1 : 0;
}
