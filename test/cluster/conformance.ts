// Upstream's judgement: e2e.test (built from the pinned release) run by ginkgo against the real
// cluster, from the control-plane netns. The selection is kindnet's network job: every
// [sig-network] test (its [Conformance] ones included) minus kindnet's skip list. Every skip
// beyond that list is named with its reason in docs/conformance.md (and in EXTRA_SKIPS below,
// which that doc mirrors).
//
// The NetworkPolicy suite (`Netpol`, kindnet's job skips it) is a second selection: NETPOL_FOCUS
// minus NETPOL_SKIPS (each with its reason, mirrored in docs/conformance.md), JUnit beside the
// sig-network results in .tmp/conformance/netpol/. CI runs NETPOL_CI_SUBSET of it.
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { run, type ExecResult } from '../harness/exec.js';
import type { KubeCluster } from './cluster.js';

export const FOCUS = String.raw`\[sig-network\]`;
/** kindnet's skip list for its conformance job. */
export const KINDNET_SKIPS = ['Feature', 'Federation', 'machinery', 'PerformanceDNS', 'DualStack', 'Disruptive', 'Serial',
  'Slow', 'KubeProxy', 'LoadBalancer', 'GCE', 'Netpol', 'NetworkPolicy'];
/** Our additions, each with its reason in docs/conformance.md. */
export const EXTRA_SKIPS: readonly string[] = [];

/** Upstream's NetworkPolicy suite: every spec under `Netpol` or labelled [Feature:NetworkPolicy]. */
export const NETPOL_FOCUS = String.raw`\[sig-network\] Netpol |\[Feature:NetworkPolicy\]`;

export interface NamedSkip { pattern: string; reason: string }
/** What this cluster cannot do in the Netpol suite, each with its reason (docs/conformance.md's table). */
export const NETPOL_SKIPS: readonly NamedSkip[] = [
  {
    pattern: String.raw`\[Feature:SCTPConnectivity\]`,
    reason: 'the kernel has no SCTP: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails with EPROTONOSUPPORT, so agnhost cannot serve or connect over SCTP (the two TCP specs about SCTP policies still run)',
  },
];

const TCP = '[sig-network] Netpol NetworkPolicy between server and client';
const UDP = '[sig-network] Netpol [LinuxOnly] NetworkPolicy between server and client using UDP';
const F = ' [Feature:NetworkPolicy]';
/**
 * The subset of the Netpol suite CI runs (`npm test`), by full spec name: what each covers is in
 * docs/conformance.md. `npm run conformance -- --netpol` runs the whole suite.
 */
export const NETPOL_CI_SUBSET: readonly string[] = [
  `${TCP} should support a 'default-deny-ingress' policy${F}`,
  `${TCP} should support a 'default-deny-all' policy${F}`,
  `${TCP} should enforce policy to allow traffic from pods within server namespace based on PodSelector${F}`,
  `${TCP} should enforce policy based on PodSelector and NamespaceSelector${F}`,
  `${TCP} should enforce policy based on NamespaceSelector with MatchExpressions${F}`,
  `${TCP} should deny egress from pods based on PodSelector${F}`,
  `${TCP} should enforce egress policy allowing traffic to a server in a different namespace based on PodSelector and NamespaceSelector${F}`,
  `${TCP} should support denying of egress traffic on the client side (even if the server explicitly allows this traffic)${F}`,
  `${TCP} should enforce except clause while egress access to server in CIDR block${F}`,
  `${TCP} should ensure an IP overlapping both IPBlock.CIDR and IPBlock.Except is allowed${F}`,
  `${TCP} should allow ingress access from namespace on one named port${F}`,
  `${TCP} should allow egress access on one named port${F}`,
  `${TCP} should enforce policy based on Ports${F}`,
  `${TCP} should enforce multiple, stacked policies with overlapping podSelectors${F}`,
  `${TCP} should enforce multiple egress policies with egress allow-all policy taking precedence${F}`,
  `${TCP} should enforce updated policy${F}`,
  `${TCP} should allow ingress access from updated pod${F}`,
  `${TCP} should stop enforcing policies after they are deleted${F}`,
  `${TCP} should not mistakenly treat 'protocol: SCTP' as 'protocol: TCP', even if the plugin doesn't support SCTP${F}`,
  `${UDP} should enforce policy based on Ports${F}`,
  '[sig-network] Netpol API should support creating NetworkPolicy API with endport field',
];

/** ginkgo processes for the Netpol suite. */
export const NETPOL_PROCS = 6;

/** A spec name as an exact ginkgo focus (regexp-escaped). */
export function exactFocus(names: readonly string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
}

