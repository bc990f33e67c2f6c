// A real etcd for the cluster (test/util/etcd.ts), run inside the switch netns on the underlay
// bridge address so every node reaches it the way a real node would. Stopped and started again on
// the same endpoint and data dir (the outage test). The harness talks to it with etcdctl inside
// the switch netns: the test process stays in the root netns, which holds no test addresses.
import { startEtcd, type EtcdHandle } from '../util/etcd.js';

export const ETCD_CLIENT_PORT = 2379;

export interface EtcdServer {
  readonly endpoint: string;      // http://<host>:2379
  readonly netns: string;
  pid(): number | undefined;
  running(): boolean;
  /** Starts, or starts again after stop() on the same endpoint and data. */
  start(): Promise<void>;
  /** Stops the process, keeping its data. */
  stop(): Promise<void>;
  /** Stops for good. */
  destroy(): Promise<void>;
  /** etcdctl (API v3) against this server; returns stdout, throws on failure. */
  ctl(args: readonly string[]): Promise<string>;
}

export function etcdServer(opts: { netns: string; host: string; dataDir: string; logFile: string }): EtcdServer {
  let h: EtcdHandle | undefined;
  const need = (): EtcdHandle => {
    if (!h) throw new Error('etcd was never started');
    return h;
  };
  return {
    endpoint: `http://${opts.host}:${ETCD_CLIENT_PORT}`,
    netns: opts.netns,
    pid: () => h?.pid,
    running: () => h?.running ?? false,
    ctl: (args) => need().ctl(args),
    async start() {
      if (h) { await h.start(); return; }
      h = await startEtcd({ host: opts.host, netns: opts.netns, dataDir: opts.dataDir, clientPort: ETCD_CLIENT_PORT, logFile: opts.logFile });
    },
    async stop() { await h?.halt(); },
    async destroy() { await h?.stop(); },
  };
}
