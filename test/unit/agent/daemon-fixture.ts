// The whole daemon on the memory kernel and the memory lease store, for the daemon unit tests:
// a kernel with an uplink, a fake traffic-rules backend, and start(), which runs a Daemon and
// registers it for stopRigs() (call it from afterEach).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, vi } from 'vitest';
import { Daemon } from '../../../agent/daemon.js';
import { parseOptions } from '../../../agent/options.js';
import type { TrafficRules, TrafficSpec } from '../../../agent/traffic/types.js';
import { MemoryKernel } from '../../../lib/netlink/memory.js';
import { MemorySubnetManager, type MemorySubnetManagerOptions } from '../../../lib/subnet/memory.js';
import { RTPROT_TWILL, type NetlinkHandle } from '../../../lib/netlink/types.js';
import { silentLogger, type Logger } from '../../../lib/log.js';

export const NETCONF = JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1 } });
export const mac = (n: number): string => `02:00:00:00:00:${n.toString(16).padStart(2, '0')}`;
export const peerAttrs = (n: number) => ({ publicIP: `192.0.2.${n}`, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: mac(n) } });

/**
 * A memory lease store whose free-subnet pick is fixed (the middle of the range: 10.244.128.0/24
 * in NETCONF's network) instead of Math.random. A random pick for the daemon's own lease lands on
 * one of the peer subnets these tests write (10.244.3–32.0/24) about once in a hundred runs, and
 * the test then sees our own key overwritten instead of a peer.
 */
export const memoryStore = (opts: MemorySubnetManagerOptions = {}): MemorySubnetManager => new MemorySubnetManager({ random: () => 0.5, ...opts });

export class FakeTraffic implements TrafficRules {
  readonly backend = 'nftables' as const;
  specs: TrafficSpec[] = [];
  /** While set, ensure() fails with this message (as nft would without CAP_NET_ADMIN). */
  failing: string | undefined;
  async ensure(spec: TrafficSpec) { if (this.failing) throw new Error(this.failing); this.specs.push(spec); }
  async check(spec: TrafficSpec) { return JSON.stringify(this.specs.at(-1)) === JSON.stringify(spec); }
  async remove() { this.specs = []; }
}

/** A kernel with one interface, `uplink` (index 2, 192.0.2.1/24), for the daemon to pick. */
export function kernelWithUplink(): MemoryKernel {
  const k = new MemoryKernel();
  k.external([{ verb: 'create', object: { kind: 'link', name: 'uplink', type: 'bridge', mtu: 1500, up: true } }]);
  k.external([{ verb: 'replace', object: { kind: 'addr', ifindex: 2, family: 4, address: '192.0.2.1', prefixLen: 24 } }]);
  return k;
}

export interface Rig {
  k: MemoryKernel; sm: MemorySubnetManager; d: Daemon; traffic: FakeTraffic; dir: string;
  /** run()'s promise (already given a catch, so a rejection is only seen where awaited). */
  done: Promise<void>;
  stop: () => Promise<void>;
}

export interface StartOpts {
  k?: MemoryKernel;
  /** What the daemon talks to instead of `k` (a wrapper around it). */
  handle?: NetlinkHandle;
  sm?: MemorySubnetManager;
  traffic?: FakeTraffic;
  /** Kept after stop() when given (a restart reuses it). */
  dir?: string;
  args?: string[];
  logger?: Logger;
  /** Wait for /readyz's condition before returning (default true). */
  waitReady?: boolean;
}

const rigs: Rig[] = [];

/** Stops every daemon start() made and the test has not stopped itself. */
export async function stopRigs(): Promise<void> {
  for (const r of rigs.splice(0)) await r.stop();
}

export async function start(opts: StartOpts = {}): Promise<Rig> {
  const k = opts.k ?? kernelWithUplink();
  const sm = opts.sm ?? memoryStore({ config: NETCONF });
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'twill-daemon-'));
  const traffic = opts.traffic ?? new FakeTraffic();
  const o = parseOptions(['--iface', 'uplink', '--subnet-file', join(dir, 'subnet.env'), '--healthz-port', '0', ...(opts.args ?? [])], {});
  const ctl = new AbortController();
  const d = new Daemon(o, { logger: opts.logger ?? silentLogger(), signal: ctl.signal, handle: opts.handle ?? k, traffic, subnetManager: { sm, nodeName: 'n1', previousVtepMac: async () => undefined } });
  const done = d.run();
  done.catch(() => undefined);
  let stopped = false;
  const rig: Rig = {
    k, sm, d, traffic, dir, done,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      rigs.splice(rigs.indexOf(rig) >>> 0, rigs.includes(rig) ? 1 : 0);
      ctl.abort();
      await done.catch(() => undefined);
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  rigs.push(rig);
  if (opts.waitReady !== false) await vi.waitFor(() => expect(d.status.ready).toBe(true), { timeout: 5000, interval: 10 });
  return rig;
}

export const dev = async (k: MemoryKernel) => (await k.listLinks()).find((l) => l.name === 'twill.1');
/** One peer's entries as the kernel holds them (the FDB: every entry on the device). */
export async function peerState(k: MemoryKernel, subnet: string) {
  const d = await dev(k);
  const gw = subnet.replace(/\/\d+$/, '');
  return {
    route: (await k.listRoutes({ protocol: RTPROT_TWILL })).find((r) => r.dst === subnet),
    arp: (await k.listNeighs({ family: 4, ifindex: d?.index })).find((n) => n.ip === gw),
    fdb: (await k.listNeighs({ family: 'bridge', ifindex: d?.index })),
    nexthops: await k.listNexthops(),
  };
}