/** focus/skip/procs for the whole Netpol suite or for CI's subset of it. */
export function netpolSelection(which: 'all' | 'ci'): Pick<ConformanceOptions, 'focus' | 'skip' | 'procs'> {
  const skip = NETPOL_SKIPS.map((s) => s.pattern);
  if (which === 'all') return { focus: NETPOL_FOCUS, skip, procs: NETPOL_PROCS };
  return { focus: exactFocus(NETPOL_CI_SUBSET), skip, procs: NETPOL_PROCS };
}

export interface ConformanceOptions {
  reportDir: string;
  /** ginkgo parallel processes (default 6: the tests mostly wait on pods). */
  procs?: number;
  focus?: string;
  skip?: readonly string[];
  /** Also write ginkgo's output (stdout and stderr) to this file as it runs, to follow a long run. */
  logFile?: string;
}

export interface ConformanceSummary {
  /** Specs the focus/skip selected (passed + failed + skipped by the test itself). */
  selected: number;
  passed: number;
  failed: number;
  /** Selected specs that skipped themselves at run time (e2eskipper), with their reasons. */
  skipped: number;
  /** Specs the focus and skip expressions left out. */
  notSelected: number;
  seconds: number;
  failures: string[];
  skips: string[];
  junit: string[];
}

export async function runConformance(c: KubeCluster, bin: string, opts: ConformanceOptions): Promise<{ summary: ConformanceSummary; result: ExecResult }> {
  // Only this run's files: the Netpol results live in a subdirectory of the sig-network ones.
  mkdirSync(opts.reportDir, { recursive: true });
  for (const f of readdirSync(opts.reportDir, { withFileTypes: true })) if (f.isFile()) rmSync(join(opts.reportDir, f.name), { force: true });
  const skip = (opts.skip ?? [...KINDNET_SKIPS, ...EXTRA_SKIPS]).join('|');
  const t0 = Date.now();
  const ginkgo = ['nsenter', `--net=/run/netns/${c.cpNetns}`, '--',
    join(bin, 'ginkgo'), `--procs=${opts.procs ?? 6}`, '--no-color', '--timeout=2h', join(bin, 'e2e.test'), '--',
    `--kubeconfig=${c.kubeconfig}`, '--provider=skeleton', `--num-nodes=${c.options.workers}`,
    `--kubectl-path=${join(bin, 'kubectl')}`, `--report-dir=${opts.reportDir}`, '--disable-log-dump=true',
    `--ginkgo.focus=${opts.focus ?? FOCUS}`, `--ginkgo.skip=${skip}`,
  ];
  const [cmd, ...args] = opts.logFile
    ? ['bash', '-c', 'log=$1; shift; exec > >(tee "$log") 2>&1; exec "$@"', 'ginkgo-tee', opts.logFile, ...ginkgo]
    : ginkgo;
  const result = await run(cmd!, args, { allowFail: true, timeoutMs: 2 * 3600_000, env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } });
  const seconds = (Date.now() - t0) / 1000;
  return { summary: summarizeJunit(opts.reportDir, seconds), result };
}

/** Counts testcases in the JUnit files e2e.test wrote (ignoring ginkgo's suite-level nodes). */
export function summarizeJunit(dir: string, seconds: number): ConformanceSummary {
  const junit = readdirSync(dir).filter((f) => /^junit.*\.xml$/.test(f)).map((f) => join(dir, f));
  const s: ConformanceSummary = { selected: 0, passed: 0, failed: 0, skipped: 0, notSelected: 0, seconds, failures: [], skips: [], junit };
  for (const f of junit) {
    const xml = readFileSync(f, 'utf8');
    for (const m of xml.matchAll(/<testcase\s+name="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
      const name = decode(m[1] ?? '');
      if (/^\[(SynchronizedBeforeSuite|SynchronizedAfterSuite|BeforeSuite|AfterSuite|ReportAfterSuite|ReportBeforeSuite|DeferCleanup)/.test(name)) continue;
      const body = m[3] ?? '';
      // ginkgo marks a spec its filters left out with the bare message "skipped".
      if (/<skipped message="skipped"/.test(body)) { s.notSelected++; continue; }
      s.selected++;
      const skip = /<skipped message="([^"]*)"/.exec(body);
      if (skip) { s.skipped++; s.skips.push(`${name}: ${decode(skip[1] ?? '')}`); }
      else if (/<(failure|error)/.test(body)) { s.failed++; s.failures.push(name); }
      else s.passed++;
    }
  }
  return s;
}

function decode(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export function formatSummary(s: ConformanceSummary): string {
  const lines = [
    '| selected | passed | failed | skipped at run time | not selected | wall time |', '|---|---|---|---|---|---|',
    `| ${s.selected} | ${s.passed} | ${s.failed} | ${s.skipped} | ${s.notSelected} | ${Math.floor(s.seconds / 60)} min ${Math.round(s.seconds % 60)} s |`,
  ];
  for (const f of s.failures) lines.push(`FAILED: ${f}`);
  for (const k of s.skips) lines.push(`SKIPPED: ${k}`);
  return lines.join('\n');
}
