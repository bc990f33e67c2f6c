// Upstream's judgement: e2e.test (built from the pinned release) run by ginkgo against the real
// cluster, from the control-plane netns. The selection is kindnet's network job: every
// [sig-network] test (its [Conformance] ones included) minus kindnet's skip list. Every skip
// beyond that list is named with its reason in docs/conformance.md (and in EXTRA_SKIPS below,
// which that doc mirrors).
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

export interface ConformanceOptions {
  reportDir: string;
  /** ginkgo parallel processes (default 6: the tests mostly wait on pods). */
  procs?: number;
  focus?: string;
  skip?: readonly string[];
  /** Print ginkgo's output as it runs. */
  stream?: boolean;
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
  rmSync(opts.reportDir, { recursive: true, force: true });
  mkdirSync(opts.reportDir, { recursive: true });
  const skip = (opts.skip ?? [...KINDNET_SKIPS, ...EXTRA_SKIPS]).join('|');
  const t0 = Date.now();
  const result = await run('nsenter', [`--net=/run/netns/${c.cpNetns}`, '--',
    join(bin, 'ginkgo'), `--procs=${opts.procs ?? 6}`, '--no-color', '--timeout=2h', join(bin, 'e2e.test'), '--',
    `--kubeconfig=${c.kubeconfig}`, '--provider=skeleton', `--num-nodes=${c.options.workers}`,
    `--kubectl-path=${join(bin, 'kubectl')}`, `--report-dir=${opts.reportDir}`, '--disable-log-dump=true',
    `--ginkgo.focus=${opts.focus ?? FOCUS}`, `--ginkgo.skip=${skip}`,
  ], { allowFail: true, timeoutMs: 2 * 3600_000, env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } });
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
