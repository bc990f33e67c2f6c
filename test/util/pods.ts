// Driving the twill CNI plugin exactly as a runtime does (CNI_* env, config on stdin, JSON on
// stdout), for the CNI tests, the benchmark and the multi-node netns cluster, where each "node"
// is a netns: the plugin then runs inside that netns through `ip netns exec <node>`, so its
// bridge, veths and sysctls land in the node, never in the machine's root netns.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';

export type CniCmd = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';

/** The checkout (found upwards from this file, so it also works compiled under dist/). */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

function findRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'cni'))) return d;
    if (dirname(d) === d) return resolve(dir, '../..');
  }
}
export const DEFAULT_PLUGIN = join(REPO_ROOT, 'dist/cni/twill');

export interface CniExecEnv {
  containerId?: string;
  netns?: string;            // CNI_NETNS (a path); '' to pass it empty
  ifname?: string;
  args?: string;             // CNI_ARGS
  path?: string;             // CNI_PATH (default: the plugin's directory)
  extra?: Record<string, string>;   // more environment (e.g. TWILL_CNI_FAIL_AT, test only)
}

export interface CniExecOptions {
  plugin?: string;           // executable (default dist/cni/twill)
  hostNetns?: string;        // run the plugin inside this named netns (ip netns exec)
  /** How to enter hostNetns: `ip netns exec` (default; also remounts /sys) or `nsenter --net`. */
  via?: 'ip-netns-exec' | 'nsenter';
  timeoutMs?: number;        // kill after (default 30 s)
  onSpawn?: (pid: number) => void;
  onStderr?: (text: string) => void;   // live stderr (e.g. to see TWILL_CNI_PAUSE_AT's marker)
}

export interface CniExecResult {
  code: number | null;       // exit code (null when killed)
  signal: NodeJS.Signals | null;
  stdout: unknown;           // parsed JSON, undefined when stdout is empty or not JSON
  raw: string;               // stdout as text
  stderr: string;
}

/** Runs one CNI command through the executable. Never throws for a non-zero exit. */
export function cniExec(cmd: CniCmd, conf: object, env: CniExecEnv = {}, opts: CniExecOptions = {}): Promise<CniExecResult> {
  const plugin = opts.plugin ?? DEFAULT_PLUGIN;
  const childEnv: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: cmd,
    CNI_PATH: env.path ?? dirname(plugin),
    ...(env.containerId !== undefined ? { CNI_CONTAINERID: env.containerId } : {}),
    ...(env.netns !== undefined ? { CNI_NETNS: env.netns } : {}),
    ...(env.ifname !== undefined ? { CNI_IFNAME: env.ifname } : {}),
    ...(env.args !== undefined ? { CNI_ARGS: env.args } : {}),
    ...env.extra,
  };
  const [file, args] = !opts.hostNetns ? [plugin, []]
    : opts.via === 'nsenter' ? ['nsenter', [`--net=/var/run/netns/${opts.hostNetns}`, plugin]]
      : ['ip', ['netns', 'exec', opts.hostNetns, plugin]];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args as string[], { env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    if (child.pid !== undefined) opts.onSpawn?.(child.pid);
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { err += d; opts.onStderr?.(err); });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: parseJson(out), raw: out, stderr: err });
    });
    child.stdin.on('error', () => { /* plugin may exit before reading stdin */ });
    child.stdin.end(JSON.stringify(conf));
  });
}

function parseJson(s: string): unknown {
  if (s.trim() === '') return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** A twill network config (one plugin of a conflist, as the runtime passes it). */
export function twillConf(o: {
  subnetFile: string; dataDir: string; name?: string; bridge?: string; cniVersion?: string;
  isDefaultGateway?: boolean; hairpinMode?: boolean; mtu?: number; [k: string]: unknown;
}): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'twill-test', type: 'twill', ...o };
}

