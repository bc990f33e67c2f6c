// deploy/ checked against the Kubernetes API schemas (kubernetes-models) plus an unknown-field
// pass, and against the code: the DaemonSet may pass only flags and TWILLD_* env the agent has,
// mount only host paths the agent or the CNI installer uses, probe the agent's health port; the
// ConfigMap's net-conf.json must parse and the conflist must be a valid twill plugin config;
// RBAC must be exactly the least-privilege set; the kubeadm all-in-one must be in sync.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parse } from 'yaml';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { DaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IDaemonSet } from 'kubernetes-models/apps/v1/DaemonSet';
import { FLAGS, envName, parseOptions } from '../../../agent/options.js';
import * as C from '../../../agent/constants.js';
import { parseNetConf } from '../../../lib/config/net-conf.js';
import { parseConf, DEFAULTS as CNI_DEFAULTS } from '../../../cni/config.js';
import { parseInstallArgs } from '../../../cni/install.js';
import { renderAllInOne, ALL_IN_ONE } from '../../../scripts/gen-manifests.js';
import { unknownFields } from './strict-fields.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NM = join(ROOT, 'node_modules');

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: unknown };

const MODELS: Record<string, { make: (o: Obj) => { validate(): void }; dts: string }> = {
  'v1/ServiceAccount': { make: (o) => new ServiceAccount(o as never), dts: 'kubernetes-models/v1/ServiceAccount.d.ts' },
  'v1/ConfigMap': { make: (o) => new ConfigMap(o as never), dts: 'kubernetes-models/v1/ConfigMap.d.ts' },
  'rbac.authorization.k8s.io/v1/ClusterRole': { make: (o) => new ClusterRole(o as never), dts: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole.d.ts' },
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': { make: (o) => new ClusterRoleBinding(o as never), dts: 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding.d.ts' },
  'apps/v1/DaemonSet': { make: (o) => new DaemonSet(o as never), dts: 'kubernetes-models/apps/v1/DaemonSet.d.ts' },
};

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? yamlFiles(p) : /\.ya?ml$/.test(f) ? [p] : [];
  });
}

