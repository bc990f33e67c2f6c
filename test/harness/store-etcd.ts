// etcd-backed ClusterStore: the harness writes net-conf.json and synthetic leases with etcdctl
// inside the switch netns (flannel's key layout: <prefix>/config, <prefix>/subnets/<a.b.c.d-len>).
import { etcdServer, type EtcdServer } from './etcd.js';
import { decodeLease, encodeLease, subnetKey, type ClusterStore, type StoredLease, type SyntheticLease } from './store.js';

export interface EtcdStoreOptions {
  netns: string;
  host: string;
  dataDir: string;
  logFile: string;
  prefix: string;               // etcd key prefix, e.g. /twill.io/network
}

interface KvJson { key: string; value: string; lease?: number | string }

export class EtcdStore implements ClusterStore {
  readonly mode = 'etcd' as const;
  readonly etcd: EtcdServer;
  readonly prefix: string;

  constructor(opts: EtcdStoreOptions) {
    this.etcd = etcdServer(opts);
    this.prefix = opts.prefix;
  }

  get endpoint(): string { return this.etcd.endpoint; }
  start(): Promise<void> { return this.etcd.start(); }
  stop(): Promise<void> { return this.etcd.stop(); }
  running(): boolean { return this.etcd.running(); }
  destroy(): Promise<void> { return this.etcd.destroy(); }
  pid(): number | undefined { return this.etcd.pid(); }

  agentArgs(): string[] {
    return ['--etcd-endpoints', this.etcd.endpoint, '--etcd-prefix', this.prefix];
  }

  agentEnv(): Record<string, string> { return {}; }
  async prepareNode(): Promise<void> { /* etcd: the agent leases its own subnet */ }

  async writeConfig(netConf: object): Promise<void> {
    await this.etcd.ctl(['put', `${this.prefix}/config`, JSON.stringify(netConf)]);
  }

  async leases(): Promise<StoredLease[]> {
    const out = await this.etcd.ctl(['get', '--prefix', `${this.prefix}/subnets/`, '-w', 'json']);
    const kvs = (JSON.parse(out) as { kvs?: KvJson[] }).kvs ?? [];
    return kvs.map((kv) => {
      const key = Buffer.from(kv.key, 'base64').toString('utf8');
      const subnet = key.slice(key.lastIndexOf('/') + 1).replace(/-(\d+)$/, '/$1');
      const hasLease = kv.lease !== undefined && String(kv.lease) !== '0';
      return decodeLease(key, subnet, Buffer.from(kv.value, 'base64').toString('utf8'), hasLease);
    });
  }

  async putLease(l: SyntheticLease): Promise<void> {
    const key = `${this.prefix}/subnets/${subnetKey(l.subnet)}`;
    const args = ['put', key, encodeLease(l)];
    if (l.ttlSec) {
      const out = await this.etcd.ctl(['lease', 'grant', String(l.ttlSec)]);
      const id = /lease ([0-9a-f]+) granted/.exec(out)?.[1];
      if (!id) throw new Error(`etcdctl lease grant: unexpected output ${JSON.stringify(out)}`);
      args.push(`--lease=${id}`);
    }
    await this.etcd.ctl(args);
  }

  async deleteLease(subnet: string): Promise<void> {
    await this.etcd.ctl(['del', `${this.prefix}/subnets/${subnetKey(subnet)}`]);
  }
}
