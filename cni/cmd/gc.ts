// GC (CNI 1.1): release every IPAM record whose (container ID, ifname) is not a valid attachment,
// and delete twill veths on our bridge that belong to no valid attachment (left by a plugin
// killed mid-ADD, or a runtime that lost a DEL). A valid attachment is never touched; a legacy
// host-local record holding only a container ID is kept when that ID is valid at all.
import { hostVethName, VETH_NAME_RE } from '../link/names.js';
import { applyAll } from '../link/apply.js';
import { locked, storeOf } from './common.js';
import type { Attachment, PluginConf } from '../config.js';
import type { PluginDeps } from '../deps.js';
import type { Reservation } from '../ipam/store.js';

export interface GcReport {
  released: string[];
  vethsDeleted: string[];
}

export async function cmdGc(conf: PluginConf, valid: readonly Attachment[], deps: PluginDeps): Promise<GcReport> {
  const keep = new Set(valid.map((a) => `${a.containerId}\n${a.ifname}`));
  const validIds = new Set(valid.map((a) => a.containerId));
  const store = storeOf(conf);
  const released = await locked(store, deps, () => {
    store.sweepTemps();
    const stale = store.list().filter((r) => !isValid(r, keep, validIds));
    for (const r of stale) store.release(r.file);
    return stale.map((r) => r.file);
  });
  return { released, vethsDeleted: await gcVeths(conf, valid, deps) };
}

function isValid(r: Reservation, keep: ReadonlySet<string>, validIds: ReadonlySet<string>): boolean {
  if (r.containerId === '') return false;
  if (r.ifname === '') return validIds.has(r.containerId);
  return keep.has(`${r.containerId}\n${r.ifname}`);
}

async function gcVeths(conf: PluginConf, valid: readonly Attachment[], deps: PluginDeps): Promise<string[]> {
  const wanted = new Set(valid.map((a) => hostVethName(a.containerId, a.ifname)));
  const host = await deps.hostHandle();
  try {
    const links = await host.listLinks();
    const bridge = links.find((l) => l.name === conf.bridge);
    if (!bridge) return [];
    const orphans = links.filter((l) => l.master === bridge.index && VETH_NAME_RE.test(l.name) && !wanted.has(l.name));
    if (orphans.length) {
      await applyAll(host, orphans.map((l) => ({ verb: 'delete' as const, object: { kind: 'link' as const, name: l.name, index: l.index } })), 'GC');
    }
    return orphans.map((l) => l.name);
  } finally {
    host.close();
  }
}
