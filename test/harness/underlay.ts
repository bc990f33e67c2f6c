// The underlay: one "switch" netns holding a Linux bridge (the L2 segment every node sits on),
// and hosts (nodes, the external host) each in its own netns with a veth uplink `eth0` whose
// peer is enslaved to the bridge. Both veth ends are created inside test namespaces, so the
// root netns never sees a test link or address and names cannot collide between runs.
import { ip, nsRun } from './exec.js';

export const UNDERLAY_PREFIX = '10.213.0';
export const UNDERLAY_LEN = 24;
export const SWITCH_IP = `${UNDERLAY_PREFIX}.1`;      // bridge address: etcd / API server listen here
export const EXTERNAL_IP = `${UNDERLAY_PREFIX}.254`;
export const nodeUnderlayIP = (i: number): string => `${UNDERLAY_PREFIX}.${10 + i}`;
export const MAX_NODES = 200;

export async function createNetns(name: string): Promise<void> {
  await ip(null, 'netns', 'add', name);
  await ip(name, 'link', 'set', 'lo', 'up');
}

export async function deleteNetns(name: string): Promise<void> {
  await ip(null, 'netns', 'del', name).catch(() => undefined);
}

export async function createSwitch(netns: string, mtu: number): Promise<void> {
  await createNetns(netns);
  await ip(netns, 'link', 'add', 'br0', 'mtu', String(mtu), 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
  await ip(netns, 'addr', 'add', `${SWITCH_IP}/${UNDERLAY_LEN}`, 'dev', 'br0');
  await ip(netns, 'link', 'set', 'br0', 'up');
}

/**
 * Creates `hostNetns` with uplink eth0 (address `addr`) plugged into the switch as port `port`.
 * `port` is the veth's name inside the switch netns (≤ 15 chars).
 */
export async function plugHost(switchNetns: string, hostNetns: string, port: string, addr: string, mtu: number): Promise<void> {
  await createNetns(hostNetns);
  await ip(switchNetns, 'link', 'add', port, 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', hostNetns);
  await ip(switchNetns, 'link', 'set', port, 'master', 'br0', 'up');
  await ip(hostNetns, 'addr', 'add', `${addr}/${UNDERLAY_LEN}`, 'dev', 'eth0');
  await ip(hostNetns, 'link', 'set', 'eth0', 'up');
  // Physical NICs receive with GRO on; veth does not by default. Without it every VXLAN segment
  // is decapsulated one by one and the underlay would flatter nothing but the anchor.
  await nsRun(hostNetns, 'ethtool', ['-K', 'eth0', 'gro', 'on'], { allowFail: true });
}

export async function sysctl(netns: string, key: string, value: string): Promise<void> {
  await nsRun(netns, 'sysctl', ['-q', '-w', `${key}=${value}`]);
}
