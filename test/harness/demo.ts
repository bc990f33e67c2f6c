// `npm run demo`: three simulated nodes (network namespaces on one bridge) each run twilld
// against a real etcd; the demo prints the leases and a pod-to-pod connectivity matrix, then
// keeps refreshing it (and reporting events such as a node leaving) until Ctrl-C, and cleans up.
// `--check` does one pass non-interactively and exits 0 only when every pair connects with the
// sender's pod address intact (no NAT) and every node holds exactly its peers' kernel entries.
import { existsSync } from 'node:fs';
import { checkPeerEntries, checkSubnets, connectivityMatrix, type PairResult } from './checks.js';
import { startCluster, type Cluster } from './cluster.js';
import { isRoot } from '../util/root.js';
import { CNI_BIN } from './paths.js';
import type { PodMode } from './pods.js';
import type { StoreMode, StoredLease } from './store.js';

interface DemoArgs { check: boolean; nodes: number; mode: StoreMode; pods: PodMode; intervalSec: number; ipMasq: boolean }

const USAGE = `usage: npm run demo -- [--check] [--nodes N] [--mode etcd|kube] [--pods standin|cni] [--interval SEC] [--no-ip-masq]
  --check       one pass, no interaction: exit 0 only if every pod pair connects (no NAT)
  --nodes N     number of nodes (default 3)
  --mode        where leases live: etcd (default) or kube (the pinned kube-apiserver; needs test/cluster/build.sh's binaries)
  --pods        cni (the built CNI plugin; default when dist/cni/twill exists) or standin (iproute2)
  --interval    seconds between refreshes (default 3)`;

