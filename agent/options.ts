// Flags mirror flanneld's names so flannel users feel at home; each is also settable as the
// environment variable TWILLD_<FLAG> (dashes → underscores, upper case). Command line wins over
// environment, environment over defaults. FLAGS is the single source of truth: the parser, the
// --help text and the manifest test (a DaemonSet may pass only flags that exist here) read it.
import { invalid } from '../lib/errors.js';
import * as C from './constants.js';

export type FlagType = 'string' | 'list' | 'bool' | 'int' | 'duration';

export interface FlagSpec {
  name: string;            // without leading dashes
  type: FlagType;
  help: string;
  default?: string | number | boolean | string[];
  secret?: boolean;        // never logged
}

export const FLAGS: readonly FlagSpec[] = [
  { name: 'etcd-endpoints', type: 'list', default: [C.DEFAULT_ETCD_ENDPOINTS], help: 'comma-separated etcd endpoints' },
  { name: 'etcd-prefix', type: 'string', default: C.DEFAULT_ETCD_PREFIX, help: 'etcd key prefix (/coreos.com/network works too)' },
  { name: 'etcd-cafile', type: 'string', help: 'CA bundle for etcd TLS' },
  { name: 'etcd-certfile', type: 'string', help: 'client certificate for etcd TLS' },
  { name: 'etcd-keyfile', type: 'string', help: 'client key for etcd TLS', secret: true },
  { name: 'etcd-username', type: 'string', help: 'etcd user' },
  { name: 'etcd-password', type: 'string', help: 'etcd password', secret: true },
  { name: 'kube-subnet-mgr', type: 'bool', default: false, help: 'take the subnet from the Node spec.podCIDR instead of etcd' },
  { name: 'kube-api-url', type: 'string', help: 'Kubernetes API server URL (default: in-cluster or kubeconfig)' },
  { name: 'kubeconfig-file', type: 'string', help: 'kubeconfig file (default: in-cluster)' },
  { name: 'kube-annotation-prefix', type: 'string', default: C.DEFAULT_KUBE_ANNOTATION_PREFIX, help: 'Node annotation prefix (flannel.alpha.coreos.com works too)' },
  { name: 'net-config-path', type: 'string', default: C.DEFAULT_NET_CONFIG_PATH, help: 'net-conf.json path (kube mode)' },
  { name: 'iface', type: 'list', default: [], help: 'interface (name or IP) for the underlay; repeatable, first match wins' },
  { name: 'iface-regex', type: 'list', default: [], help: 'regex matched against interface names and IPs; repeatable' },
  { name: 'iface-can-reach', type: 'string', help: 'pick the interface the kernel routes this address through' },
  { name: 'public-ip', type: 'string', help: 'IPv4 address other nodes use to reach this node (default: the interface address)' },
  { name: 'public-ipv6', type: 'string', help: 'IPv6 address other nodes use to reach this node (accepted for flannel compatibility; unused: the overlay is IPv4 only)' },
  { name: 'subnet-file', type: 'string', default: C.DEFAULT_SUBNET_FILE, help: 'where to write the subnet environment file' },
  { name: 'subnet-lease-renew-margin', type: 'int', default: 60, help: 'renew the lease this many minutes before it expires' },
  { name: 'ip-masq', type: 'bool', default: false, help: 'masquerade pod traffic leaving the cluster network' },
  { name: 'healthz-ip', type: 'string', default: C.DEFAULT_HEALTHZ_IP, help: 'address for /healthz, /readyz, /metrics, /status' },
  { name: 'healthz-port', type: 'int', default: C.DEFAULT_HEALTHZ_PORT, help: 'port for the health server (0 disables)' },
  { name: 'resync-interval', type: 'int', default: 300, help: 'seconds between full kernel resyncs (kernel changes are repaired from notifications at once)' },
  { name: 'iptables-resync', type: 'int', default: 10, help: 'seconds between checks of the traffic rules and the subnet file (restored when changed)' },
  { name: 'log-level', type: 'string', default: 'info', help: 'trace | debug | info | warn | error' },
  { name: 'network-policy', type: 'bool', default: true, help: 'kube mode: enforce NetworkPolicy for this node\'s pods in nftables (--network-policy=false turns it off; etcd mode has no policies)' },
  { name: 'cleanup', type: 'bool', default: false, help: 'remove everything twill installed on this node and exit' },
  { name: 'help', type: 'bool', default: false, help: 'show this help' },
  { name: 'version', type: 'bool', default: false, help: 'print the version' },
];

