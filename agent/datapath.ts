// The running datapath, built whole by the daemon's start-up (daemon.ts) and then driven by three
// streams: lease events (our own key and the peers'), kernel notifications, and the periodic
// checks of the files and rules that have no notifications (subnet.env, the traffic rules).
// Data flows one way — leases in, kernel state out:
//   lease watch ─┐
//   kernel watch ├─► PeerTable (desired) ─► Reconciler (diff vs observed, apply) ─► kernel
//   resync timer ┘
import type { Logger } from '../lib/log.js';
import type { Lease, LeaseEvent, SubnetManager } from '../lib/subnet/types.js';
import type { NetlinkHandle } from '../lib/netlink/types.js';
import type { Clock } from '../lib/retry.js';
import { errorMessage } from '../lib/errors.js';
import { formatPrefix, parsePrefix, type Prefix } from '../lib/ip/prefix.js';
import type { AgentOptions } from './options.js';
import type { ExternalInterface } from './iface.js';
import type { LeaseKeeper } from './lease-keeper.js';
import type { PeerTable } from './peers.js';
import type { Reconciler } from './reconcile/loop.js';
import type { VxlanDevice } from './backend/vxlan/device.js';
import type { Readiness } from './readiness.js';
import { createTrafficRules } from './traffic/index.js';
import type { TrafficRules, TrafficSpec } from './traffic/types.js';
import { writeSubnetFile } from './subnet-file.js';

export interface DatapathParts {
  o: AgentOptions;
  log: Logger;
  clock: Clock;
  readiness: Readiness;
  handle: NetlinkHandle;
  sm: SubnetManager;
  ext: ExternalInterface;
  network: Prefix;
  keeper: LeaseKeeper;
  peers: PeerTable;
  reconciler: Reconciler;
  device: VxlanDevice;
  /** Injected traffic rules (tests); created on first use otherwise. */
  traffic: TrafficRules | undefined;
  /** Called on every event taken from a watch (the liveness tick). */
  alive(): void;
}

export class Datapath {
  readonly peers: PeerTable;
  readonly reconciler: Reconciler;
  private readonly p: DatapathParts;
  private traffic: TrafficRules | undefined;

  constructor(p: DatapathParts) {
    this.p = p;
    this.peers = p.peers;
    this.reconciler = p.reconciler;
    this.traffic = p.traffic;
  }

  get trafficBackend(): TrafficRules['backend'] | undefined { return this.traffic?.backend; }

  async watchLeases(signal: AbortSignal): Promise<void> {
    for await (const ev of this.p.sm.watchLeases(signal)) {
      this.p.alive();
      await this.onLeaseEvent(ev, signal);
    }
  }

  private async onLeaseEvent(ev: LeaseEvent, signal: AbortSignal): Promise<void> {
    const at = this.p.clock.now();
    const mine = this.p.keeper.lease;
    switch (ev.type) {
      case 'snapshot': {
        const own = ev.leases.find((l) => l.key === mine?.key);
        // A snapshot is always followed by a full pass: no dirty keys to collect.
        this.peers.replaceAll(ev.leases.filter((l) => l.key !== mine?.key), false, ev.invalid);
        this.reconciler.request('all', 'start');
        this.reconciler.request([], 'lease', at);
        if (mine && !own && mine.expiration !== null) await this.reacquire(signal);
        else if (own) await this.ownKeySeen(own, signal);
        break;
      }
      case 'added':
        if (ev.lease.key === mine?.key) await this.ownKeySeen(ev.lease, signal);
        else this.reconciler.request(this.peers.upsert(ev.lease), 'lease', at);
        break;
      case 'removed':
        if (ev.lease.key === mine?.key) await this.reacquire(signal);
        else this.reconciler.request(this.peers.remove(ev.lease.key), 'lease', at);
        break;
      case 'invalid':
        this.reconciler.request(this.peers.markUndecodable(ev.key, ev.reason), 'lease', at);
        break;
      case 'deleted':
        this.reconciler.request(this.peers.remove(ev.key), 'lease', at);
        break;
    }
  }

  /**
   * Our key as the store now holds it. In etcd mode another agent (or a person) can overwrite it:
   * a key naming another node's PublicIP is not our lease any more, so it is re-acquired, which
   * exits non-zero when that node keeps the subnet (LeaseKeeper.reacquire). Left alone, renewal
   * would notice only ahead of expiry, up to 24 h later. In kube mode the key is our own Node.
   */
  private async ownKeySeen(lease: Lease, signal: AbortSignal): Promise<void> {
    if (!this.p.o.kubeSubnetMgr && lease.attrs.publicIP !== this.p.ext.publicIP) {
      this.p.log.warn({ subnet: lease.subnet, holder: lease.attrs.publicIP }, `our subnet's key now names another node (PublicIP ${lease.attrs.publicIP})`);
      await this.reacquire(signal);
      return;
    }
    this.p.keeper.observed(lease);
  }

  private async reacquire(signal: AbortSignal): Promise<void> {
    const lease = await this.p.keeper.reacquire(signal);
    this.reconciler.request(this.peers.setLocal(lease.key, parsePrefix(lease.subnet)), 'lease');
  }

  async watchKernel(signal: AbortSignal): Promise<void> {
    for await (const ev of this.p.handle.watch(['link', 'addr', 'route', 'nexthop', 'neigh'], signal)) {
      if (ev.type !== 'overflow' && ev.object.kind === 'link') {
        if (this.p.device.broken(ev.type, ev.object)) this.reconciler.invalidate('kernel:device');
        continue;
      }
      this.reconciler.onKernelEvent(ev);
    }
  }

  async writeSubnetFile(): Promise<void> {
    const l = this.p.keeper.lease;
    const dev = this.p.device.info;
    if (!l || !dev) return;
    const wrote = await writeSubnetFile(this.p.o.subnetFile, { network: this.p.network, subnet: parsePrefix(l.subnet), mtu: dev.mtu, ipMasq: this.p.o.ipMasq });
    if (wrote) this.p.log.info({ path: this.p.o.subnetFile, subnet: l.subnet }, 'subnet file written');
    this.p.readiness.cond('subnetFile', true);
  }

  private trafficSpec(): TrafficSpec {
    return { network: formatPrefix(this.p.network), subnet: this.p.keeper.lease?.subnet, masquerade: this.p.o.ipMasq };
  }

  async ensureTraffic(checkFirst = false): Promise<void> {
    try {
      this.traffic ??= await createTrafficRules({ logger: this.p.log });
      const spec = this.trafficSpec();
      if (checkFirst && await this.traffic.check(spec)) return;
      await this.traffic.ensure(spec);
      if (checkFirst) this.p.log.warn('traffic rules had drifted; restored');
      this.p.readiness.cond('trafficRules', true);
      this.p.readiness.problem('traffic', undefined);
    } catch (err) {
      this.p.readiness.cond('trafficRules', false);
      this.p.readiness.problem('traffic', `traffic rules: ${errorMessage(err)}`);
      this.p.log.error({ err: errorMessage(err) }, 'traffic rules could not be installed; will retry at the next resync');
    }
  }

  /** Rules and the subnet file have no notifications: checked often (one `nft list`). */
  async checkFilesAndRules(): Promise<void> {
    await this.writeSubnetFile().catch((err) => this.p.log.error({ err: errorMessage(err) }, 'subnet file write failed'));
    await this.ensureTraffic(true);
  }
}
