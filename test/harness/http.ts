// HTTP GET from inside a netns (the agent's /healthz, /readyz, /status listen in the node netns).
// busybox wget starts in a few milliseconds, against ~100 ms for a node client. Debian's busybox
// wget has no -T (it crashes on it), so the deadline is the harness's kill timer.
import { nsRun } from './exec.js';

export interface HttpResult { status: number; body: string }

/** status 0 = no connection (agent down or not listening yet). */
export async function httpGet(netns: string, url: string, timeoutSec = 2): Promise<HttpResult> {
  const r = await nsRun(netns, 'busybox', ['wget', '-q', '-S', '-O-', url], { allowFail: true, timeoutMs: timeoutSec * 1000 });
  const codes = [...r.stderr.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => Number(m[1]));
  return { status: codes.at(-1) ?? 0, body: r.stdout };
}
