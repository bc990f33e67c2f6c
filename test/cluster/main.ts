// `npm run cluster` and `npm run conformance`.
//
//   node dist/test/cluster/main.js cluster [--check] [--workers N]
//       A real cluster with twill for a person to use: prints the KUBECONFIG, the nodes, the pods
//       and a connectivity matrix, then runs until Ctrl-C and removes everything. --check exits
//       0 only if every node is Ready with twill up and every pod reaches every other pod.
//   node dist/test/cluster/main.js conformance [--procs N] [--focus RE]
//       The upstream sig-network conformance selection alone; prints the summary table; exit 0
//       only if every selected test passed. JUnit in .tmp/conformance/.
//   node dist/test/cluster/main.js conformance --netpol [--ci] [--procs N] [--focus RE]
//       Upstream's NetworkPolicy suite (Netpol) minus NETPOL_SKIPS, or with --ci the subset CI
//       runs (NETPOL_CI_SUBSET); the same summary and exit status. JUnit in .tmp/conformance/netpol/.
import { join } from 'node:path';
import { REPO_ROOT } from '../harness/paths.js';
import { KubeCluster } from './cluster.js';
import { formatSummary, netpolSelection, runConformance } from './conformance.js';
import { clusterSkipReason, prepare } from './prepare.js';
import { connectivityMatrix, deployProbe, formatMatrix } from './probe.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<number> {
  const [cmd = 'cluster', ...args] = process.argv.slice(2);
  if (cmd !== 'cluster' && cmd !== 'conformance') { console.error(`usage: main.js cluster [--check] [--workers N] | conformance [--netpol [--ci]] [--procs N] [--focus RE]`); return 2; }
  const skip = clusterSkipReason();
  if (skip) { console.error(`${cmd}: cannot run here: ${skip}`); return 2; }
  const prepared = prepare();
  const cluster = new KubeCluster({
    workers: Number(flag(args, '--workers') ?? 2), bin: prepared.bin, images: prepared.images,
    log: (l) => console.error(`cluster: ${l}`),
  });
  try {
    await cluster.start();
    if (cmd === 'conformance') {
      const netpol = args.includes('--netpol');
      const reportDir = join(REPO_ROOT, '.tmp', 'conformance', ...(netpol ? ['netpol'] : []));
      const selection = netpol ? netpolSelection(args.includes('--ci') ? 'ci' : 'all') : {};
      const focus = flag(args, '--focus');
      const procs = flag(args, '--procs');
      const logFile = join(cluster.logDir, netpol ? 'netpol.log' : 'conformance.log');
      console.error(`cluster: ginkgo's output goes to ${logFile} as it runs`);
      const { summary, result } = await runConformance(cluster, prepared.bin, {
        reportDir, ...selection, ...(procs ? { procs: Number(procs) } : {}), ...(focus ? { focus } : {}), logFile,
      });
      process.stdout.write(result.stdout.split('\n').filter((l) => !/^[S•]+$/.test(l)).slice(-60).join('\n') + '\n');
      console.log(formatSummary(summary));
      console.log(`JUnit: ${summary.junit.join(' ')}`);
      return summary.failed === 0 && summary.passed > 0 && result.code === 0 ? 0 : 1;
    }
    console.log(`KUBECONFIG=${cluster.kubeconfig}  (the API server is in netns ${cluster.cpNetns}; ${cluster.kubectlWrapper} runs kubectl there)`);
    console.log((await cluster.kubectl(['get', 'nodes', '-o', 'wide'])).stdout);
    const pods = await deployProbe(cluster);
    console.log((await cluster.kubectl(['get', 'pods', '-A', '-o', 'wide'])).stdout);
    const cells = await connectivityMatrix(cluster, pods);
    console.log(formatMatrix(cells));
    const ok = cells.every((x) => x.ok);
    console.log(ok ? `all ${cells.length} pairs connect, each receiver saw the sender's own address` : 'SOME PAIRS FAILED');
    if (args.includes('--check')) return ok ? 0 : 1;
    console.log('running; Ctrl-C removes the cluster');
    await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve); });
    return 0;
  } finally {
    console.error('cluster: removing everything');
    await cluster.destroy();
  }
}

main().then((code) => { process.exitCode = code; }, (err: Error) => { console.error(err.stack ?? err.message); process.exitCode = 1; });
