// Kube-mode benchmark (issue 17 row 4): twilld vs flanneld v0.28.11, each in kube mode
// (--kube-subnet-mgr, --kubeconfig-file with its own ServiceAccount token, NODE_NAME) against a
// real kube-apiserver + etcd (test/harness/store-kube-real.ts: no kubelets, no controllers), with
// 1k and 5k synthetic Nodes created through the API, each with spec.podCIDR(s) and both agents'
// annotations (twill.io/* and flannel.alpha.coreos.com/*; each agent reads only its own prefix,
// as deployed). bench/lib/kube-rig.ts has the sandbox, the API client and the counters.
//
// Per size the agents run one at a time, interleaved (twill, flannel, flannel, twill, …), each in
// a fresh private netns, with its own Node deleted and re-registered before the start. Per run:
//   start → subnet file   the agent wrote --subnet-file (what the CNI plugin waits for)
//   start → kernel        every peer's route, ARP and FDB entry is in the agent's netns, seen by a
//                         netlink listener counting entries (the same for both)
//   peak RSS              VmHWM at the end of the run (start, 30 s idle, the update test)
//   settled RSS           VmRSS 30 s after start → kernel
//   update → kernel       a peer Node's public-ip annotation patched → its FDB entry points at the
//                         new address (--updates, one at a time), p50/p99
//   requests              requests the agent made, start → settled, from the apiserver's API
//                         Priority and Fairness counter (kube-system ServiceAccounts' FlowSchema)
// The table shows the median of --runs runs with the range; ratios are twill/flannel medians.
//
// Usage: node dist/bench/kube.js [--nodes 1000,5000] [--runs 3] [--updates 100] [--settle-seconds 30]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RealKubeStore } from '../test/harness/store-kube-real.js';
import { peersBin } from './lib/peers.js';
import { table, quantile, fmtMs } from './lib/report.js';
import {
  AdminApi, FLANNEL_RBAC, KernelCounter, SW_IP, agentRequests, delAgentNetns, endpointAnnotations, makeAgentNetns, memMiB, runInsideSwitch,
  nodeObject, peer, writeTokenKubeconfig, type Peer,
} from './lib/kube-rig.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const SIZES = flag('nodes', '1000,5000').split(',').map(Number);
const RUNS = Math.max(1, Number(flag('runs', '3')));
const UPDATES = Number(flag('updates', '100'));
const SETTLE_S = Number(flag('settle-seconds', '30'));
const TAG = flag('tag', `tk${process.pid.toString(36)}`);
const ROOT = resolve(import.meta.dirname, '../..');
const TWILLD = join(ROOT, 'bin/twilld.js');
const NET_CONF = { Network: '10.0.0.0/8', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1 } };
const START_TIMEOUT_MS = 180_000;

type AgentName = 'twill' | 'flannel';
interface AgentSpec { name: AgentName; node: string; addr: string; podCIDR: string; kubeconfig: string }
interface Run {
  agent: AgentName; nodes: number; subnetFileMs: number; kernelMs: number; peakMiB: number; settledMiB: number;
  requests: number; updateRequests: number; upd: number[]; overflows: number;
}

// ---- outside: the switch netns, then this script again inside it ----

function outside(): void {
  runInsideSwitch('bench/kube', TAG, args, ['twill', 'flannel']);
}

// ---- inside the switch netns ----

