// The NetworkPolicy peer, kube-network-policies (bench/peers/versions.env: KNP_VERSION), run the
// way its DaemonSet (install.yaml of the release) runs it: hostNetwork (here: in the benchmark's
// node netns), privileged, its own ServiceAccount with the release's ClusterRole, and the args
// `--hostname-override=$(MY_NODE_NAME) --v=2 --nfqueue-id=98`.
//
// The binary reads only the in-cluster configuration (rest.InClusterConfig: the env
// KUBERNETES_SERVICE_HOST/PORT and the files /var/run/secrets/kubernetes.io/serviceaccount/{token,
// ca.crt}), so it is started in a private mount namespace whose /run (/var/run links there) is a
// fresh tmpfs holding just those two files, as the kubelet would mount them into its pod. Nothing
// of the peer is changed.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** The release's RBAC (install.yaml): list/watch pods, namespaces and networkpolicies. */
export const KNP_RBAC = `apiVersion: v1
kind: ServiceAccount
metadata: { name: kube-network-policies, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: bench-kube-network-policies }
rules:
- { apiGroups: [""], resources: [pods, namespaces], verbs: [list, watch] }
- { apiGroups: [networking.k8s.io], resources: [networkpolicies], verbs: [list, watch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: bench-kube-network-policies }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bench-kube-network-policies }
subjects:
- { kind: ServiceAccount, name: kube-network-policies, namespace: kube-system }
`;

/** The table the peer programs (its Config.NFTableName default). */
export const KNP_TABLE = 'kube-network-policies';

const MOUNT = `set -e
mount -t tmpfs pbknp /run
d=/run/secrets/kubernetes.io/serviceaccount
mkdir -p "$d"
cp "$1" "$d/token"
cp "$2" "$d/ca.crt"
shift 2
exec "$@"`;

export function startPeer(o: {
  bin: string; netns: string; node: string; apiHost: string; apiPort: number; tokenFile: string; caCert: string; logFile: string; extraArgs?: string[];
}): ChildProcess {
  const out = openSync(o.logFile, 'w');
  try {
    return spawn('nsenter', ['--net=/run/netns/' + o.netns, '--', 'unshare', '-m', '--propagation', 'private', 'sh', '-c', MOUNT, 'knp',
      o.tokenFile, o.caCert, o.bin, `--hostname-override=${o.node}`, '--v=2', '--nfqueue-id=98', ...(o.extraArgs ?? [])], {
      stdio: ['ignore', out, out],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', KUBERNETES_SERVICE_HOST: o.apiHost, KUBERNETES_SERVICE_PORT: String(o.apiPort), MY_NODE_NAME: o.node },
    });
  } finally {
    closeSync(out);
  }
}

/** The netfilter tables in a netns (family + name), from `nft -j list tables`. */
export function nftTables(netns: string): string[] {
  const j = JSON.parse(execFileSync('ip', ['netns', 'exec', netns, 'nft', '-j', 'list', 'tables'], { encoding: 'utf8' })) as { nftables: { table?: { family: string; name: string } }[] };
  return j.nftables.flatMap((x) => (x.table ? [`${x.table.family} ${x.table.name}`] : []));
}

/** Lines of the peer's log that report its nftables sync (the outcome of each attempt). */
export function peerSyncLines(logFile: string): string[] {
  let text: string;
  try { text = readFileSync(logFile, 'utf8'); } catch { return []; }
  return text.split('\n').filter((l) => /nftables|nfqueue|syncing/i.test(l));
}

/**
 * Whether this kernel's nftables has the `queue` expression the peer's rules are built on: one
 * `queue num 98` rule in a scratch table of `netns` (removed again). Returns nft's error, or
 * undefined when the rule went in.
 */
export function nftQueueError(netns: string): string | undefined {
  const run = (script: string) => execFileSync('ip', ['netns', 'exec', netns, 'nft', '-f', '-'], { input: script, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    run('add table inet pb-queue-probe\nadd chain inet pb-queue-probe c { type filter hook postrouting priority 0; }\nadd rule inet pb-queue-probe c queue num 98\n');
    return undefined;
  } catch (e) {
    return String((e as { stderr?: string }).stderr ?? e).trim().split('\n')[0]!.replace(/^\/dev\/stdin:\S+ /, '');
  } finally {
    try { run('delete table inet pb-queue-probe\n'); } catch { /* never made */ }
  }
}

/** The netlink errors the peer logged for its first failed nftables transaction (one per refused rule). */
export function firstSyncErrors(logFile: string): string[] {
  let text: string;
  try { text = readFileSync(logFile, 'utf8'); } catch { return []; }
  const m = /"syncing nftables rules" error=<\n([\s\S]*?)\n\s*>/.exec(text);
  return m ? m[1]!.split('\n').map((l) => l.trim()).filter(Boolean) : [];
}
