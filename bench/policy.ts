// NetworkPolicy benchmark (issue 18): twilld enforcing NetworkPolicy in kube mode on a real
// kube-apiserver (bench/lib/kube-rig.ts, test/harness/store-kube-real.ts: no kubelets), next to
// the no-policy anchor and the peer, kube-network-policies (bench/peers/versions.env), run the
// way its DaemonSet runs it on the same node with the same objects.
//
// The cluster (bench/lib/policy-objects.ts): 20 namespaces, 1,000 pods — 3 real ones with a netns
// on the benchmark's node (client c1, intruder c2, server s1), 47 more on that node without a
// netns, 950 on 19 fake Nodes — and 500 policies (499 of a realistic mix + `flip`). The node
// (bench/lib/policy-node.ts): a netns on the rig's switch with cni0 and the pods wired as a bridge
// CNI wires them, br_netfilter's bridge-nf-call-iptables=1, an outside host routed through it.
//
// Sections (--sections, default all, in this order):
//   peer       kube-network-policies alone on the node with the 500 policies (flip denying c1):
//              its nftables sync as it logs it, the tables in the kernel, and c1 → s1 verdicts.
//   rss        twilld started fresh --runs times with --network-policy (default) and with
//              --network-policy=false, interleaved: start → ready (subnet file; with policy also
//              c1 → s1 denied as flip says), VmRSS --settle-seconds after ready, VmHWM, CPU
//              seconds start → settled, CPU % over the next --idle-seconds.
//   flip       one twilld, 500 policies: --flips changes of flip's `from` (role=client ↔
//              role=nobody) and --flips changes of c1's role label (client ↔ client-off); each
//              timed from the API write's response to the start of the first TCP connect c1 → s1:80
//              with the new verdict (a connect every ms, denied = no answer in 200 ms).
//   datapath   the policies deleted; --blocks blocks of: no policy at all, then 100 policies
//              selecting s1 with allowing rules (or the reverse order): --connects sequential TCP
//              connects c1 → s1 (over cni0) and outside → s1 (routed through the node, then cni0),
//              and one iperf3 run c1 → s1 (--seconds). Each state is checked before it is
//              measured: c2 → s1 denied with the 100 policies, open without.
//
// Usage: node dist/bench/policy.js [--sections peer,rss,flip,datapath] [--runs 3] [--flips 40]
//        [--blocks 4] [--connects 250] [--seconds 3] [--settle-seconds 20] [--idle-seconds 10]
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { RealKubeStore } from '../test/harness/store-kube-real.js';
import { peersBin } from './lib/peers.js';
import { table, quantile, fmtMs } from './lib/report.js';
import { AdminApi, SW_IP, delNetns, endpointAnnotations, memMiB, nodeObject, runInsideSwitch } from './lib/kube-rig.js';
import {
  REAL_NS, SYN_NAMESPACES, flipPolicy, mixPolicy, namespaces, nsName, podObject, podStatus, population, serverPolicy, type PodSpec,
} from './lib/policy-objects.js';
import { Prober, addrOf, createPolicyNode, nowMs, startServer, type PolicyNode } from './lib/policy-node.js';
import { compilePolicies, createNftPolicyEnforcer, renderDiff, renderPolicyState, slimNamespace, slimNetworkPolicy, slimPod } from '../lib/policy/index.js';
import { KNP_RBAC, KNP_TABLE, firstSyncErrors, nftQueueError, nftTables, peerSyncLines, startPeer } from './lib/policy-peer.js';

const args = process.argv.slice(2);
const flag = (name: string, def: string) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1]! : def; };
const SECTIONS = new Set(flag('sections', 'peer,rss,flip,datapath').split(','));
const RUNS = Math.max(1, Number(flag('runs', '3')));
const FLIPS = Number(flag('flips', '40'));
const BLOCKS = Number(flag('blocks', '4'));
const CONNECTS = Number(flag('connects', '250'));
const SECONDS = Number(flag('seconds', '3'));
const SETTLE_S = Number(flag('settle-seconds', '20'));
const IDLE_S = Number(flag('idle-seconds', '10'));
const TAG = flag('tag', `pb${process.pid.toString(36)}`);
const ROOT = resolve(import.meta.dirname, '../..');
const TWILLD = join(ROOT, 'bin/twilld.js');
const NET_CONF = { Network: '10.0.0.0/8', SubnetLen: 24, Backend: { Type: 'vxlan', VNI: 1 } };
const NODE = 'pb-node';
const NODE_ADDR = '10.251.0.2';
const POD_CIDR = '10.255.0.0/24';
const OUTSIDE_CIDR = '10.254.0.0/24';
const TOTAL_PODS = 1000;
const MIX = 499;
const SERVER_POLICIES = 100;
const REAL: PodSpec[] = [
  { namespace: REAL_NS, name: 'c1', node: NODE, ip: addrOf(POD_CIDR, 2), labels: { role: 'client' } },
  { namespace: REAL_NS, name: 'c2', node: NODE, ip: addrOf(POD_CIDR, 3), labels: { role: 'other' } },
  { namespace: REAL_NS, name: 's1', node: NODE, ip: addrOf(POD_CIDR, 4), labels: { app: 'bench-server' } },
];
const S1 = REAL[2]!.ip;
const LOAD_AT_START = loadavg()[0]!;
const cpus = availableParallelism();
const KNP_VERSION = /^KNP_VERSION=(\S+)/m.exec(readFileSync(join(ROOT, 'bench/peers/versions.env'), 'utf8'))?.[1] ?? '?';

