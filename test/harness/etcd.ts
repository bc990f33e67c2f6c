// A real etcd for the cluster, run inside the switch netns on the underlay bridge address so that
// every node reaches it the way a real node would. Stopped and started again on the same address
// and data dir (the outage test). The harness itself talks to it with etcdctl run inside the
// switch netns: the test process stays in the root netns, which holds no test addresses.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { nsRun, waitFor } from './exec.js';
import { startProc, type Proc } from './procs.js';

export interface EtcdServer {
  readonly endpoint: string;      // http://<host>:2379
  readonly netns: string;
  pid(): number | undefined;
  running(): boolean;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** etcdctl (API v3) against this server; returns stdout. */
  ctl(args: readonly string[], opts?: { allowFail?: boolean }): Promise<string>;
}

export function etcdServer(opts: { netns: string; host: string; dataDir: string; logFile: string }): EtcdServer {
  const endpoint = `http://${opts.host}:2379`;
  const peer = 'http://127.0.0.1:2380';
  let proc: Proc | undefined;
  const ctl = async (args: readonly string[], o: { allowFail?: boolean } = {}): Promise<string> => {
    const r = await nsRun(opts.netns, 'etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=2s', '--command-timeout=5s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' }, allowFail: o.allowFail ?? false,
    });
    return r.stdout;
  };
  return {
    endpoint,
    netns: opts.netns,
    pid: () => proc?.pid,
    running: () => proc?.alive() ?? false,
    ctl,
    async start() {
      if (proc?.alive()) return;
      mkdirSync(opts.dataDir, { recursive: true });
      proc = startProc('etcd', 'ip', ['netns', 'exec', opts.netns, 'etcd',
        '--name', 'twill-e2e', '--data-dir', join(opts.dataDir, 'data'),
        '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', `twill-e2e=${peer}`, '--log-level', 'warn',
        '--heartbeat-interval', '50', '--election-timeout', '500'], { logFile: opts.logFile });
      const p = proc;
      await waitFor('etcd to serve', async () => {
        if (!p.alive()) throw new Error(`etcd exited; see ${opts.logFile}`);
        const r = await nsRun(opts.netns, 'etcdctl', [`--endpoints=${endpoint}`, '--dial-timeout=1s', 'endpoint', 'health'], {
          env: { ...process.env, ETCDCTL_API: '3' }, allowFail: true,
        });
        return r.code === 0;
      }, 20_000, 100);
    },
    async stop() {
      if (proc) await proc.stop('SIGTERM', 5000);
    },
  };
}
