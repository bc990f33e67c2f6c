// Pod-network checks on the real cluster, shared by `npm run cluster` and the test suite: an
// agnhost netexec DaemonSet (one pod per node, plus a hostNetwork twin) and a connectivity
// matrix where every pod asks every other pod's /clientip — the answer is the address the
// receiver saw, so it must be the sender's own pod IP (no NAT, no proxy).
import type { KubeCluster } from './cluster.js';

export const AGNHOST = 'registry.k8s.io/e2e-test-images/agnhost:2.56';
export const PROBE_NS = 'twill-probe';
export const NETEXEC_PORT = 8080;
/** The hostNetwork twin's port: clear of the ports upstream's e2e tests bind on the host (8080–8083, 9080–9081, 30000+). */
export const HOST_NETEXEC_PORT = 18080;

export interface ProbePod { name: string; node: string; ip: string; hostNetwork: boolean }

function daemonSet(name: string, hostNetwork: boolean, port: number): object {
  return {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name, namespace: PROBE_NS },
    spec: {
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          hostNetwork, tolerations: [{ operator: 'Exists' }], terminationGracePeriodSeconds: 1,
          containers: [{
            name: 'netexec', image: AGNHOST, imagePullPolicy: 'IfNotPresent',
            args: ['netexec', `--http-port=${port}`, `--udp-port=${port}`],
            ports: [{ containerPort: port, name: 'http' }],
            readinessProbe: { httpGet: { path: '/healthz', port } },
          }],
        },
      },
    },
  };
}

/** Deploys the probe DaemonSets (pod network, and hostNetwork on HOST_NETEXEC_PORT) and waits for them. */
export async function deployProbe(c: KubeCluster): Promise<ProbePod[]> {
  const objects = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: PROBE_NS } },
    daemonSet('netexec', false, NETEXEC_PORT),
    daemonSet('netexec-host', true, HOST_NETEXEC_PORT),
  ];
  await applyObjects(c, objects);
  for (const ds of ['netexec', 'netexec-host']) {
    await c.kubectl(['-n', PROBE_NS, 'rollout', 'status', `ds/${ds}`, '--timeout=180s'], false, 200_000);
  }
  return probePods(c);
}

export async function applyObjects(c: KubeCluster, items: readonly object[]): Promise<void> {
  await c.kubectl(['apply', '-f', '-'], false, 60_000, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}

/** A Service in front of the pod-network netexec pods (port 80 → NETEXEC_PORT). */
export function probeService(name: string, type: 'ClusterIP' | 'NodePort'): object {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: PROBE_NS },
    spec: { type, selector: { app: 'netexec' }, ports: [{ port: 80, targetPort: NETEXEC_PORT, protocol: 'TCP' }] },
  };
}

export async function probePods(c: KubeCluster): Promise<ProbePod[]> {
  const list = await c.kubectlJson<{ items: { metadata: { name: string }; spec: { nodeName: string; hostNetwork?: boolean }; status: { podIP: string } }[] }>(
    ['-n', PROBE_NS, 'get', 'pods']);
  return list.items.map((p) => ({ name: p.metadata.name, node: p.spec.nodeName, ip: p.status.podIP, hostNetwork: p.spec.hostNetwork === true }))
    .sort((a, b) => Number(a.hostNetwork) - Number(b.hostNetwork) || a.node.localeCompare(b.node));
}

export interface MatrixCell { from: ProbePod; to: ProbePod; ok: boolean; seen: string }

/** HTTP GET http://<to>:<port>/clientip from inside `from`; ok when the receiver saw `from.ip`. */
export async function clientIp(c: KubeCluster, from: ProbePod, toIp: string, port: number): Promise<string> {
  const r = await c.kubectl(['-n', PROBE_NS, 'exec', from.name, '--', 'curl', '-s', '--max-time', '5', `http://${toIp}:${port}/clientip`], true, 30_000);
  return r.code === 0 ? r.stdout.trim() : `error: ${(r.stderr || r.stdout).trim().split('\n').pop() ?? ''}`;
}

export async function connectivityMatrix(c: KubeCluster, pods: readonly ProbePod[]): Promise<MatrixCell[]> {
  const podNet = pods.filter((p) => !p.hostNetwork);
  const cells: MatrixCell[] = [];
  for (const from of pods) {
    for (const to of podNet) {
      if (from === to) continue;
      const seen = await clientIp(c, from, to.ip, NETEXEC_PORT);
      // A hostNetwork sender's packets leave with its node's address on the overlay device or
      // its underlay address, depending on the route; the receiver must see one of the node's.
      cells.push({ from, to, seen, ok: seen.split(':')[0] === from.ip || (from.hostNetwork && !seen.startsWith('error')) });
    }
  }
  return cells;
}

export function formatMatrix(cells: readonly MatrixCell[]): string {
  const rows = [...new Set(cells.map((x) => x.from))];
  const cols = [...new Set(cells.map((x) => x.to))];
  const label = (p: ProbePod): string => `${p.node}${p.hostNetwork ? '(host)' : ''} ${p.ip}`;
  const w = Math.max(...rows.map((r) => label(r).length), 10);
  const lines = [`${'from \\ to'.padEnd(w)}  ${cols.map((x) => label(x).padEnd(24)).join('')}`];
  for (const r of rows) {
    lines.push(`${label(r).padEnd(w)}  ${cols.map((col) => {
      if (col === r) return '-'.padEnd(24);
      const cell = cells.find((x) => x.from === r && x.to === col);
      return (cell?.ok ? `ok (saw ${cell.seen.split(':')[0]})` : `FAIL ${cell?.seen ?? ''}`).slice(0, 23).padEnd(24);
    }).join('')}`);
  }
  return lines.join('\n');
}