// ---- outside: the switch netns, then this script again inside it ----

function outside(): void {
  runInsideSwitch('bench/policy', TAG, args, ['node', 'out', 'c1', 'c2', 's1']);
}

// ---- inside the switch netns ----

interface RssRun { policy: boolean; readyMs: number; settledMiB: number; peakMiB: number; cpuStartS: number; idleCpuPct: number }
interface Results {
  peer?: { queueError: string | undefined; runs: PeerRun[] };
  rss: RssRun[];
  flipPolicy: number[]; flipLabel: number[]; flipAgainst: number;
  /** twilld's own apply time (compile → rules in the kernel) over the flips, from its /metrics. */
  applies?: { count: number; meanMs: number };
  /**
   * The agent's pipeline taken apart, in this process on the same objects, for flip's two states:
   * compilePolicies(), render + diff (pure), and the enforcer's whole apply() (render, diff and
   * the `nft -f` transaction) into a scratch netns. ms per run.
   */
  pipeline?: { compile: number[]; renderDiff: number[]; apply: number[] };
  /** Per block and state: each path's median connect time (µs), and the iperf3 result (Gbit/s). */
  blocks: { none?: { pod: number; out: number; tput: number }; pol?: { pod: number; out: number; tput: number } }[];
  connects: number;
}

async function inside(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), `${TAG}-`));
  const store = new RealKubeStore({ netns: `${TAG}-sw`, host: SW_IP, workDir: join(work, 'store'), logDir: join(work, 'logs') });
  const procs: ChildProcess[] = [];
  const probers: Prober[] = [];
  const kill = () => { for (const a of procs) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL'); for (const p of probers) p.close(); };
  process.on('exit', kill);
  let api: AdminApi | undefined;
  let node: PolicyNode | undefined;
  const res: Results = { rss: [], flipPolicy: [], flipLabel: [], flipAgainst: 0, blocks: [], connects: 0 };
  try {
    mkdirSync(join(work, 'store'), { recursive: true });
    mkdirSync(join(work, 'logs'), { recursive: true });
    await store.start();
    await store.writeConfig(NET_CONF);
    api = new AdminApi(store.controlPlane.adminKubeconfig);
    const pop = population({ node: NODE, podCIDR: POD_CIDR, real: REAL, total: TOTAL_PODS, localSynthetic: 47 });
    const t0 = performance.now();
    await populate(api, pop.pods, pop.fakeNodes);
    if (SECTIONS.has('flip')) res.pipeline = await timePipeline(pop.pods);
    log(`${pop.pods.length} pods on ${pop.fakeNodes.length + 1} Nodes in ${SYN_NAMESPACES + 1} namespaces, ${MIX + 1} policies in the API (${fmtMs(performance.now() - t0)})`);

    node = createPolicyNode({
      tag: TAG, sw: `${TAG}-sw`, uplinkPort: `${TAG.slice(0, 8)}-n`, uplinkAddr: NODE_ADDR, podCIDR: POD_CIDR, outsideCidr: OUTSIDE_CIDR,
      pods: REAL.map((p) => ({ name: p.name, ip: p.ip })),
    });
    procs.push(await startServer(node.pods.get('s1')!.netns, [80]));
    const c1 = new Prober(node.pods.get('c1')!.netns);
    const c2 = new Prober(node.pods.get('c2')!.netns);
    const out = new Prober(node.outside.netns);
    probers.push(c1, c2, out);
    // Without any agent nothing is enforced: every path is open.
    for (const [p, what] of [[c1, 'c1'], [c2, 'c2'], [out, 'outside']] as const) {
      if (await p.verdict(S1, 80) !== 'ok') throw new Error(`${what} → s1:80 is not open before any agent runs`);
    }

    if (SECTIONS.has('peer')) res.peer = await peerSection(store, node, c1, c2, work, procs);
    if (SECTIONS.has('rss')) {
      for (let r = 0; r < RUNS; r++) {
        for (const policy of r % 2 === 0 ? [true, false] : [false, true]) {
          const run = await rssRun(store, node, c1, policy, work, procs);
          res.rss.push(run);
          log(`rss run ${r + 1} ${policy ? 'policy' : 'no policy'}: ready ${fmtMs(run.readyMs)}, settled ${run.settledMiB.toFixed(1)} MiB, peak ${run.peakMiB.toFixed(1)} MiB, CPU start → settled ${run.cpuStartS.toFixed(2)} s, idle ${run.idleCpuPct.toFixed(2)} %`);
        }
      }
    }
    if (SECTIONS.has('flip') || SECTIONS.has('datapath')) {
      const agent = await startTwilld(store, node, true, join(work, 'twilld-main'), procs);
      await waitVerdict(c1, S1, 80, 'denied', 60_000, 'c1 → s1 denied by flip (role=nobody)');
      if (SECTIONS.has('flip')) await flipSection(api, node, c1, res);
      if (SECTIONS.has('datapath')) await datapathSection(api, node, c1, c2, out, res);
      await stopProc(agent.proc);
    }
    report(res);
  } finally {
    kill();
    api?.close();
    node?.destroy();
    await store.destroy();
    if (process.env.TWILL_BENCH_KEEP) log(`kept ${work}`); else rmSync(work, { recursive: true, force: true });
  }
}

