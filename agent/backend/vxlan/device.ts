// The VXLAN device twill.<VNI>. ensureDevice keeps a compatible device exactly as it is — an
// agent restart must never flush the datapath — and recreates an incompatible one (wrong VNI,
// port, local address, underlay link, learning or GBP), since those cannot be changed in place.
//
// The VTEP MAC is stable across restarts without any state file: it is derived from the public
// IP and the VNI (locally administered, unicast), unless a previous MAC is known (kube mode reads
// it back from our own annotation). A device recreated after deletion gets the same MAC, so
// peers' ARP/FDB entries stay right.
import { createHash } from 'node:crypto';
import type { Link, LinkSpec, NetlinkHandle } from '../../../lib/netlink/types.js';
import { TwillError } from '../../../lib/errors.js';
import type { Logger } from '../../../lib/log.js';
import type { DeviceInfo } from './desired.js';

export interface DeviceSpec {
  name: string;
  vni: number;
  port: number;
  local: string;
  link: number;          // underlay ifindex
  mtu: number;
  mac: string;
  gbp: boolean;
}

export const VXLAN_OVERHEAD_V4 = 50;
export const VXLAN_OVERHEAD_V6 = 70;

export const deviceName = (vni: number): string => `twill.${vni}`;

export function deriveVtepMac(publicIP: string, vni: number): string {
  const h = createHash('sha256').update(`twill-vtep|${publicIP}|${vni}`).digest();
  h[0] = (h[0]! & 0xfe) | 0x02;
  return [...h.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Why an existing device cannot be reused (undefined when compatible). */
export function incompatibility(l: Link, s: DeviceSpec): string | undefined {
  if (l.type !== 'vxlan' || !l.vxlan) return `is a ${l.kind ?? l.type} device, not vxlan`;
  const v = l.vxlan;
  if (v.vni !== s.vni) return `has VNI ${v.vni}, want ${s.vni}`;
  if (v.port !== s.port) return `has port ${v.port}, want ${s.port}`;
  if ((v.local ?? '') !== s.local) return `has local ${v.local ?? 'unset'}, want ${s.local}`;
  if (v.learning) return 'has learning on';
  if (Boolean(v.gbp) !== s.gbp) return `has gbp ${Boolean(v.gbp)}, want ${s.gbp}`;
  if (v.link !== undefined && v.link !== 0 && v.link !== s.link) return `is bound to ifindex ${v.link}, want ${s.link}`;
  return undefined;
}

export async function findLink(h: NetlinkHandle, name: string): Promise<Link | undefined> {
  return (await h.listLinks()).find((l) => l.name === name);
}

/** Creates or verifies the device. Returns it, whether it was (re)created, and whether an existing one had to be fixed in place (set up, MTU or MAC). */
export async function ensureDevice(h: NetlinkHandle, s: DeviceSpec, log: Logger): Promise<{ link: Link; created: boolean; fixed: boolean }> {
  let l = await findLink(h, s.name);
  let created = false;
  if (l) {
    const why = incompatibility(l, s);
    if (why) {
      log.warn({ device: s.name, why }, 'existing device is incompatible; recreating it');
      await must(h, [{ verb: 'delete', object: { kind: 'link', name: s.name, index: l.index } }], 'delete incompatible device');
      l = undefined;
    }
  }
  if (!l) {
    await must(h, [{ verb: 'create', object: {
      kind: 'link', name: s.name, type: 'vxlan', mtu: s.mtu, mac: s.mac, up: false,
      // No outer UDP checksum (allowed for IPv4; the inner TCP/UDP checksum still covers the
      // payload): measured here, it costs ~25% of pod-to-pod throughput on veth underlays.
      // Not part of incompatibility(): an existing device is never recreated over it.
      vxlan: { vni: s.vni, port: s.port, local: s.local, learning: false, gbp: s.gbp, link: s.link, udpCsum: false },
    } }], 'create device');
    created = true;
  }
  const cur = await findLink(h, s.name);
  if (!cur) throw new TwillError('BACKEND', `device ${s.name} vanished right after it was created`);
  const needsFix = cur.mtu !== s.mtu || cur.mac !== s.mac || !cur.up;
  if (needsFix) {
    // MAC and MTU first, then up: the MAC must be right before peers' traffic can arrive.
    await must(h, [{ verb: 'set', object: { kind: 'link', name: s.name, index: cur.index, mtu: s.mtu, mac: s.mac } }], 'configure device');
    await must(h, [{ verb: 'set', object: { kind: 'link', name: s.name, index: cur.index, up: true } }], 'bring device up');
  }
  const final = await findLink(h, s.name);
  if (!final) throw new TwillError('BACKEND', `device ${s.name} vanished while being configured`);
  return { link: final, created, fixed: !created && needsFix };
}

async function must(h: NetlinkHandle, changes: Parameters<NetlinkHandle['apply']>[0], what: string): Promise<void> {
  const [r] = await h.apply(changes);
  if (r && !r.ok) throw new TwillError('NETLINK', `${what}: ${r.message} (${r.code})`, { errno: r.errno });
}

/** What the agent's device keeper reports: the device as programmed, and repairs of it. */
export interface DeviceHooks {
  changed(dev: DeviceInfo, created: boolean): void;
  repaired(): void;
}

/**
 * The device as the agent keeps it: ensured at start and whenever the reconciler finds it
 * broken; a change someone else made once the device is ours (re-created, or fixed in place:
 * set up again, MTU or MAC restored) is a repair, the first start counts nothing.
 */
export class VxlanDevice {
  readonly spec: DeviceSpec;
  private readonly h: NetlinkHandle;
  private readonly log: Logger;
  private readonly direct: DeviceInfo['direct'];
  private readonly hooks: DeviceHooks;
  info: DeviceInfo | undefined;

  constructor(h: NetlinkHandle, spec: DeviceSpec, log: Logger, direct: DeviceInfo['direct'], hooks: DeviceHooks) {
    this.h = h;
    this.spec = spec;
    this.log = log;
    this.direct = direct;
    this.hooks = hooks;
  }

  async ensure(): Promise<void> {
    const prev = this.info?.index;
    const { link, created, fixed } = await ensureDevice(this.h, this.spec, this.log);
    const nexthops = await this.h.supportsNexthops();
    if ((created || fixed) && prev !== undefined) this.hooks.repaired();
    if (!this.info || this.info.index !== link.index || this.info.mtu !== link.mtu) {
      // DirectRouting: peers on our underlay segment are routed directly, without VXLAN.
      this.info = { index: link.index, name: link.name, mtu: link.mtu, vni: this.spec.vni, nexthops, ...(this.direct ? { direct: this.direct } : {}) };
      this.hooks.changed(this.info, created);
    }
  }

  /** Whether a link notification says our device is gone or no longer as specified. */
  broken(type: 'new' | 'del', l: LinkSpec): boolean {
    if (l.name !== this.spec.name && l.index !== this.info?.index) return false;
    return type === 'del' || l.up === false || (l.mtu !== undefined && l.mtu !== this.spec.mtu) || (l.mac !== undefined && l.mac !== this.spec.mac);
  }
}