async function inside(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), `${TAG}-`));
  const store = new RealKubeStore({ netns: `${TAG}-sw`, host: SW_IP, workDir: join(work, 'store'), logDir: join(work, 'logs') });
  const agents: ChildProcess[] = [];
  const kill = () => { for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL'); };
  process.on('exit', kill);
  let api: AdminApi | undefined;
  try {
    mkdirSync(join(work, 'store'), { recursive: true });
    mkdirSync(join(work, 'logs'), { recursive: true });
    await store.start();
    await store.writeConfig(NET_CONF);
    const cp = store.controlPlane;
    api = new AdminApi(cp.adminKubeconfig);
    await cp.kubectl(['apply', '-f', '-'], { input: FLANNEL_RBAC });
    const token = (await cp.kubectl(['create', 'token', 'flannel', '-n', 'kube-system', '--duration=24h'])).stdout.trim();
    const flannelKc = join(work, 'flannel.kubeconfig');
    writeTokenKubeconfig(flannelKc, store.endpoint, cp.spec.pki.caCert, token);
    const specs: Record<AgentName, AgentSpec> = {
      twill: { name: 'twill', node: 'bench-twill', addr: '10.251.0.2', podCIDR: '10.255.0.0/24', kubeconfig: store.agentKubeconfig },
      flannel: { name: 'flannel', node: 'bench-flannel', addr: '10.251.0.3', podCIDR: '10.255.1.0/24', kubeconfig: flannelKc },
    };
    for (const s of Object.values(specs)) await api.createNode(nodeObject(s.node, s.podCIDR, s.addr));

    const runs: Run[] = [];
    let created = 0;
    let peers: Peer[] = [];
    for (const n of SIZES) {
      const t = performance.now();
      const fresh = Array.from({ length: n - created }, (_, j) => peer(created + j));
      await AdminApi.pool(fresh, 16, (p) => api!.createNode(nodeObject(p.name, p.subnet, p.publicIP, endpointAnnotations(p.publicIP, p.mac))));
      created = n;
      peers = Array.from({ length: n }, (_, i) => peer(i));
      console.error(`bench/kube: ${n} peer Nodes in the API (${fresh.length} created in ${fmtMs(performance.now() - t)})`);
      for (let r = 0; r < RUNS; r++) {
        const order: AgentName[] = r % 2 === 0 ? ['twill', 'flannel'] : ['flannel', 'twill'];
        for (const a of order) {
          const run = await runAgent(store, api, specs[a], peers, work, agents);
          runs.push(run);
          console.error(`bench/kube: ${n} nodes, run ${r + 1} ${a}: subnet file ${fmtMs(run.subnetFileMs)}, kernel ${fmtMs(run.kernelMs)}, peak ${run.peakMiB.toFixed(1)} MiB, settled ${run.settledMiB.toFixed(1)} MiB, ${run.requests} requests (+${run.updateRequests} during updates), update p99 ${fmtMs(quantile(run.upd, 0.99))}${run.overflows ? `, ${run.overflows} netlink overflows` : ''}`);
        }
      }
    }
    report(runs);
  } finally {
    kill();
    api?.close();
    await store.destroy();
    if (process.env.TWILL_BENCH_KEEP) console.error(`bench/kube: kept ${work}`); else rmSync(work, { recursive: true, force: true });
  }
}