const log = (s: string) => console.error(`bench/policy: ${s}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- the API objects ----

async function populate(api: AdminApi, pods: PodSpec[], fakeNodes: ReturnType<typeof population>['fakeNodes']): Promise<void> {
  await api.createNode(nodeObject(NODE, POD_CIDR, NODE_ADDR));
  await AdminApi.pool(fakeNodes, 16, (p) => api.createNode(nodeObject(p.name, p.subnet, p.publicIP, endpointAnnotations(p.publicIP, p.mac))));
  for (const ns of namespaces()) await api.must('POST', '/api/v1/namespaces', ns);
  // No controller-manager: each namespace's default ServiceAccount, which Pod admission looks up.
  const nsNames = [REAL_NS, ...Array.from({ length: SYN_NAMESPACES }, (_, i) => nsName(i))];
  await AdminApi.pool(nsNames, 8, (ns) => api.must('POST', `/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default' } }));
  const hostOf = new Map<string, string>([[NODE, NODE_ADDR], ...fakeNodes.map((n) => [n.name, n.publicIP] as [string, string])]);
  await AdminApi.pool(pods, 16, async (p) => {
    await api.must('POST', `/api/v1/namespaces/${p.namespace}/pods`, podObject(p));
    await api.must('PATCH', `/api/v1/namespaces/${p.namespace}/pods/${p.name}/status`, podStatus(p.ip, hostOf.get(p.node)!), 'application/merge-patch+json');
  });
  const policies = [...Array.from({ length: MIX }, (_, i) => mixPolicy(i)), flipPolicy('nobody')];
  await AdminApi.pool(policies, 16, (p) => {
    const ns = (p as { metadata: { namespace: string } }).metadata.namespace;
    return api.must('POST', `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`, p);
  });
}

/** The agent's pipeline on the benchmark's objects, slimmed as the agent slims them, flipped 20 times. */
async function timePipeline(pods: PodSpec[]): Promise<NonNullable<Results['pipeline']>> {
  const input = (role: string) => ({
    policies: [...Array.from({ length: MIX }, (_, i) => mixPolicy(i)), flipPolicy(role)].map(slimNetworkPolicy),
    namespaces: namespaces().map(slimNamespace),
    pods: pods.map((p) => slimPod({ ...(podObject(p) as object), ...(podStatus(p.ip, NODE_ADDR) as object) })),
    nodeName: NODE,
  });
  const inputs = [input('nobody'), input('client')];
  const ns = `${TAG}-scr`;
  execFileSync('ip', ['netns', 'add', ns]);
  const out = { compile: [] as number[], renderDiff: [] as number[], apply: [] as number[] };
  try {
    const enforcer = createNftPolicyEnforcer({ netns: ns });
    const guard = [POD_CIDR];
    let prev = compilePolicies(inputs[0]!);
    if (prev.rejected.length) throw new Error(`the mix has policies the compiler rejects: ${JSON.stringify(prev.rejected.slice(0, 3))}`);
    await enforcer.apply(prev, guard);
    for (let i = 1; i <= 20; i++) {
      let t = performance.now();
      const model = compilePolicies(inputs[i % 2]!);
      out.compile.push(performance.now() - t);
      t = performance.now();
      renderDiff(renderPolicyState(prev, { guardCidrs: guard }), renderPolicyState(model, { guardCidrs: guard }));
      out.renderDiff.push(performance.now() - t);
      t = performance.now();
      const r = await enforcer.apply(model, guard);
      out.apply.push(performance.now() - t);
      if (r.mode !== 'incremental') throw new Error(`scratch enforcer: a flip applied as ${r.mode}`);
      prev = model;
    }
  } finally {
    delNetns(ns);
  }
  return out;
}

