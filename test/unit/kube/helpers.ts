// Shared set-up for the kube-mode tests: a fake API server on 127.0.0.1, a net-conf.json in a
// temporary directory, a KubeSubnetManager talking to it through twill's own kube client, a log
// capture, and a collector for watchLeases events.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FakeApiServer, type FakeApiServerOptions } from '../../util/fake-apiserver.js';
import { KubeSubnetManager, type KubeSubnetManagerOptions } from '../../../lib/subnet/kube.js';
import type { LeaseAttrs, LeaseEvent } from '../../../lib/subnet/types.js';
import { Backoff } from '../../../lib/retry.js';

export const NET_CONF = { Network: '10.244.0.0/16', Backend: { Type: 'vxlan', VNI: 1 } };

export interface LogLine { level: number; msg: string; [k: string]: unknown }

export interface KubeEnv {
  server: FakeApiServer;
  dir: string;
  netConfigPath: string;
  logs: LogLine[];
  manager(o?: Partial<KubeSubnetManagerOptions>): KubeSubnetManager;
  close(): Promise<void>;
}

export async function kubeEnv(opts: FakeApiServerOptions & { netConf?: object } = {}): Promise<KubeEnv> {
  const server = await FakeApiServer.start(opts);
  const dir = mkdtempSync(join(tmpdir(), 'twill-kube-'));
  const netConfigPath = join(dir, 'net-conf.json');
  writeFileSync(netConfigPath, JSON.stringify(opts.netConf ?? NET_CONF));
  const logs: LogLine[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => { logs.push(JSON.parse(s) as LogLine); } });
  const managers: KubeSubnetManager[] = [];
  return {
    server, dir, netConfigPath, logs,
    manager(o = {}) {
      const m = new KubeSubnetManager({
        kubeApiUrl: server.url, nodeName: 'node-a', netConfigPath, logger,
        newBackoff: () => new Backoff({ initialMs: 20, maxMs: 200 }),
        ...o,
      });
      managers.push(m);
      return m;
    },
    async close() {
      for (const m of managers) await m.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function attrs(ip: string, mac: string, vni = 1): LeaseAttrs {
  return { publicIP: ip, backendType: 'vxlan', backendData: { VNI: vni, VtepMAC: mac } };
}

/** Annotations as a twill agent on another node would have published them. */
export function published(ip: string, mac: string, prefix = 'twill.io'): Record<string, string> {
  return {
    [`${prefix}/kube-subnet-manager`]: 'true',
    [`${prefix}/backend-type`]: 'vxlan',
    [`${prefix}/public-ip`]: ip,
    [`${prefix}/backend-data`]: JSON.stringify({ VNI: 1, VtepMAC: mac }),
  };
}

export interface Collector {
  events: LeaseEvent[];
  stop(): void;
  done: Promise<void>;
}

export function collect(m: KubeSubnetManager): Collector {
  const ac = new AbortController();
  const events: LeaseEvent[] = [];
  const done = (async () => { for await (const e of m.watchLeases(ac.signal)) events.push(e); })();
  return { events, stop: () => ac.abort(), done };
}

/** Polls until `pred` holds (a correctness deadline, not a speed assertion). */
export async function waitFor(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function ofType<T extends LeaseEvent['type']>(events: LeaseEvent[], type: T): Extract<LeaseEvent, { type: T }>[] {
  return events.filter((e): e is Extract<LeaseEvent, { type: T }> => e.type === type);
}
