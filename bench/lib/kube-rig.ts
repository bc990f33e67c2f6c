// What the kube-mode benchmark (bench/kube.ts) runs on: a switch netns holding the real
// kube-apiserver + etcd (test/harness/store-kube-real.ts, no kubelets, no controllers), one private
// netns per agent run wired to the switch's bridge, an admin HTTPS client for creating and
// patching Nodes in bulk, flanneld's own ServiceAccount with a kubeconfig, the apiserver's request
// counter, and a netlink listener that counts each agent's kernel entries in its own netns.
//
// No traffic leaves the sandbox: the switch's bridge has only the agents' veths on it, and the
// synthetic peers' public IPs (172.16.0.0/12) are addresses nothing answers on.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { openHandle } from '../../lib/netlink/handle.js';
import type { NetlinkHandle } from '../../lib/netlink/types.js';

export const SW_IP = '10.251.0.1';
export const FLANNEL_PREFIX = 'flannel.alpha.coreos.com';
export const TWILL_PREFIX = 'twill.io';

const ip = (...a: string[]) => execFileSync('ip', a, { stdio: ['ignore', 'ignore', 'inherit'] });

/** The switch netns: lo and a bridge `br0` with SW_IP/24, where kube-apiserver listens. */
export function makeSwitch(ns: string): void {
  ip('netns', 'add', ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', ns, 'link', 'add', 'br0', 'type', 'bridge');
  ip('-n', ns, 'addr', 'add', `${SW_IP}/24`, 'dev', 'br0');
  ip('-n', ns, 'link', 'set', 'br0', 'up');
}

/** A fresh agent netns with `uplink` (addr/24) on the switch's bridge; an old one of that name is removed first. */
export function makeAgentNetns(sw: string, ns: string, port: string, addr: string): void {
  delAgentNetns(sw, ns, port);
  ip('netns', 'add', ns);
  ip('-n', ns, 'link', 'set', 'lo', 'up');
  ip('-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'uplink', 'netns', ns);
  ip('-n', sw, 'link', 'set', port, 'master', 'br0', 'up');
  ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'uplink');
  ip('-n', ns, 'link', 'set', 'uplink', 'up');
}

/**
 * Removes an agent netns and its veth. The switch's end is deleted explicitly: a deleted netns's
 * devices go only when the kernel frees the namespace, which can trail `ip netns del`.
 */
export function delAgentNetns(sw: string, ns: string, port: string): void {
  try { execFileSync('ip', ['-n', sw, 'link', 'del', port], { stdio: 'ignore' }); } catch { /* gone */ }
  delNetns(ns);
}

/**
 * The benchmark's outer half: makes the switch netns `<tag>-sw`, runs this same script again
 * inside it (with --tag and --inside), and removes the switch and the named `<tag>-<name>`
 * netns afterwards, whatever happened.
 */
export function runInsideSwitch(bench: string, tag: string, args: readonly string[], netns: readonly string[]): void {
  if (process.getuid?.() !== 0) { console.log(`${bench}: needs root (network namespaces); skipped`); return; }
  const sw = `${tag}-sw`;
  try {
    makeSwitch(sw);
    execFileSync('ip', ['netns', 'exec', sw, process.execPath, process.argv[1]!, ...args, ...(args.includes('--tag') ? [] : ['--tag', tag]), '--inside'], { stdio: 'inherit' });
  } finally {
    for (const n of netns) delNetns(`${tag}-${n}`);
    delNetns(sw);
  }
}

export function delNetns(ns: string): void {
  try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }); } catch { /* gone */ }
}

// ---- the API as cluster admin (client certificate from the admin kubeconfig) ----------------

export interface ApiResponse { status: number; body: string }

export class AdminApi {
  private readonly agent: https.Agent;
  private readonly server: URL;