async function deleteAllPolicies(api: AdminApi): Promise<void> {
  for (const ns of [REAL_NS, ...Array.from({ length: SYN_NAMESPACES }, (_, i) => nsName(i))]) {
    await api.must('DELETE', `/apis/networking.k8s.io/v1/namespaces/${ns}/networkpolicies`);
  }
}

// ---- agents ----

interface Agent { proc: ChildProcess; startedAt: number; subnetFile: string; dir: string }

async function startTwilld(store: RealKubeStore, node: PolicyNode, policy: boolean, dir: string, procs: ChildProcess[]): Promise<Agent> {
  mkdirSync(dir, { recursive: true });
  const subnetFile = join(dir, 'subnet.env');
  const shebang = readFileSync(TWILLD, 'utf8').split('\n', 1)[0]!.replace(/^#!\/usr\/bin\/env -S node\s*/, '').split(' ').filter(Boolean);
  const cmd = [process.execPath, ...shebang, TWILLD, ...store.agentArgs(), '--iface', 'uplink', '--subnet-file', subnetFile,
    '--healthz-ip', '127.0.0.1', '--healthz-port', '18473', '--log-level', 'info', ...(policy ? [] : ['--network-policy=false'])];
  const out = openSync(join(dir, 'agent.log'), 'w');
  let proc: ChildProcess;
  try {
    const startedAt = performance.now();
    proc = spawn('nsenter', ['--net=/run/netns/' + node.netns, '--', ...cmd], { stdio: ['ignore', out, out], env: { ...process.env, NODE_NAME: NODE } });
    procs.push(proc);
    proc.once('exit', (c, s) => { if (!stopping.has(proc)) log(`twilld exited (${c ?? s}); log ${join(dir, 'agent.log')}:\n${tail(join(dir, 'agent.log'))}`); });
    return { proc, startedAt, subnetFile, dir };
  } finally {
    closeSync(out);
  }
}

const stopping = new Set<ChildProcess>();

async function stopProc(p: ChildProcess, graceMs = 10_000): Promise<void> {
  stopping.add(p);
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await Promise.race([gone, sleep(graceMs)]);
  if (p.exitCode === null && p.signalCode === null) { p.kill('SIGKILL'); await gone; }
}

/** nsenter execs twilld, so the child's pid is the agent's. */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

function dropPolicyTable(node: PolicyNode): void {
  try { execFileSync('ip', ['netns', 'exec', node.netns, 'nft', 'delete', 'table', 'inet', 'twill-policy'], { stdio: 'ignore' }); } catch { /* none */ }
}

async function waitVerdict(p: Prober, host: string, port: number, want: 'ok' | 'denied', timeoutMs: number, what: string): Promise<number> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) {
    if (await p.verdict(host, port, 300) === want) return performance.now();
    await sleep(20);
  }
  throw new Error(`${what}: not after ${timeoutMs} ms`);
}

async function waitFile(path: string, timeoutMs: number): Promise<number> {
  const end = performance.now() + timeoutMs;
  while (performance.now() < end) { if (existsSync(path)) return performance.now(); await sleep(5); }
  throw new Error(`${path} not written after ${timeoutMs} ms`);
}

// ---- rss ----

async function rssRun(store: RealKubeStore, node: PolicyNode, c1: Prober, policy: boolean, work: string, procs: ChildProcess[]): Promise<RssRun> {
  dropPolicyTable(node);
  const a = await startTwilld(store, node, policy, join(work, `rss-${policy ? 'on' : 'off'}-${Date.now()}`), procs);
  try {
    const fileAt = await waitFile(a.subnetFile, 120_000);
    // With policy, ready = flip's verdict (c1 denied) is in force; without, c1 stays open.
    const readyAt = policy ? await waitVerdict(c1, S1, 80, 'denied', 120_000, 'twilld: c1 → s1 denied') : fileAt;
    if (!policy && await c1.verdict(S1, 80) !== 'ok') throw new Error('--network-policy=false: c1 → s1 is not open');
    await sleep(SETTLE_S * 1000);
    const pid = a.proc.pid!;
    const settledMiB = memMiB(pid).rss;
    const cpuStartS = cpuSeconds(pid);
    await sleep(IDLE_S * 1000);
    const idleCpuPct = (cpuSeconds(pid) - cpuStartS) / IDLE_S * 100;
    return { policy, readyMs: readyAt - a.startedAt, settledMiB, peakMiB: memMiB(pid).hwm, cpuStartS, idleCpuPct };
  } finally {
    await stopProc(a.proc);
    dropPolicyTable(node);
  }
}

// ---- flip ----

