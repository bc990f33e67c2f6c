// Readiness needs the store: when etcd (or the API server) is down the datapath keeps working,
// but the agent says so. Every probe also reads the network config back, to report a change.
//
// The network config is read once, at start (as flanneld does): a running node's subnets, device
// and rules follow it, and changing them under running pods is a migration, not a resync. A
// change in the store is therefore reported — once per distinct change — and applied by
// restarting the agent (rolling the DaemonSet).
import type { Logger } from '../lib/log.js';
import type { NetConf } from '../lib/config/types.js';
import type { SubnetManager } from '../lib/subnet/types.js';
import { deadline } from '../lib/retry.js';
import { errorMessage, isTwillError } from '../lib/errors.js';
import type { Readiness } from './readiness.js';

export const STORE_PROBE_MS = 5_000;
const STORE_PROBE_TIMEOUT_MS = 3_000;

/**
 * `network "10.244.0.0/16" → "10.245.0.0/16"`: each validated top-level field that differs, old →
 * new; empty when none does (the raw text is skipped: reformatting the JSON is not a change).
 */
export function describeConfChange(a: NetConf, b: NetConf): string {
  const out: string[] = [];
  for (const k of Object.keys({ ...a, ...b }) as (keyof NetConf)[]) {
    if (k === 'raw') continue;
    const x = JSON.stringify(a[k]), y = JSON.stringify(b[k]);
    if (x !== y) out.push(`${k} ${x ?? 'unset'} → ${y ?? 'unset'}`);
  }
  return out.join(', ');
}

export class StoreProbe {
  private readonly sm: SubnetManager;
  private readonly cfg: NetConf;
  private readonly readiness: Readiness;
  private readonly log: Logger;
  /** The last config change reported (each distinct one is logged once, not every probe). */
  private configNote: string | undefined;

  constructor(sm: SubnetManager, cfg: NetConf, readiness: Readiness, log: Logger) {
    this.sm = sm;
    this.cfg = cfg;
    this.readiness = readiness;
    this.log = log;
  }

  async probe(signal: AbortSignal): Promise<void> {
    const probe = deadline(signal, STORE_PROBE_TIMEOUT_MS);
    try {
      const cfg = await this.sm.getNetworkConfig(probe.signal).catch((err: unknown) => {
        if (!isTwillError(err, 'CONFIG_INVALID')) throw err;
        // The store answered: only its config is now bad. The agent keeps the one it runs on.
        this.noteConfigChange(`is now invalid (${errorMessage(err)})`);
        return undefined;
      });
      const change = cfg && describeConfChange(this.cfg, cfg);
      if (change) this.noteConfigChange(`changed: ${change}`);
      if (!this.readiness.conditions.store) this.log.info('lease store reachable again');
      this.readiness.storeAnswered();
    } catch (err) {
      if (signal.aborted) return;
      if (this.readiness.conditions.store) this.log.warn({ err: errorMessage(err) }, 'lease store unreachable; datapath unchanged');
      this.readiness.storeFailed(err);
    } finally {
      probe.done();
    }
  }

  private noteConfigChange(what: string): void {
    if (this.configNote === what) return;
    this.configNote = what;
    this.log.warn(`the network config in the store ${what}; this agent keeps running on the config it started with: restart it to apply a change`);
  }
}