function spawnAgent(spec: AgentSpec, ns: string, store: RealKubeStore, subnetFile: string, logFile: string): ChildProcess {
  const nsenter = ['--net=/run/netns/' + ns, '--'];
  let cmd: string[];
  if (spec.name === 'twill') {
    const shebang = readFileSync(TWILLD, 'utf8').split('\n', 1)[0]!.replace(/^#!\/usr\/bin\/env -S node\s*/, '').split(' ').filter(Boolean);
    cmd = [process.execPath, ...shebang, TWILLD, ...store.agentArgs(), '--iface', 'uplink', '--subnet-file', subnetFile,
      '--healthz-ip', '127.0.0.1', '--healthz-port', '18472', '--log-level', 'info',
      // Like for like: flanneld enforces no NetworkPolicy (bench/policy.ts measures twill's).
      '--network-policy=false'];
  } else {
    cmd = [join(peersBin(), 'flanneld'), '--kube-subnet-mgr', '--kubeconfig-file', spec.kubeconfig, '--net-config-path', store.netConfPath,
      '--iface', 'uplink', '--subnet-file', subnetFile];
  }
  const out = openSync(logFile, 'w');
  try {
    return spawn('nsenter', [...nsenter, ...cmd], { stdio: ['ignore', out, out], env: { ...process.env, NODE_NAME: spec.node } });
  } finally {
    closeSync(out);
  }
}

async function runAgent(store: RealKubeStore, api: AdminApi, spec: AgentSpec, peers: readonly Peer[], work: string, procs: ChildProcess[]): Promise<Run> {
  const ns = `${TAG}-${spec.name}`;
  const port = `${TAG.slice(0, 6)}-${spec.name.slice(0, 2)}`;
  makeAgentNetns(`${TAG}-sw`, ns, port, spec.addr);
  // A node as a freshly registered kubelet leaves it: podCIDR assigned, no agent annotations yet.
  await api.deleteNode(spec.node);
  await api.createNode(nodeObject(spec.node, spec.podCIDR, spec.addr));
  const dir = join(work, `${spec.name}-${peers.length}-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  const subnetFile = join(dir, 'subnet.env');
  const counter = new KernelCounter(`/run/netns/${ns}`, peers);
  let agent: ChildProcess | undefined;
  try {
    const req0 = await agentRequests(api);
    const t0 = performance.now();
    agent = spawnAgent(spec, ns, store, subnetFile, join(dir, 'agent.log'));
    procs.push(agent);
    const exited = new Promise<never>((_, j) => agent!.once('exit', (c, s) => j(new Error(`${spec.name} exited (${c ?? s}); log: ${join(dir, 'agent.log')}\n${tail(join(dir, 'agent.log'))}`))));
    exited.catch(() => undefined);
    const subnetFileAt = Promise.race([pollFile(subnetFile, START_TIMEOUT_MS), exited]);
    const kernelAt = await Promise.race([counter.until(() => counter.complete(), START_TIMEOUT_MS, `${spec.name}: every peer in the kernel`), exited]);
    const sfAt = await subnetFileAt;
    await Promise.race([sleep(SETTLE_S * 1000), exited]);
    const settledMiB = memMiB(agent.pid!).rss;
    const req1 = await agentRequests(api);
    const upd = await Promise.race([updates(api, counter, peers, UPDATES), exited]);
    const req2 = await agentRequests(api);
    const peakMiB = memMiB(agent.pid!).hwm;
    return {
      agent: spec.name, nodes: peers.length, subnetFileMs: sfAt - t0, kernelMs: kernelAt - t0, peakMiB, settledMiB,
      requests: req1 - req0, updateRequests: req2 - req1, upd, overflows: counter.overflows,
    };
  } finally {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGTERM');
      await Promise.race([new Promise((r) => agent!.once('exit', r)), sleep(10_000)]);
      if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGKILL');
    }
    await counter.close();
    delAgentNetns(`${TAG}-sw`, ns, port);
  }
}

let updateSeq = 0;

/** Patches one peer's public IP at a time (both prefixes) and times it until its FDB entry points there. */
async function updates(api: AdminApi, counter: KernelCounter, peers: readonly Peer[], count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = peers[(i * 7919) % peers.length]!;
    // A fresh address for every update of the whole benchmark, outside the peers' 172.16–17 range.
    const seq = ++updateSeq;
    const next = `172.${24 + (seq >> 16)}.${(seq >> 8) & 255}.${seq & 255}`;
    const ann: Record<string, string> = {};
    for (const [k, v] of Object.entries(endpointAnnotations(next, p.mac))) if (k.endsWith('/public-ip')) ann[k] = v;
    const w = counter.until(() => counter.fdb.get(p.mac) === next, 10_000, `update ${p.name} → ${next}`);
    const t = performance.now();
    await api.patchNode(p.name, { metadata: { annotations: ann } });
    out.push((await w) - t);
  }
  return out;
}

async function pollFile(path: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (existsSync(path)) return performance.now();
    await sleep(5);
  }
  throw new Error(`${path} not written after ${timeoutMs} ms`);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const tail = (path: string) => { try { return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n'); } catch { return ''; } };

// ---- the table ----

function report(runs: Run[]): void {
  const med = (xs: number[], fmt: (x: number) => string) => xs.length > 1
    ? `${fmt(quantile(xs, 0.5))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : fmt(xs[0]!);
  const mib = (x: number) => `${x.toFixed(1)} MiB`;
  const int = (x: number) => String(Math.round(x));
  const rows: string[][] = [];
  for (const n of SIZES) {
    const of = (a: AgentName, f: (r: Run) => number) => runs.filter((r) => r.nodes === n && r.agent === a).map(f);
    const row = (label: string, f: (r: Run) => number, fmt: (x: number) => string, abs?: (x: number) => string) => {
      const t = of('twill', f), fl = of('flannel', f);
      const [mt, mf] = [quantile(t, 0.5), quantile(fl, 0.5)];
      const ratio = mt === mf ? 1 : mt / mf;   // 0 / 0: equal
      const absGoal = abs?.(quantile(t, 0.5));
      const ok = ratio <= 1.0 && (absGoal === undefined || absGoal.startsWith('✅'));
      rows.push([String(n), label, med(t, fmt), med(fl, fmt), Number.isFinite(ratio) ? ratio.toFixed(2) : '–',
        `≤ 1.0×${absGoal ? `, ${absGoal.slice(2)}` : ''} ${ok ? '✅' : '❌'}`]);
    };
    const p99 = (r: Run) => quantile(r.upd, 0.99);
    row('start → subnet file', (r) => r.subnetFileMs, fmtMs);
    row('start → every peer in the kernel', (r) => r.kernelMs, fmtMs);
    row('peak RSS (VmHWM)', (r) => r.peakMiB, mib, n >= 5000 ? (x) => `${x <= 128 ? '✅' : '❌'} ≤ 128 MiB` : undefined);
    row(`settled RSS (${SETTLE_S} s after kernel)`, (r) => r.settledMiB, mib, n >= 5000 ? (x) => `${x <= 96 ? '✅' : '❌'} ≤ 96 MiB` : undefined);
    row(`Node update → kernel p50 (${UPDATES} updates)`, (r) => quantile(r.upd, 0.5), fmtMs);
    row(`Node update → kernel p99 (${UPDATES} updates)`, p99, fmtMs);
    row(`API requests, start → settled`, (r) => r.requests, int);
    row(`API requests during the ${UPDATES} updates`, (r) => r.updateRequests, int);
  }
  console.log(`\nKube mode on a real kube-apiserver (no kubelets): twilld vs flanneld ${'v0.28.11'}; median of ${RUNS} run${RUNS > 1 ? 's (range)' : ''} each, interleaved`);
  console.log(table(['Nodes', 'measure', 'twill', 'flannel', 'ratio twill/flannel', 'goal'], rows));
}

// Last, so every const above is initialised before the top-level await runs.
if (!args.includes('--inside')) outside(); else await inside();