async function flipSection(api: AdminApi, node: PolicyNode, c1: Prober, res: Results): Promise<void> {
  const m0 = applyMetric(node);
  // Policy flips: flip's peer role=client (c1 allowed) ↔ role=nobody (denied). Starts denied.
  for (let i = 0; i < FLIPS; i++) {
    const want = i % 2 === 0 ? 'ok' : 'denied';
    const role = want === 'ok' ? 'client' : 'nobody';
    res.flipPolicy.push(await timedFlip(c1, want, res, () => api.must('PATCH', `/apis/networking.k8s.io/v1/namespaces/${REAL_NS}/networkpolicies/flip`,
      { spec: (flipPolicy(role) as { spec: object }).spec }, 'application/merge-patch+json')));
  }
  // Leave flip allowing role=client; then label flips on c1: client-off (denied) ↔ client (allowed).
  if (FLIPS % 2 === 0) {
    await api.must('PATCH', `/apis/networking.k8s.io/v1/namespaces/${REAL_NS}/networkpolicies/flip`, { spec: (flipPolicy('client') as { spec: object }).spec }, 'application/merge-patch+json');
  }
  await waitVerdict(c1, S1, 80, 'ok', 10_000, 'flip allowing role=client');
  for (let i = 0; i < FLIPS; i++) {
    const want = i % 2 === 0 ? 'denied' : 'ok';
    const role = want === 'ok' ? 'client' : 'client-off';
    res.flipLabel.push(await timedFlip(c1, want, res, () => api.must('PATCH', `/api/v1/namespaces/${REAL_NS}/pods/c1`, { metadata: { labels: { role } } }, 'application/merge-patch+json')));
  }
  const m1 = applyMetric(node);
  if (m0 && m1 && m1.count > m0.count) res.applies = { count: m1.count - m0.count, meanMs: (m1.sum - m0.sum) / (m1.count - m0.count) * 1000 };
  log(`flips: twilld applied ${res.applies?.count ?? '?'} times, mean ${res.applies?.meanMs.toFixed(1) ?? '?'} ms (twill_policy_apply_duration_seconds)`);
  log(`flips: policy p50 ${fmtMs(quantile(res.flipPolicy, 0.5))} p99 ${fmtMs(quantile(res.flipPolicy, 0.99))}; label p50 ${fmtMs(quantile(res.flipLabel, 0.5))} p99 ${fmtMs(quantile(res.flipLabel, 0.99))}; ${res.flipAgainst} later attempts with the old verdict`);
  // Back to the starting state for the sections after this one.
  await api.must('PATCH', `/api/v1/namespaces/${REAL_NS}/pods/c1`, { metadata: { labels: { role: 'client' } } }, 'application/merge-patch+json');
}

