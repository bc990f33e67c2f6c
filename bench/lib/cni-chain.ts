// Running a CNI network configuration list the way libcni (containerd's, CRI-O's) runs it, so a
// chain's cost is measured as a runtime pays it. What libcni v1.3 does (libcni/api.go):
//   - ADD: each plugin in list order; its config is the plugin's entry of the list with the
//     list's `name` and `cniVersion` injected, the previous plugin's result as `prevResult`
//     (none for the first), and `runtimeConfig` holding only those of the runtime's capability
//     arguments the plugin declares in `capabilities`. The last result is the list's result.
//   - DEL: each plugin in reverse order, the same injection; `prevResult` is the cached result of
//     the ADD (for every plugin alike) when the list's version is 0.4.0 or later, none before.
//   - every call gets the same CNI_* environment; the executable is found by `type` in CNI_PATH.
// Each plugin runs in a named "host" netns through nsenter (test/util/pods.ts's cniExec), so
// nothing lands in the machine's root netns; that one fork+exec per top-level plugin is in the
// times, and a benchmark reports it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cniExec, type CniExecResult } from '../../test/util/pods.js';

export interface ChainConf {
  name: string;
  cniVersion: string;
  plugins: Record<string, unknown>[];   // entries of the conflist's `plugins`, as written
}

export interface Chain {
  conf: ChainConf;
  path: string[];                       // CNI_PATH directories, in order
  host: string;                         // netns the plugins run in
  bins: string[];                       // each plugin's executable (found by type in path)
}

export interface Attachment {
  containerId: string;
  netns: string;                        // CNI_NETNS path
  ifname: string;
  capabilityArgs?: Record<string, unknown>;   // e.g. { portMappings: [...] }
}

export function makeChain(conf: ChainConf, path: string[], host: string): Chain {
  const bins = conf.plugins.map((p) => {
    const type = String(p['type']);
    const dir = path.find((d) => existsSync(join(d, type)));
    if (!dir) throw new Error(`CNI plugin ${type} is in none of ${path.join(':')}`);
    return join(dir, type);
  });
  return { conf, path, host, bins };
}

/** libcni's buildOneConfig + injectRuntimeConfig for plugin `i`. */
export function pluginConfig(chain: Chain, i: number, prevResult: unknown, att: Attachment): Record<string, unknown> {
  const p = chain.conf.plugins[i]!;
  const out: Record<string, unknown> = { ...p, name: chain.conf.name, cniVersion: chain.conf.cniVersion };
  if (prevResult !== undefined) out['prevResult'] = prevResult;
  const caps = (p['capabilities'] ?? {}) as Record<string, boolean>;
  const rc: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(caps)) {
    if (on && att.capabilityArgs && cap in att.capabilityArgs) rc[cap] = att.capabilityArgs[cap];
  }
  if (Object.keys(rc).length > 0) out['runtimeConfig'] = rc;
  return out;
}

function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map(Number);
  const b = min.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
}

async function run(chain: Chain, i: number, cmd: 'ADD' | 'DEL', conf: object, att: Attachment): Promise<CniExecResult> {
  const r = await cniExec(cmd, conf, {
    containerId: att.containerId, netns: att.netns, ifname: att.ifname, path: chain.path.join(':'),
  }, { plugin: chain.bins[i]!, hostNetns: chain.host, via: 'nsenter' });
  if (r.code !== 0) {
    throw new Error(`${String(chain.conf.plugins[i]!['type'])} ${cmd} ${att.containerId} failed (exit ${r.code}): ${r.raw} ${r.stderr}`);
  }
  return r;
}

/**
 * ADD through the whole list; returns the list's result (what libcni caches for DEL), the wall
 * time (ms) of each plugin's exec and, when a `meter` is given (e.g. the children's CPU time;
 * only meaningful when nothing else runs at once), its difference across each exec, in list order.
 */
export async function chainAdd(chain: Chain, att: Attachment, meter?: () => number): Promise<{ result: unknown; ms: number[]; metered: number[] }> {
  let result: unknown;
  const ms: number[] = [];
  const metered: number[] = [];
  for (let i = 0; i < chain.bins.length; i++) {
    const m0 = meter?.() ?? 0;
    const t0 = performance.now();
    const r = await run(chain, i, 'ADD', pluginConfig(chain, i, result, att), att);
    ms.push(performance.now() - t0);
    metered.push((meter?.() ?? 0) - m0);
    if (r.stdout === undefined) throw new Error(`${String(chain.conf.plugins[i]!['type'])} ADD printed no result: ${r.raw}`);
    result = r.stdout;
  }
  return { result, ms, metered };
}

/**
 * DEL through the list in reverse order, with the cached ADD result as libcni passes it;
 * returns each plugin's wall time (ms) and metered difference, in list order.
 */
export async function chainDel(chain: Chain, att: Attachment, cached: unknown, meter?: () => number): Promise<{ ms: number[]; metered: number[] }> {
  const prev = versionAtLeast(chain.conf.cniVersion, '0.4.0') ? cached : undefined;
  const ms: number[] = new Array<number>(chain.bins.length);
  const metered: number[] = new Array<number>(chain.bins.length);
  for (let i = chain.bins.length - 1; i >= 0; i--) {
    const m0 = meter?.() ?? 0;
    const t0 = performance.now();
    await run(chain, i, 'DEL', pluginConfig(chain, i, prev, att), att);
    ms[i] = performance.now() - t0;
    metered[i] = (meter?.() ?? 0) - m0;
  }
  return { ms, metered };
}