  constructor(kubeconfigPath: string) {
    const kc = readFileSync(kubeconfigPath, 'utf8');
    const field = (k: string) => {
      const m = new RegExp(`^\\s*${k}:\\s*(\\S+)\\s*$`, 'm').exec(kc);
      if (!m) throw new Error(`${kubeconfigPath}: no ${k}`);
      return m[1]!;
    };
    this.server = new URL(field('server'));
    this.agent = new https.Agent({
      ca: readFileSync(field('certificate-authority')), cert: readFileSync(field('client-certificate')), key: readFileSync(field('client-key')),
      keepAlive: true, maxSockets: 16,
    });
  }

  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse> {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = https.request({
        host: this.server.hostname, port: this.server.port, path, method, agent: this.agent,
        headers: data === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(data) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { text += c; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(data);
    });
  }

  async must(method: string, path: string, body?: unknown, contentType?: string): Promise<string> {
    const r = await this.request(method, path, body, contentType);
    if (r.status < 200 || r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body.slice(0, 300)}`);
    return r.body;
  }

  createNode(node: object): Promise<string> { return this.must('POST', '/api/v1/nodes', node); }

  async deleteNode(name: string): Promise<void> {
    const r = await this.request('DELETE', `/api/v1/nodes/${name}`);
    if (r.status !== 200 && r.status !== 404) throw new Error(`DELETE node ${name}: ${r.status} ${r.body.slice(0, 300)}`);
  }

  patchNode(name: string, patch: object): Promise<string> {
    return this.must('PATCH', `/api/v1/nodes/${name}`, patch, 'application/merge-patch+json');
  }

  /** Runs `fn` over `items` with `width` requests in flight. */
  static async pool<T>(items: readonly T[], width: number, fn: (x: T) => Promise<unknown>): Promise<void> {
    let next = 0;
    await Promise.all(Array.from({ length: width }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }));
  }

  close(): void { this.agent.destroy(); }
}

/**
 * Requests the agents made: API Priority and Fairness counts every request it dispatches (watches
 * included, at their start), per FlowSchema. Both agents authenticate as ServiceAccounts in
 * kube-system, which the built-in FlowSchema `kube-system-service-accounts` matches; the bench's
 * own requests are the admin's (system:masters → `exempt`), so they are not in this count.
 */
export async function agentRequests(api: AdminApi): Promise<number> {
  const text = await api.must('GET', '/metrics');
  let sum = 0;
  let seen = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_flowcontrol_dispatched_requests_total{') || !line.includes('flow_schema="kube-system-service-accounts"')) continue;
    seen = true;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  if (!seen && !text.includes('apiserver_flowcontrol_dispatched_requests_total')) throw new Error('kube-apiserver /metrics has no apiserver_flowcontrol_dispatched_requests_total');
  return sum;
}

// ---- flanneld's identity, as kube-flannel.yml sets it up (own ServiceAccount and ClusterRole) ----

/** YAML for flanneld's least privilege: read Nodes, patch nodes/status, read Pods (its POD_NAME lookup). */
export const FLANNEL_RBAC = `apiVersion: v1
kind: ServiceAccount
metadata: { name: flannel, namespace: kube-system }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: bench-flannel }
rules:
- { apiGroups: [""], resources: [pods], verbs: [get] }
- { apiGroups: [""], resources: [nodes], verbs: [get, list, watch] }
- { apiGroups: [""], resources: [nodes/status], verbs: [patch] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: bench-flannel }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: bench-flannel }
subjects:
- { kind: ServiceAccount, name: flannel, namespace: kube-system }
`;

export function writeTokenKubeconfig(path: string, server: string, caCert: string, token: string): void {
  writeFileSync(path, [
    'apiVersion: v1', 'kind: Config',
    'clusters:', '- name: bench', '  cluster:', `    server: ${server}`, `    certificate-authority: ${caCert}`,
    'users:', '- name: bench', '  user:', `    token: ${token}`,
    'contexts:', '- name: bench', '  context:', '    cluster: bench', '    user: bench',
    'current-context: bench', '',
  ].join('\n'), { mode: 0o600 });
}

// ---- synthetic Nodes -------------------------------------------------------------------------

export interface Peer { name: string; subnet: string; vtepIP: string; publicIP: string; mac: string }

/** Peer i: 10.(k>>8).(k&255).0/24 (k = i+1), public IP in 172.16.0.0/12, a locally administered MAC. */
export function peer(i: number): Peer {
  const k = i + 1;
  const hex = (x: number) => (x & 255).toString(16).padStart(2, '0');
  const subnet = `10.${k >> 8}.${k & 255}.0/24`;
  return {
    name: `bench-peer-${i}`, subnet, vtepIP: subnet.replace('/24', ''),
    publicIP: `172.${16 + (k >> 16)}.${(k >> 8) & 255}.${k & 255}`, mac: `0a:42:${hex(k >> 16)}:${hex(k >> 8)}:${hex(k)}:01`,
  };
}

/** Both agents' annotations for one VXLAN endpoint (each reads only its own prefix). */
export function endpointAnnotations(publicIP: string, mac: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of [TWILL_PREFIX, FLANNEL_PREFIX]) {
    out[`${p}/kube-subnet-manager`] = 'true';
    out[`${p}/backend-type`] = 'vxlan';
    out[`${p}/public-ip`] = publicIP;
    out[`${p}/backend-data`] = JSON.stringify({ VNI: 1, VtepMAC: mac });
  }
  return out;
}

/**
 * A Node as a kubelet registers it (its labels and annotations, InternalIP, Hostname) with its
 * podCIDR assigned, plus `annotations` as its network agent left them. (flanneld v0.28.11 panics
 * on a Node without any annotation; a kubelet always sets these two.)
 */
export function nodeObject(name: string, podCIDR: string, internalIP: string, annotations: Record<string, string> = {}): object {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true', ...annotations },
      labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', 'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': 'amd64' },
    },
    spec: { podCIDR, podCIDRs: [podCIDR] },
    status: { addresses: [{ type: 'InternalIP', address: internalIP }, { type: 'Hostname', address: name }] },
  };
}

// ---- counting an agent's kernel entries ----------------------------------------------------

/**
 * Listens to route and neighbour notifications in one netns and tracks, for the expected peers,
 * which have their route (dst = peer subnet), their ARP entry (the peer's VTEP address) and
 * their FDB entry (the peer's VTEP MAC → its public IP). Every VXLAN overlay of flannel's design
 * writes these three per peer (twill's nexthop objects are extra and not counted). On a
 * notification overflow it re-reads the tables once.
 */
export class KernelCounter {
  readonly h: NetlinkHandle;
  private readonly ctl = new AbortController();
  private readonly subnets = new Set<string>();
  private readonly vtepIPs = new Set<string>();
  private readonly macs = new Set<string>();
  readonly routes = new Set<string>();
  readonly arp = new Set<string>();
  /** FDB: MAC → remote (NDA_DST). */
  readonly fdb = new Map<string, string>();
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  private loop: Promise<void>;
  overflows = 0;

  constructor(netnsPath: string, peers: readonly Peer[]) {
    for (const p of peers) { this.subnets.add(p.subnet); this.vtepIPs.add(p.vtepIP); this.macs.add(p.mac); }
    this.h = openHandle({ netnsPath });
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    for await (const ev of this.h.watch(['route', 'neigh'], this.ctl.signal)) {
      if (ev.type === 'overflow') { this.overflows++; await this.resync(); continue; }
      const o = ev.object;
      const add = ev.type === 'new';
      if (o.kind === 'route' && this.subnets.has(o.dst)) {
        if (add) this.routes.add(o.dst); else this.routes.delete(o.dst);
      } else if (o.kind === 'neigh' && o.family === 4 && o.ip && this.vtepIPs.has(o.ip)) {
        if (add) this.arp.add(o.ip); else this.arp.delete(o.ip);
      } else if (o.kind === 'neigh' && o.family === 'bridge' && this.macs.has(o.mac)) {
        if (add && o.ip) this.fdb.set(o.mac, o.ip); else if (!add && this.fdb.get(o.mac) === o.ip) this.fdb.delete(o.mac);
      } else continue;
      this.wake();
    }
  }

  private async resync(): Promise<void> {
    const [routes, arp, fdb] = await Promise.all([
      this.h.listRoutes({ family: 4 }), this.h.listNeighs({ family: 4 }), this.h.listNeighs({ family: 'bridge' }),
    ]);
    this.routes.clear(); this.arp.clear(); this.fdb.clear();
    for (const r of routes) if (this.subnets.has(r.dst)) this.routes.add(r.dst);
    for (const n of arp) if (n.ip && this.vtepIPs.has(n.ip)) this.arp.add(n.ip);
    for (const n of fdb) if (n.ip && this.macs.has(n.mac)) this.fdb.set(n.mac, n.ip);
    this.wake();
  }

  private wake(): void {
    this.waiters = this.waiters.filter((w) => { if (w.check()) { w.resolve(); return false; } return true; });
  }

  /** Every expected peer has its route, ARP and FDB entry. */
  complete(): boolean {
    return this.routes.size === this.subnets.size && this.arp.size === this.vtepIPs.size && this.fdb.size === this.macs.size;
  }

  counts(): string { return `routes ${this.routes.size}/${this.subnets.size}, ARP ${this.arp.size}/${this.vtepIPs.size}, FDB ${this.fdb.size}/${this.macs.size}`; }

  /** Resolves (with performance.now()) once `check` holds, checked after every counted notification. */
  until(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
    if (check()) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => { this.waiters = this.waiters.filter((w) => w !== entry); reject(new Error(`${what}: not after ${timeoutMs} ms (${this.counts()})`)); }, timeoutMs);
      const entry = { check, resolve: () => { clearTimeout(t); resolve(performance.now()); } };
      this.waiters.push(entry);
    });
  }

  async close(): Promise<void> {
    this.ctl.abort();
    await this.loop.catch(() => undefined);
    this.h.close();
  }
}

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, MiB. */
export function memMiB(pid: number): { hwm: number; rss: number } {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? NaN);
  return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
}