/** twilld's apply-duration histogram (sum, count) from its /metrics in the node netns. */
function applyMetric(node: PolicyNode): { sum: number; count: number } | undefined {
  let text: string;
  try {
    text = execFileSync('ip', ['netns', 'exec', node.netns, 'curl', '-sf', 'http://127.0.0.1:18473/metrics'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch { return undefined; }
  const v = (k: string) => Number(new RegExp(`^twill_policy_apply_duration_seconds_${k} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const r = { sum: v('sum'), count: v('count') };
  return Number.isFinite(r.sum) && Number.isFinite(r.count) ? r : undefined;
}

/** Starts c1's probe loop, makes the write, and returns response → first connect with `want`, ms. */
async function timedFlip(c1: Prober, want: 'ok' | 'denied', res: Results, write: () => Promise<unknown>): Promise<number> {
  const probe = c1.flip(S1, 80, want, { everyMs: 1, timeoutMs: 200, maxMs: 10_000 });
  await sleep(20);   // the loop is running and showing the old verdict
  await write();
  const respAt = nowMs();
  const r = await probe;
  res.flipAgainst += r.against;
  await sleep(100 + Math.random() * 100);
  return r.at - respAt;
}

// ---- datapath ----

async function setState(api: AdminApi, node: PolicyNode, c1: Prober, c2: Prober, out: Prober, state: 'none' | 'pol'): Promise<void> {
  if (state === 'none') {
    await api.must('DELETE', `/apis/networking.k8s.io/v1/namespaces/${REAL_NS}/networkpolicies`);
    await waitVerdict(c2, S1, 80, 'ok', 30_000, 'no policy: c2 → s1 open');
    await waitPolicyChains(node, 0);
  } else {
    await AdminApi.pool(Array.from({ length: SERVER_POLICIES }, (_, i) => serverPolicy(i, OUTSIDE_CIDR)), 16,
      (p) => api.must('POST', `/apis/networking.k8s.io/v1/namespaces/${REAL_NS}/networkpolicies`, p));
    await waitPolicyChains(node, SERVER_POLICIES);
    await waitVerdict(c2, S1, 80, 'denied', 30_000, `${SERVER_POLICIES} policies: c2 → s1 denied`);
    for (const [p, what] of [[c1, 'c1'], [out, 'outside']] as const) {
      if (await p.verdict(S1, 80) !== 'ok') throw new Error(`${SERVER_POLICIES} policies: ${what} → s1:80 not allowed`);
      if (await p.verdict(S1, 5201, 300) === 'ok') { /* no iperf3 server now: refused counts as denied here */ }
    }
  }
}

/** twill's table holds one ingress chain per policy isolating a local pod: wait for `n` of pb-real's server policies. */
async function waitPolicyChains(node: PolicyNode, n: number): Promise<void> {
  const end = performance.now() + 30_000;
  let seen = -1;
  while (performance.now() < end) {
    let text: string;
    try { text = execFileSync('ip', ['netns', 'exec', node.netns, 'nft', '-j', 'list', 'chains', 'inet'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { text = '{"nftables":[]}'; }
    const chains = (JSON.parse(text) as { nftables: { chain?: { table: string; name: string } }[] }).nftables;
    seen = chains.filter((c) => c.chain?.table === 'twill-policy' && c.chain.name.startsWith(`in/${REAL_NS}/srv-`)).length;
    if (seen === n) return;
    await sleep(50);
  }
  throw new Error(`twill-policy: ${seen} chains of ${REAL_NS}'s server policies, expected ${n}`);
}

async function datapathSection(api: AdminApi, node: PolicyNode, c1: Prober, c2: Prober, out: Prober, res: Results): Promise<void> {
  await deleteAllPolicies(api);
  let current: 'none' | 'pol' | undefined;
  for (let b = 0; b < BLOCKS; b++) {
    // none, pol | pol, none | none, pol …: each state change is one transition, and each state
    // is measured first and second equally often.
    for (const state of b % 2 === 0 ? ['none', 'pol'] as const : ['pol', 'none'] as const) {
      if (state !== current) await setState(api, node, c1, c2, out, state);
      current = state;
      await sleep(500);
      const pod = await c1.rtt(S1, 80, CONNECTS);
      const o = await out.rtt(S1, 80, CONNECTS);
      const gbit = await iperf(node, state);
      (res.blocks[b] ??= {})[state] = { pod: quantile(pod, 0.5), out: quantile(o, 0.5), tput: gbit };
      res.connects = CONNECTS;
      log(`block ${b + 1} ${state === 'none' ? 'no policy' : `${SERVER_POLICIES} policies`}: connect c1 → s1 p50 ${(quantile(pod, 0.5)).toFixed(0)} µs, outside → s1 p50 ${(quantile(o, 0.5)).toFixed(0)} µs, iperf3 ${gbit.toFixed(2)} Gbit/s`);
    }
  }
}

async function iperf(node: PolicyNode, state: string): Promise<number> {
  const s1 = node.pods.get('s1')!.netns;
  const c1 = node.pods.get('c1')!.netns;
  const server = spawn('ip', ['netns', 'exec', s1, 'iperf3', '-s', '-1', '-B', S1], { stdio: 'ignore' });
  try {
    for (let i = 0; i < 50; i++) {
      let stdout = '';
      try {
        stdout = execFileSync('ip', ['netns', 'exec', c1, 'iperf3', '-c', S1, '-t', String(SECONDS), '-J'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: (SECONDS + 30) * 1000 });
      } catch (e) { stdout = (e as { stdout?: string }).stdout ?? ''; }
      const j = stdout ? JSON.parse(stdout) as { error?: string; end?: { sum_received?: { bits_per_second: number } } } : undefined;
      const bps = j?.end?.sum_received?.bits_per_second;
      if (bps !== undefined && !j?.error) return bps / 1e9;
      await sleep(100);
    }
    throw new Error(`iperf3 c1 → s1 (${state}): no result`);
  } finally {
    if (server.exitCode === null) server.kill('SIGKILL');
  }
}

// ---- peer ----

interface PeerRun { args: string[]; tables: string[]; c1: string; c2: string; exited: string | undefined; syncs: number; failed: number; errors: string[]; nfqueueOpened: boolean; rssMiB?: number }

/**
 * The peer alone on the node, with the DaemonSet's flags and again with
 * --netfilter-bug-1766-fix=false (its help: not needed on kernels 6.12+; this one is newer), which
 * drops its 4 prerouting queue rules and keeps the 4 postrouting ones.
 */
async function peerSection(store: RealKubeStore, node: PolicyNode, c1: Prober, c2: Prober, work: string, procs: ChildProcess[]): Promise<Results['peer']> {
  const bin = join(peersBin(), 'kube-network-policies');
  if (!existsSync(bin)) throw new Error(`${bin} missing: bash bench/peers/build.sh`);
  const cp = store.controlPlane;
  await cp.kubectl(['apply', '-f', '-'], { input: KNP_RBAC });
  const tokenFile = join(work, 'knp.token');
  writeFileSync(tokenFile, (await cp.kubectl(['create', 'token', 'kube-network-policies', '-n', 'kube-system', '--duration=24h'])).stdout.trim(), { mode: 0o600 });
  const queueError = nftQueueError(node.netns);
  log(`nft queue expression in this kernel: ${queueError ?? 'accepted'}`);
  const runs: PeerRun[] = [];
  for (const extra of [[], ['--netfilter-bug-1766-fix=false']]) {
    const logFile = join(work, 'logs', `kube-network-policies-${runs.length}.log`);
    const p = startPeer({ bin, netns: node.netns, node: NODE, apiHost: SW_IP, apiPort: 6443, tokenFile, caCert: cp.spec.pki.caCert, logFile, extraArgs: extra });
    procs.push(p);
    let exited: string | undefined;
    p.once('exit', (c, s) => { exited = String(c ?? s); });
    // Its informers sync, then it programs nftables (retried per key): wait for an outcome, or 30 s.
    const end = performance.now() + 30_000;
    while (performance.now() < end && exited === undefined && !peerSyncLines(logFile).some((l) => /"syncing nftables rules" error|Caches are synced/.test(l))) await sleep(200);
    await sleep(3000);
    const tables = nftTables(node.netns);
    // nsenter, unshare and sh each exec the next: the child's pid is the peer's.
    let rssMiB: number | undefined;
    try { rssMiB = memMiB(p.pid!).rss; } catch { /* exited */ }
    // flip isolates s1 and allows only role=nobody: an enforcing agent drops c1 and c2.
    const v1 = await c1.verdict(S1, 80, 500);
    const v2 = await c2.verdict(S1, 80, 500);
    const lines = peerSyncLines(logFile);
    await stopProc(p, 8000);
    const run: PeerRun = {
      args: extra, tables, c1: v1, c2: v2, exited,
      syncs: lines.filter((l) => l.includes('"Syncing nftables rules"')).length,
      failed: lines.filter((l) => l.includes('"syncing nftables rules" error')).length,
      errors: firstSyncErrors(logFile), nfqueueOpened: !lines.some((l) => l.includes('could not open nfqueue socket')), rssMiB,
    };
    runs.push(run);
    log(`peer kube-network-policies ${KNP_VERSION} ${extra.join(' ') || '(DaemonSet flags)'}: ${run.failed} of ${run.syncs} nftables syncs failed, first with ${run.errors.length} netlink errors (${run.errors[run.errors.length - 1] ?? '-'}); tables ${JSON.stringify(tables)}; c1 → s1 ${v1}, c2 → s1 ${v2}${exited ? `; exited ${exited}` : ''}`);
  }
  return { queueError, runs };
}

const tail = (path: string) => { try { return readFileSync(path, 'utf8').split('\n').slice(-15).join('\n'); } catch { return ''; } };

// ---- the tables ----

function report(r: Results): void {
  const peerCol = peerStatus(r.peer);
  const med = (xs: number[], fmt: (x: number) => string) => xs.length > 1 ? `${fmt(quantile(xs, 0.5))} (${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))})` : xs.length ? fmt(xs[0]!) : '–';
  const rows: string[][] = [];
  const mark = (ok: boolean) => (ok ? '✅' : '❌');
  if (r.flipPolicy.length) {
    for (const [label, xs] of [['policy change → enforced', r.flipPolicy], ['pod label change → enforced', r.flipLabel]] as const) {
      const p50 = quantile([...xs], 0.5), p99 = quantile([...xs], 0.99);
      rows.push([`${label}, p50 (${xs.length} changes)`, fmtMs(p50), '–', peerCol, '–', '']);
      rows.push([`${label}, p99 (${xs.length} changes)`, fmtMs(p99), '–', peerCol, '–', `≤ 100 ms ${mark(p99 <= 100)}; ≤ 0.5× peer: n/a†`]);
    }
  }
  if (r.applies) rows.push([`twilld apply (compile → kernel), mean of ${r.applies.count} during the changes`, `${r.applies.meanMs.toFixed(1)} ms`, '–', peerCol, '–', '']);
  if (r.pipeline) {
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    rows.push([`the same pipeline in the bench process (${r.pipeline.compile.length} flips): compilePolicies()`, med(r.pipeline.compile, ms), '–', '–', '–', '']);
    rows.push(['… render + diff (pure, inside apply())', med(r.pipeline.renderDiff, ms), '–', '–', '–', '']);
    rows.push(['… enforcer apply(): render, diff, nft -f into a scratch netns', med(r.pipeline.apply, ms), '–', '–', '–', '']);
  }
  const blocks = r.blocks.filter((b) => b.none && b.pol) as { none: { pod: number; out: number; tput: number }; pol: { pod: number; out: number; tput: number } }[];
  if (blocks.length) {
    // Per block: the median of each state's connects, and the ratio of the two; the table shows
    // the median over blocks (range), so load that comes and goes hits both states of a block.
    const us = (x: number) => `${x.toFixed(0)} µs`;
    const g = (x: number) => `${x.toFixed(2)} Gbit/s`;
    const rat = (xs: number[]) => `${quantile(xs, 0.5).toFixed(3)} (${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)})`;
    for (const [label, k] of [['TCP connect c1 → s1 (same bridge), p50', 'pod'], ['TCP connect outside → s1 (routed + bridge), p50', 'out']] as const) {
      const ratios = blocks.map((b) => b.pol[k] / b.none[k]);
      rows.push([`${label}, ${blocks.length} blocks × ${r.connects} connects`, med(blocks.map((b) => b.pol[k]), us), med(blocks.map((b) => b.none[k]), us), peerCol, rat(ratios), `≤ 1.05× none ${mark(quantile(ratios, 0.5) <= 1.05)}`]);
    }
    const tr = blocks.map((b) => b.pol.tput / b.none.tput);
    rows.push([`iperf3 c1 → s1 (${blocks.length} × ${SECONDS} s)`, med(blocks.map((b) => b.pol.tput), g), med(blocks.map((b) => b.none.tput), g), peerCol, rat(tr), `≥ 0.95× none ${mark(quantile(tr, 0.5) >= 0.95)}`]);
  }
  if (r.rss.length) {
    const on = r.rss.filter((x) => x.policy), off = r.rss.filter((x) => !x.policy);
    const mib = (x: number) => `${x.toFixed(1)} MiB`;
    const growth = quantile(on.map((x) => x.settledMiB), 0.5) - quantile(off.map((x) => x.settledMiB), 0.5);
    const peakGrowth = quantile(on.map((x) => x.peakMiB), 0.5) - quantile(off.map((x) => x.peakMiB), 0.5);
    rows.push(['twilld start → ready', med(on.map((x) => x.readyMs), fmtMs), med(off.map((x) => x.readyMs), fmtMs), peerCol, '–', '']);
    rows.push([`twilld settled RSS (${SETTLE_S} s after ready)`, med(on.map((x) => x.settledMiB), mib), med(off.map((x) => x.settledMiB), mib), peerCol, `+${growth.toFixed(1)} MiB`, `growth ≤ 20 MiB ${mark(growth <= 20)}`]);
    rows.push(['twilld peak RSS (VmHWM)', med(on.map((x) => x.peakMiB), mib), med(off.map((x) => x.peakMiB), mib), peerCol, `+${peakGrowth.toFixed(1)} MiB`, '']);
    rows.push(['twilld CPU, start → settled', med(on.map((x) => x.cpuStartS), (x) => `${x.toFixed(2)} s`), med(off.map((x) => x.cpuStartS), (x) => `${x.toFixed(2)} s`), peerCol, '–', '']);
    rows.push([`twilld CPU, idle (${IDLE_S} s)`, med(on.map((x) => x.idleCpuPct), (x) => `${x.toFixed(2)} %`), med(off.map((x) => x.idleCpuPct), (x) => `${x.toFixed(2)} %`), peerCol, '–', '']);
  }
  console.log(`\nNetworkPolicy on a real kube-apiserver (no kubelets): ${TOTAL_PODS} pods, ${MIX + 1} policies (datapath: ${SERVER_POLICIES} selecting the server vs none); twill vs no policy vs kube-network-policies ${KNP_VERSION}`);
  console.log(`(ranges over runs/rounds; change rows: one sample per change; the anchor for the agent rows is twilld --network-policy=false; 1-min load average ${LOAD_AT_START.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end, on ${cpus} cores)`);
  console.log(table(['measure', 'twill', 'no policy (anchor)', `kube-network-policies ${KNP_VERSION}`, 'ratio', 'goal'], rows));
  if (r.peer) {
    console.log(`\n† kube-network-policies ${KNP_VERSION} alone on the same node with the same objects (its DaemonSet's flags, then also --netfilter-bug-1766-fix=false):`);
    console.log(`  nft \`queue num 98\` rule in this kernel: ${r.peer.queueError ?? 'accepted'}`);
    for (const p of r.peer.runs) {
      console.log(`  ${p.args.join(' ') || 'DaemonSet flags'}: ${p.failed} of ${p.syncs} nftables syncs failed, the first with ${p.errors.length} netlink errors ("${p.errors[p.errors.length - 1] ?? ''}"), nfqueue socket ${p.nfqueueOpened ? 'opened' : 'not opened'}, VmRSS ${p.rssMiB?.toFixed(1) ?? '?'} MiB; tables in the kernel: ${p.tables.length ? p.tables.join(', ') : 'none'}; c1 → s1:80 ${p.c1}, c2 → s1:80 ${p.c2} (flip denies both)${p.exited ? `; exited ${p.exited}` : ''}`);
    }
  }
}

function peerStatus(p: Results['peer']): string {
  if (!p) return 'not run';
  const r = p.runs[0]!;
  if (r.c1 === 'denied' && r.c2 === 'denied') return 'enforced (not timed)';
  const table = r.tables.some((t) => t.endsWith(KNP_TABLE)) ? 'its table present' : 'no table';
  return `not enforcing† (${table})`;
}

// Last, so every const above is initialised before the top-level await runs.
if (!args.includes('--inside')) outside(); else await inside();