function parseArgs(argv: readonly string[]): DemoArgs {
  // Real pods from the built CNI plugin when it is there (npm run build makes it), else stand-ins.
  const a: DemoArgs = { check: false, nodes: 3, mode: 'etcd', pods: existsSync(CNI_BIN) ? 'cni' : 'standin', intervalSec: 3, ipMasq: true };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${f} needs a value\n${USAGE}`);
      return v;
    };
    if (f === '--check') a.check = true;
    else if (f === '--nodes') a.nodes = Number(val());
    else if (f === '--mode') a.mode = val() as StoreMode;
    else if (f === '--pods') a.pods = val() as PodMode;
    else if (f === '--interval') a.intervalSec = Number(val());
    else if (f === '--no-ip-masq') a.ipMasq = false;
    else if (f === '--help' || f === '-h') { process.stdout.write(USAGE + '\n'); process.exit(0); }
    else throw new Error(`unknown argument ${f}\n${USAGE}`);
  }
  if (!Number.isInteger(a.nodes) || a.nodes < 2 || a.nodes > 20) throw new Error(`--nodes: ${a.nodes} is invalid: must be 2..20`);
  if (a.mode !== 'etcd' && a.mode !== 'kube') throw new Error(`--mode: ${a.mode} is invalid: must be etcd or kube`);
  if (a.pods !== 'standin' && a.pods !== 'cni') throw new Error(`--pods: ${a.pods} is invalid: must be standin or cni`);
  if (!(a.intervalSec >= 1)) throw new Error(`--interval: ${a.intervalSec} is invalid: must be at least 1`);
  return a;
}

// ---- rendering ------------------------------------------------------------------------------

const tty = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: string) => (s: string): string => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const green = paint('32');
const red = paint('31');
const bold = paint('1');
const dim = paint('2');
const pad = (s: string, n: number): string => s + ' '.repeat(Math.max(0, n - visible(s).length));
// eslint-disable-next-line no-control-regex
const visible = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, '');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => visible(r[col] ?? '').length)));
  return rows.map((r) => '  ' + r.map((cell, col) => pad(cell, widths[col]! + 2)).join('').trimEnd()).join('\n');
}

function leasesTable(c: Cluster, leases: readonly StoredLease[]): string {
  const rows = [[bold('node'), bold('subnet'), bold('public IP'), bold('VTEP MAC'), bold('agent'), bold('pods')]];
  for (const n of c.nodes) {
    const l = leases.find((x) => x.publicIP === n.underlayIP);
    const pods = c.pods.filter((p) => p.node === n.index).map((p) => p.ip).join(' ');
    const agent = n.agent.running ? green(`pid ${n.agent.pid}`) : red('stopped');
    rows.push([n.name, l?.subnet ?? red('(no lease)'), n.underlayIP, l?.vtepMAC ?? '-', agent, pods || '-']);
  }
  for (const l of leases.filter((x) => !c.nodes.some((n) => n.underlayIP === x.publicIP))) {
    rows.push([dim('(other)'), l.subnet, l.publicIP, l.vtepMAC ?? '-', '-', '-']);
  }
  return table(rows);
}

function matrixTable(c: Cluster, m: readonly PairResult[], rtt: ReadonlyMap<string, number | undefined>): string {
  const rows = [[bold('from \\ to'), ...c.pods.map((p) => bold(`${p.name} ${p.ip}`))]];
  for (const a of c.pods) {
    const row = [`${a.name} ${a.ip}`];
    for (const b of c.pods) {
      if (a === b) { row.push(dim('·')); continue; }
      const r = m.find((x) => x.from === a.name && x.to === b.name);
      if (!r) { row.push(dim('same node')); continue; }
      const ms = rtt.get(`${a.name}>${b.name}`);
      if (r.ok) row.push(green(`✔ ${ms === undefined ? '' : `${ms.toFixed(2)} ms`}`));
      else row.push(red(`✘ ${r.seenSource ? `NAT ${r.seenSource}` : 'no reply'}`));
    }
    rows.push(row);
  }
  return table(rows);
}

async function pingMatrix(c: Cluster): Promise<Map<string, number | undefined>> {
  const out = new Map<string, number | undefined>();
  await Promise.all(c.pods.flatMap((a) => c.pods.filter((b) => b.node !== a.node).map(async (b) => {
    const r = await c.ping(a.netns, b.ip, { count: 1, waitSec: 1 });
    out.set(`${a.name}>${b.name}`, r.ok ? r.rttAvgMs : undefined);
  })));
  return out;
}

// ---- one pass -------------------------------------------------------------------------------

interface Snapshot { leases: StoredLease[]; matrix: PairResult[]; rtt: Map<string, number | undefined>; ready: boolean[] }

async function snapshot(c: Cluster): Promise<Snapshot> {
  const [leases, matrix, rtt, ready] = await Promise.all([
    c.store.leases().catch(() => []), connectivityMatrix(c), pingMatrix(c),
    Promise.all(c.nodes.map(async (n) => (n.agent.running ? (await c.readyz(n.index)) === 200 : false))),
  ]);
  return { leases, matrix, rtt, ready };
}

function render(c: Cluster, s: Snapshot, args: DemoArgs): string {
  const ok = s.matrix.filter((p) => p.ok).length;
  const summary = ok === s.matrix.length ? green(`all ${ok} pod pairs connect, no NAT`) : red(`${s.matrix.length - ok} of ${s.matrix.length} pod pairs fail`);
  return [
    bold(`twill demo — ${c.nodes.length} nodes, ${args.mode} store at ${c.store.endpoint}, ${args.pods} pods, ip-masq ${args.ipMasq ? 'on' : 'off'}`),
    '',
    bold('Leases'),
    leasesTable(c, s.leases),
    '',
    bold('Pod → pod (TCP: the receiver must see the sender\'s pod address; latency: ICMP round trip)'),
    matrixTable(c, s.matrix, s.rtt),
    '',
    `  ${summary}`,
  ].join('\n');
}

function events(c: Cluster, prev: Snapshot | undefined, cur: Snapshot): string[] {
  if (!prev) return [];
  const out: string[] = [];
  const t = new Date().toLocaleTimeString();
  for (const l of prev.leases) if (!cur.leases.some((x) => x.subnet === l.subnet)) out.push(`${t} lease ${l.subnet} (${l.publicIP}) removed`);
  for (const l of cur.leases) if (!prev.leases.some((x) => x.subnet === l.subnet)) out.push(`${t} lease ${l.subnet} (${l.publicIP}) added`);
  for (const n of c.nodes) {
    if (prev.ready[n.index] && !cur.ready[n.index]) out.push(`${t} ${n.name} agent ${n.agent.running ? 'not ready' : 'stopped'}`);
    if (!prev.ready[n.index] && cur.ready[n.index]) out.push(`${t} ${n.name} agent ready`);
  }
  for (const p of cur.matrix) {
    const before = prev.matrix.find((x) => x.from === p.from && x.to === p.to);
    if (before && before.ok !== p.ok) out.push(`${t} ${p.from} → ${p.to} ${p.ok ? 'connects again' : 'broke'}`);
  }
  return out;
}

function hints(c: Cluster): string {
  const n1 = c.node(1);
  return dim([
    'Try, in another terminal:',
    `  kill -9 ${n1.agent.pid ?? '<pid>'}                                   # kill node1's agent: traffic keeps flowing`,
    `  ip -n ${n1.netns} link del ${c.device}            # delete node1's VXLAN device: repaired within a second`,
    `  ip netns exec ${n1.netns} node bin/twilld.js status   # node1's view`,
    'Ctrl-C stops the demo and removes every namespace and process it created.',
  ].join('\n'));
}

