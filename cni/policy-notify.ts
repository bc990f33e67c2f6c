// ADD's report of the new pod to the agent (lib/policy/report.ts), so that NetworkPolicy rules
// know the pod before its containers start: sent as soon as the addresses are allocated, awaited
// just before ADD returns, so the agent's work overlaps the veth set-up. Never fails an ADD: no
// agent socket (etcd mode, policy off, agent not running) means nothing to wait for, and a slow
// agent costs at most `timeoutMs` (the pod then stays closed by the agent's guard until the
// agent catches up, never open).
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { POLICY_SOCKET, type PodReport, type PodReportReply } from '../lib/policy/report.js';

export const REPORT_TIMEOUT_MS = 2_500;

/** K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS (`K=V;K=V`), when the runtime sent them. */
export function podOf(cniArgs: string): { namespace: string; name: string } | undefined {
  const kv = new Map(cniArgs.split(';').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
  const namespace = kv.get('K8S_POD_NAMESPACE');
  const name = kv.get('K8S_POD_NAME');
  return namespace && name ? { namespace, name } : undefined;
}

export function policySocketOf(subnetFile: string): string {
  return join(dirname(subnetFile), POLICY_SOCKET);
}

/** Resolves with the agent's reply, or a reason it was not heard (never rejects). */
export function reportNewPod(socketPath: string, report: PodReport, timeoutMs = REPORT_TIMEOUT_MS): Promise<PodReportReply & { skipped?: string }> {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const finish = (r: PodReportReply & { skipped?: string }) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const sock = connect(socketPath);
    const timer = setTimeout(() => finish({ ok: false, error: `no answer from the agent in ${timeoutMs} ms` }), timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify(report)}\n`));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try { finish(JSON.parse(buf.slice(0, nl)) as PodReportReply); } catch { finish({ ok: false, error: 'unreadable answer' }); }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, skipped: err.code ?? err.message }));
    sock.on('close', () => finish({ ok: false, error: 'agent closed the connection' }));
  });
}