export interface AgentOptions {
  etcdEndpoints: string[];
  etcdPrefix: string;
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
  etcdUsername?: string;
  etcdPassword?: string;
  kubeSubnetMgr: boolean;
  kubeApiUrl?: string;
  kubeconfigFile?: string;
  kubeAnnotationPrefix: string;
  netConfigPath: string;
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach?: string;
  publicIp?: string;
  publicIpv6?: string;
  subnetFile: string;
  subnetLeaseRenewMargin: number;
  ipMasq: boolean;
  networkPolicy: boolean;
  healthzIp: string;
  healthzPort: number;
  resyncInterval: number;
  iptablesResync: number;
  logLevel: string;
  cleanup: boolean;
  help: boolean;
  version: boolean;
  /** Node name (kube mode): NODE_NAME, or the pod's node via POD_NAME + POD_NAMESPACE. */
  nodeName?: string;
  podName?: string;
  podNamespace?: string;
}

export const envName = (flag: string): string => `TWILLD_${flag.toUpperCase().replace(/-/g, '_')}`;

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function convert(spec: FlagSpec, raw: string, source: string): string | number | boolean | string[] {
  const field = `${source === 'env' ? envName(spec.name) : '--' + spec.name}`;
  switch (spec.type) {
    case 'bool':
      if (/^(1|true|yes|on)$/i.test(raw) || raw === '') return true;
      if (/^(0|false|no|off)$/i.test(raw)) return false;
      throw invalid(field, raw, 'must be true or false');
    case 'int':
    case 'duration': {
      if (!/^\d+$/.test(raw)) throw invalid(field, raw, 'must be a non-negative whole number');
      return Number(raw);
    }
    case 'list':
      return raw.split(',').map((s) => s.trim()).filter(Boolean);
    default:
      return raw;
  }
}

/** Parses argv (without node and script) and env into options. Throws CONFIG_INVALID errors. */
export function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): AgentOptions {
  const byName = new Map(FLAGS.map((f) => [f.name, f]));
  const values: Record<string, unknown> = {};
  for (const f of FLAGS) {
    if (f.default !== undefined) values[camel(f.name)] = Array.isArray(f.default) ? [...f.default] : f.default;
    const e = env[envName(f.name)];
    if (e !== undefined && e !== '') values[camel(f.name)] = convert(f, e, 'env');
  }
  const fromArgv = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw invalid('argument', arg, 'expected --flag or --flag=value (see --help)');
    const name = m[1]!;
    const spec = byName.get(name);
    if (!spec) throw invalid('flag', `--${name}`, 'unknown flag (see --help)');
    let raw = m[2];
    if (raw === undefined && spec.type !== 'bool') {
      raw = argv[++i];
      if (raw === undefined) throw invalid(`--${name}`, '', 'needs a value');
    }
    const v = convert(spec, raw ?? '', 'argv');
    const key = camel(name);
    if (spec.type === 'list' && fromArgv.has(key)) values[key] = [...(values[key] as string[]), ...(v as string[])];
    else values[key] = v;
    fromArgv.add(key);
  }
  const o = values as unknown as AgentOptions;
  if (!LOG_LEVELS.includes(o.logLevel)) throw invalid('--log-level', o.logLevel, `must be one of ${LOG_LEVELS.join(', ')}`);
  if (o.healthzPort > 65535) throw invalid('--healthz-port', o.healthzPort, 'must be 0..65535');
  if (o.resyncInterval < 1) throw invalid('--resync-interval', o.resyncInterval, 'must be at least 1 second');
  if (o.iptablesResync < 1) throw invalid('--iptables-resync', o.iptablesResync, 'must be at least 1 second');
  for (const r of o.ifaceRegex) {
    try { new RegExp(r); } catch (err) { throw invalid('--iface-regex', r, `not a valid regular expression (${(err as Error).message})`); }
  }
  o.nodeName = env.NODE_NAME || undefined;
  o.podName = env.POD_NAME || undefined;
  o.podNamespace = env.POD_NAMESPACE || undefined;
  return o;
}

/** Options with secrets replaced, safe to log. */
export function redactOptions(o: AgentOptions): Record<string, unknown> {
  const out: Record<string, unknown> = { ...o };
  for (const f of FLAGS) if (f.secret && out[camel(f.name)] !== undefined) out[camel(f.name)] = '[redacted]';
  return out;
}

export function helpText(): string {
  const lines = ['Usage: twilld [flags]          run the node agent', '       twilld status [--json]  show this node\'s lease, peers and health', '', 'Flags (each also settable as TWILLD_<FLAG>, e.g. TWILLD_ETCD_ENDPOINTS):'];
  for (const f of FLAGS) {
    const d = f.default === undefined || (Array.isArray(f.default) && f.default.length === 0) ? '' : ` (default ${Array.isArray(f.default) ? f.default.join(',') : String(f.default)})`;
    lines.push(`  --${f.name.padEnd(26)} ${f.help}${d}`);
  }
  lines.push('', 'Kube mode reads the node name from NODE_NAME, or POD_NAME + POD_NAMESPACE.');
  return lines.join('\n');
}