async function runInteractive(c: Cluster, args: DemoArgs): Promise<void> {
  const log: string[] = [];
  let prev: Snapshot | undefined;
  let stopping = false;
  process.on('SIGINT', () => { stopping = true; });
  while (!stopping) {
    const s = await snapshot(c);
    log.push(...events(c, prev, s));
    prev = s;
    if (stopping) break;
    const ev = log.length ? ['', bold('Events'), ...log.slice(-8).map((e) => `  ${e}`)] : [];
    process.stdout.write((tty ? '\x1b[2J\x1b[H' : '\n') + render(c, s, args) + '\n' + ev.join('\n') + '\n\n' + hints(c) + '\n');
    for (let waited = 0; waited < args.intervalSec * 1000 && !stopping; waited += 100) await new Promise((r) => setTimeout(r, 100));
  }
}

async function runCheck(c: Cluster, args: DemoArgs): Promise<number> {
  const s = await snapshot(c);
  process.stdout.write(render(c, s, args) + '\n\n');
  const problems = [
    ...await checkSubnets(c, '10.244.0.0/16', 24),
    ...await checkPeerEntries(c),
    ...s.matrix.filter((p) => !p.ok).map((p) => `${p.from} → ${p.to}: ${p.error ?? 'failed'}`),
  ];
  if (s.matrix.length === 0) problems.push('no pod pairs to test');
  if (problems.length) {
    process.stdout.write(red('check FAILED:\n') + problems.map((p) => `  - ${p}`).join('\n') + '\n');
    return 1;
  }
  process.stdout.write(green('check passed: distinct leases, exact kernel entries on every node, every pod pair connects without NAT') + '\n');
  return 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (!isRoot) throw new Error('the demo creates network namespaces: run it as root');
  process.stdout.write(`starting ${args.nodes} nodes (${args.mode} store, ${args.pods} pods)…\n`);
  const t0 = Date.now();
  const c = await startCluster({ nodes: args.nodes, mode: args.mode, pods: args.pods, ipMasq: args.ipMasq, logLevel: 'info' });
  process.stdout.write(`cluster ready in ${((Date.now() - t0) / 1000).toFixed(1)} s; logs in ${c.logDir}\n`);
  try {
    if (args.check) return await runCheck(c, args);
    await runInteractive(c, args);
    return 0;
  } finally {
    process.stdout.write('\ncleaning up…\n');
    await c.destroy();
    process.stdout.write('done: every namespace, link and process the demo created is gone.\n');
  }
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