export interface Pod {
  name: string;              // netns name
  netns: string;             // /var/run/netns/<name>
  containerId: string;
  ifname: string;
  result: Record<string, unknown>;
  /** The pod's first address without prefix ("10.244.1.5"). */
  ip: string;
}

export interface AddPodOptions {
  name: string;              // netns to create for the pod (≤ 15 chars recommended)
  conf: object;
  containerId?: string;      // default: derived from name + random
  ifname?: string;           // default eth0
  plugin?: string;
  hostNetns?: string;        // the "node" netns the plugin runs in
  args?: string;             // CNI_ARGS (e.g. K8S_POD_NAMESPACE=…;K8S_POD_NAME=…)
}

/** Creates a netns for the pod and ADDs it; on failure the netns is removed and it throws. */
export async function addPod(o: AddPodOptions): Promise<Pod> {
  execFileSync('ip', ['netns', 'add', o.name]);
  const pod = {
    name: o.name,
    netns: `/var/run/netns/${o.name}`,
    containerId: o.containerId ?? `${o.name.replace(/[^a-zA-Z0-9_.-]/g, '')}-${randomBytes(6).toString('hex')}`,
    ifname: o.ifname ?? 'eth0',
  };
  const r = await cniExec('ADD', o.conf, { ...pod, ...(o.args === undefined ? {} : { args: o.args }) }, execOpts(o));
  if (r.code !== 0 || typeof r.stdout !== 'object' || r.stdout === null) {
    deleteNetns(o.name);
    throw new Error(`CNI ADD for pod ${o.name} failed (exit ${r.code}): ${r.raw.trim()} ${r.stderr.trim()}`);
  }
  const result = r.stdout as Record<string, unknown>;
  const ips = result['ips'] as { address: string }[] | undefined;
  return { ...pod, result, ip: ips?.[0]?.address.split('/')[0] ?? '' };
}

/** DELs the pod (throws when DEL fails) and removes its netns. */
export async function delPod(pod: Pod, conf: object, opts: Omit<CniExecOptions, 'onSpawn' | 'onStderr'> = {}): Promise<void> {
  try {
    const r = await cniExec('DEL', { ...conf, prevResult: pod.result }, pod, opts);
    if (r.code !== 0) throw new Error(`CNI DEL for pod ${pod.name} failed (exit ${r.code}): ${r.raw.trim()} ${r.stderr.trim()}`);
  } finally {
    deleteNetns(pod.name);
  }
}

export function deleteNetns(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

function execOpts(o: { plugin?: string; hostNetns?: string }): CniExecOptions {
  return { ...(o.plugin ? { plugin: o.plugin } : {}), ...(o.hostNetns ? { hostNetns: o.hostNetns } : {}) };
}

/**
 * Builds dist/cni/twill when it is missing or older than any source it is built from (cni/,
 * lib/), so tests never exercise a stale binary. Integration tests call this in beforeAll.
 */
export function ensurePluginBuilt(plugin = DEFAULT_PLUGIN): string {
  const built = existsSync(plugin) ? statSync(plugin).mtimeMs : 0;
  const newest = Math.max(newestMtime(join(REPO_ROOT, 'cni')), newestMtime(join(REPO_ROOT, 'lib')),
    statSync(join(REPO_ROOT, 'scripts/build-cni.sh')).mtimeMs);
  if (plugin === DEFAULT_PLUGIN && built < newest) {
    execFileSync('bash', [join(REPO_ROOT, 'scripts/build-cni.sh')], { stdio: ['ignore', 'ignore', 'inherit'], cwd: REPO_ROOT });
  }
  if (!existsSync(plugin)) throw new Error(`CNI plugin ${plugin} does not exist`);
  return plugin;
}

function newestMtime(dir: string): number {
  let max = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) max = Math.max(max, newestMtime(p));
    else if (/\.(ts|mjs)$/.test(e.name)) max = Math.max(max, statSync(p).mtimeMs);
  }
  return max;
}