function docs(file: string): unknown[] {
  const parsed = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const d of parsed) if (d.errors.length > 0) throw new Error(`${relative(ROOT, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
  return parsed.map((d) => d.toJS() as unknown).filter((x) => x !== null);
}

const kustomized = (): Obj[] => ['rbac.yaml', 'configmap.yaml', 'daemonset.yaml'].flatMap((f) => docs(join(ROOT, 'deploy', f)) as Obj[]);
const byKind = <T = Obj>(kind: string): T => {
  const o = kustomized().find((x) => x.kind === kind);
  if (!o) throw new Error(`no ${kind} in deploy/`);
  return o as unknown as T;
};
const daemonSet = () => byKind<IDaemonSet>('DaemonSet');
const podSpec = () => daemonSet().spec!.template.spec!;
const agent = (): IContainer => podSpec().containers.find((c) => c.name === 'twill')!;
const installer = (): IContainer => podSpec().initContainers!.find((c) => c.name === 'install-cni')!;
const configMap = () => byKind<{ data: Record<string, string> }>('ConfigMap');

/** Host path behind a path inside a container, via its volume mounts (undefined if not a hostPath). */
function hostPathOf(c: IContainer, path: string): string | undefined {
  for (const m of c.volumeMounts ?? []) {
    if (path !== m.mountPath && !path.startsWith(m.mountPath + '/')) continue;
    const v = podSpec().volumes!.find((x) => x.name === m.name);
    if (v?.hostPath) return v.hostPath.path + path.slice(m.mountPath.length);
  }
  return undefined;
}

// Host paths the code uses, each with where it comes from. Anything else mounted is a finding.
const installerDefaults = parseInstallArgs(['--source', '/bin/true'], {}) as { binDir: string; confDir: string };
const USED_HOST_PATHS: Record<string, string> = {
  [dirname(C.DEFAULT_SUBNET_FILE)]: 'agent --subnet-file default; the CNI plugin reads subnetFile there on the host',
  [installerDefaults.binDir]: 'CNI installer --bin-dir default (the runtime looks for plugins there)',
  [installerDefaults.confDir]: 'CNI installer --conf-dir default (the runtime reads conflists there)',
  '/run/xtables.lock': 'iptables fallback (agent/traffic/iptables.ts) shares the xtables lock with kube-proxy',
};

describe('deploy/ manifests', () => {
  const files = yamlFiles(join(ROOT, 'deploy'));

  it('every YAML parses; every Kubernetes object validates against the API schema with no unknown fields', () => {
    expect(files.map((f) => relative(ROOT, f)).sort()).toEqual(expect.arrayContaining(['deploy/daemonset.yaml', 'deploy/kubeadm/twill.yaml', 'deploy/kind/kind-config.yaml']));
    let validated = 0;
    for (const f of files) {
      for (const o of docs(f) as Obj[]) {
        if (o.kind === 'Kustomization' || o.kind === 'Cluster') continue;
        const m = MODELS[`${o.apiVersion}/${o.kind}`];
        expect(m, `${relative(ROOT, f)}: unexpected ${o.apiVersion} ${o.kind}`).toBeDefined();
        expect(() => m!.make(o).validate(), `${relative(ROOT, f)} ${o.kind}/${o.metadata.name}`).not.toThrow();
        expect(unknownFields(o, join(NM, m!.dts), NM, `${o.kind}/${o.metadata.name}`)).toEqual([]);
        validated++;
      }
    }
    expect(validated).toBe(10); // 5 objects in deploy/*.yaml + the same 5 in the kubeadm file
  });

  it('the checks can fail: a schema violation and a typo are caught', () => {
    const ds = structuredClone(daemonSet()) as unknown as Obj;
    const c = (ds['spec'] as IDaemonSet['spec'])!.template.spec!.containers[0] as unknown as Record<string, unknown>;
    c['imagePulPolicy'] = 'Always';
    expect(unknownFields(ds, join(NM, MODELS['apps/v1/DaemonSet']!.dts), NM)).toEqual(['$.spec.template.spec.containers[0].imagePulPolicy: unknown field']);
    c['ports'] = [{ containerPort: 'http' }];
    expect(() => new DaemonSet(ds as never).validate()).toThrow(/containerPort must be integer/);
  });

  it('kustomization lists every resource file once and the kubeadm all-in-one is in sync', () => {
    const k = parse(readFileSync(join(ROOT, 'deploy/kustomization.yaml'), 'utf8')) as { resources: string[] };
    expect(k.resources).toEqual(['rbac.yaml', 'configmap.yaml', 'daemonset.yaml']);
    expect(readFileSync(join(ROOT, ALL_IN_ONE), 'utf8'), 'run: node_modules/.bin/bun scripts/gen-manifests.ts').toBe(renderAllInOne(ROOT));
    const all = docs(join(ROOT, ALL_IN_ONE));
    expect(all).toEqual(kustomized());
  });
});

describe('DaemonSet vs the agent', () => {
  it('passes only flags the agent has, and they parse', () => {
    const args = agent().args ?? [];
    const names = new Set(FLAGS.map((f) => f.name));
    for (const a of args) {
      const m = /^--([a-z0-9-]+)(=.*)?$/.exec(a);
      expect(m, `argument ${a} is not a --flag`).not.toBeNull();
      expect(names.has(m![1]!), `--${m![1]} is not a twilld flag (agent/options.ts FLAGS)`).toBe(true);
    }
    const env = Object.fromEntries((agent().env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    const o = parseOptions(args, env);
    expect(o.kubeSubnetMgr).toBe(true);
    expect(o.ipMasq).toBe(true);
    expect(agent().command, 'the image ENTRYPOINT is twilld').toBeUndefined();
  });

  it('sets only TWILLD_* env that match a flag, and the node name from the downward API', () => {
    const valid = new Set(FLAGS.map((f) => envName(f.name)));
    for (const e of agent().env ?? []) {
      if (e.name.startsWith('TWILLD_')) expect(valid.has(e.name), `${e.name} matches no flag`).toBe(true);
    }
    const env = new Map((agent().env ?? []).map((e) => [e.name, e]));
    expect(env.get('NODE_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
    expect(env.get('POD_NAME')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    expect(env.get('POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.namespace');
  });

  it('mounts only host paths the agent or the CNI installer uses, each where the code expects it', () => {
    const mounted = podSpec().volumes!.filter((v) => v.hostPath).map((v) => v.hostPath!.path).sort();
    for (const p of mounted) expect(Object.keys(USED_HOST_PATHS), `hostPath ${p} is not used by the agent or the CNI`).toContain(p);
    expect(mounted).toEqual(Object.keys(USED_HOST_PATHS).sort());
    // every volume is mounted somewhere
    const used = new Set([...podSpec().containers, ...podSpec().initContainers!].flatMap((c) => (c.volumeMounts ?? []).map((m) => m.name)));
    for (const v of podSpec().volumes!) expect(used.has(v.name), `volume ${v.name} is never mounted`).toBe(true);
    // the agent writes subnet.env where the host-side plugin reads it (same path inside and outside)
    expect(hostPathOf(agent(), C.DEFAULT_SUBNET_FILE)).toBe(C.DEFAULT_SUBNET_FILE);
    expect(CNI_DEFAULTS.subnetFile).toBe(C.DEFAULT_SUBNET_FILE);
    expect(hostPathOf(agent(), '/run/xtables.lock')).toBe('/run/xtables.lock');
  });

  it('reads net-conf.json from the ConfigMap mount at the agent default path', () => {
    const m = agent().volumeMounts!.find((x) => C.DEFAULT_NET_CONFIG_PATH.startsWith(x.mountPath + '/'));
    expect(m, `nothing mounted at ${dirname(C.DEFAULT_NET_CONFIG_PATH)}`).toBeDefined();
    const v = podSpec().volumes!.find((x) => x.name === m!.name);
    expect(v?.configMap?.name).toBe('twill-config');
    expect(Object.keys(configMap().data)).toContain(C.DEFAULT_NET_CONFIG_PATH.slice(m!.mountPath.length + 1));
  });

  it('runs the CNI installer with arguments it accepts, installing into the host CNI directories', () => {
    const cmd = installer().command!;
    expect(cmd.slice(0, 2)).toEqual(['/opt/twill/bin/twill', 'install']);
    const dir = mkdtempSync(join(tmpdir(), 'twill-deploy-'));
    try {
      const argv = cmd.slice(2);
      const i = argv.indexOf('--conflist');
      const conflistPath = argv[i + 1]!;
      // the conflist comes from the ConfigMap mount
      const m = installer().volumeMounts!.find((x) => conflistPath.startsWith(x.mountPath + '/'))!;
      expect(podSpec().volumes!.find((x) => x.name === m.name)?.configMap?.name).toBe('twill-config');
      const local = join(dir, 'cni-conf.json');
      writeFileSync(local, configMap().data[conflistPath.slice(m.mountPath.length + 1)]!);
      const o = parseInstallArgs([...argv.slice(0, i + 1), local, ...argv.slice(i + 2), '--source', '/bin/true'], {});
      expect(o).not.toBe('help');
      const opts = o as { binDir: string; confDir: string };
      expect(hostPathOf(installer(), opts.binDir)).toBe(installerDefaults.binDir);
      expect(hostPathOf(installer(), opts.confDir)).toBe(installerDefaults.confDir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('probes the agent health server and keeps the pod non-privileged with NET_ADMIN + NET_RAW', () => {
    const a = agent();
    expect(a.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: C.DEFAULT_HEALTHZ_PORT });
    expect(a.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: C.DEFAULT_HEALTHZ_PORT });
    expect(a.securityContext?.privileged).toBe(false);
    expect([...(a.securityContext?.capabilities?.add ?? [])].sort()).toEqual(['NET_ADMIN', 'NET_RAW']);
    expect(a.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    const ps = podSpec();
    expect(ps.hostNetwork).toBe(true);
    expect(ps.priorityClassName).toBe('system-node-critical');
    expect(ps.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(ps.serviceAccountName).toBe('twill');
    expect(daemonSet().spec!.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
    expect(installer().image).toBe(a.image);
  });
});

describe('ConfigMap', () => {
  it('net-conf.json parses and its Network equals the kind podSubnet', () => {
    const conf = parseNetConf(configMap().data['net-conf.json']!);
    expect(conf.network).toBe('10.244.0.0/16');
    expect(conf.backend.type).toBe('vxlan');
    const kind = parse(readFileSync(join(ROOT, 'deploy/kind/kind-config.yaml'), 'utf8')) as { networking: { podSubnet: string; disableDefaultCNI: boolean }; nodes: { role: string }[] };
    expect(kind.networking).toEqual({ disableDefaultCNI: true, podSubnet: conf.network });
    expect(kind.nodes.map((n) => n.role)).toEqual(['control-plane', 'worker', 'worker']);
  });

  it('the conflist is a valid twill plugin config followed by portmap', () => {
    const list = JSON.parse(configMap().data['cni-conf.json']!) as { cniVersion: string; cniVersions?: string[]; name: string; plugins: Record<string, unknown>[] };
    expect(list.plugins.map((p) => p['type'])).toEqual(['twill', 'portmap']);
    expect(list.plugins[1]).toEqual({ type: 'portmap', capabilities: { portMappings: true } });
    const conf = parseConf({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0] });
    expect(conf.subnetFile).toBe(C.DEFAULT_SUBNET_FILE);
    expect(conf).toMatchObject({ bridge: 'cni0', dataDir: '/var/lib/cni/networks', hairpinMode: true, isDefaultGateway: true });
    expect(() => parseConf({ cniVersion: list.cniVersion, name: list.name, ...list.plugins[0], subnetFile: 'relative' })).toThrow(/subnetFile/);
  });
});

describe('RBAC', () => {
  it('grants exactly nodes get/list/watch, nodes/status patch and read-only pods, namespaces and networkpolicies, bound to the DaemonSet service account', () => {
    const role = byKind<{ rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] }>('ClusterRole');
    const grants = role.rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}/${res}:${v}`)))).sort();
    const read = (r: string) => ['get', 'list', 'watch'].map((v) => `${r}:${v}`);
    expect(grants).toEqual(['/nodes/status:patch', ...read('/nodes'), ...read('/pods'), ...read('/namespaces'), ...read('networking.k8s.io/networkpolicies')].sort());
    const binding = byKind<{ roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] }>('ClusterRoleBinding');
    const sa = byKind('ServiceAccount');
    expect(binding.roleRef).toMatchObject({ kind: 'ClusterRole', name: 'twill' });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
    expect(daemonSet().metadata!.namespace).toBe(sa.metadata.namespace);
  });
});
