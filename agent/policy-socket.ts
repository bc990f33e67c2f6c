// The CNI plugin's line to the agent: on ADD it reports a new pod's addresses and waits until
// the agent has them in the policy rules, which closes the new-pod window (agent/policy.ts).
// The format is lib/policy/report.ts's; one JSON line each way per connection:
//   plugin → agent  {"namespace":"ns","name":"pod","ips":["10.244.1.7"]}
//   agent → plugin  {"ok":true,"ms":3.1}  (ok false: the pod did not appear in the watch in time)
// The plugin bounds its wait itself and never fails an ADD over this (cni/policy-notify.ts).
import { chmodSync, rmSync } from 'node:fs';
import net from 'node:net';
import type { Logger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import { parsePodReport, type PodReport } from '../lib/policy/report.js';

export interface PodReportSink {
  podStarted(namespace: string, name: string, ips: string[], timeoutMs: number): Promise<boolean>;
}

const MAX_LINE = 4096;

export async function servePodReports(path: string, sink: PodReportSink, timeoutMs: number, log: Logger): Promise<net.Server> {
  rmSync(path, { force: true });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(timeoutMs + 1_000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) { sock.destroy(); return; }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const t0 = performance.now();
      let report: PodReport;
      try { report = parsePodReport(buf.slice(0, nl)); } catch (err) {
        sock.end(`${JSON.stringify({ ok: false, error: errorMessage(err) })}\n`);
        return;
      }
      sock.pause();
      void sink.podStarted(report.namespace, report.name, report.ips, timeoutMs).then((ok) => {
        const ms = Math.round((performance.now() - t0) * 10) / 10;
        if (!ok) log.warn({ pod: `${report.namespace}/${report.name}`, ms }, 'network policy: a new pod reported by the CNI plugin is not in the pod watch yet; it stays closed until it is');
        sock.end(`${JSON.stringify({ ok, ms })}\n`);
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => { server.off('error', reject); resolve(); });
  });
  chmodSync(path, 0o600);
  server.unref();
  return server;
}
