// Pure parts of kube mode: annotation keys and change sets, the condition, Node → Lease decoding,
// the event tracker, and connection set-up (kubeconfig / URL / in-cluster).
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  annotationChanges, annotationKeys, desiredAnnotations, networkAvailableCondition,
} from '../../../lib/subnet/kube-annotations.js';
import { nodeLease, podCidrs, publishedVtepMac, type NodeLike } from '../../../lib/subnet/kube-node.js';
import { NodeLeaseTracker } from '../../../lib/subnet/kube-tracker.js';
import { buildKubeConfig, kubeErrorMessage } from '../../../lib/subnet/kube-client.js';
import { resolveNodeName } from '../../../lib/subnet/kube.js';
import { FakeApiServer } from '../../util/fake-apiserver.js';
import { published } from './helpers.js';

const K = annotationKeys('twill.io');
const node = (name: string, podCIDR: string | string[] | undefined, annotations: Record<string, string> = {}): NodeLike => ({
  metadata: { name, annotations },
  spec: Array.isArray(podCIDR) ? { podCIDR: podCIDR[0], podCIDRs: podCIDR } : podCIDR ? { podCIDR } : {},
});

describe('annotations', () => {
  it('keys follow flannel names under any DNS-subdomain prefix', () => {
    expect(annotationKeys('flannel.alpha.coreos.com').backendData).toBe('flannel.alpha.coreos.com/backend-data');
    expect(K.kubeSubnetManager).toBe('twill.io/kube-subnet-manager');
    expect(() => annotationKeys('UPPER')).toThrow(/--kube-annotation-prefix: "UPPER" is invalid/);
  });

  it('desired set and minimal change set', () => {
    const d = desiredAnnotations({ publicIP: '192.0.2.1', backendType: 'vxlan', backendData: { VNI: 4, VtepMAC: 'aa:bb:cc:dd:ee:0f' } }, K);
    expect(d).toEqual({ 'twill.io/backend-type': 'vxlan', 'twill.io/kube-subnet-manager': 'true', 'twill.io/public-ip': '192.0.2.1', 'twill.io/backend-data': '{"VNI":4,"VtepMAC":"aa:bb:cc:dd:ee:0f"}' });
    expect(annotationChanges(d, d)).toEqual({});
    expect(annotationChanges({ ...d, 'twill.io/public-ip': '192.0.2.9', other: 'x' }, d)).toEqual({ 'twill.io/public-ip': '192.0.2.1' });
    expect(annotationChanges(undefined, d)).toEqual(d);
  });

  it('NetworkUnavailable=False is produced only when missing or different, keeping an earlier transition time', () => {
    const now = new Date('2030-01-02T03:04:05.678Z');
    expect(networkAvailableCondition([], now)).toEqual({ type: 'NetworkUnavailable', status: 'False', reason: 'TwillIsUp', message: 'twill is running on this node', lastTransitionTime: '2030-01-02T03:04:05Z', lastHeartbeatTime: '2030-01-02T03:04:05Z' });
    expect(networkAvailableCondition([{ type: 'NetworkUnavailable', status: 'False', reason: 'TwillIsUp' }], now)).toBeUndefined();
    expect(networkAvailableCondition([{ type: 'NetworkUnavailable', status: 'False', reason: 'FlannelIsUp', lastTransitionTime: new Date('2029-01-01T00:00:00Z') }], now))
      .toMatchObject({ reason: 'TwillIsUp', lastTransitionTime: '2029-01-01T00:00:00Z' });
    expect(networkAvailableCondition([{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }], now)).toMatchObject({ lastTransitionTime: '2030-01-02T03:04:05Z' });
  });
});

describe('node → lease', () => {
  it('podCIDRs: single, dual-stack, malformed, too many', () => {
    expect(podCidrs(node('a', '10.244.1.0/24'))).toEqual({ v4: '10.244.1.0/24' });
    expect(podCidrs(node('a', ['10.244.1.0/24', 'fd00::/64']))).toEqual({ v4: '10.244.1.0/24', v6: 'fd00::/64' });
    expect(podCidrs(node('a', undefined))).toEqual({});
    expect(() => podCidrs(node('a', 'banana'))).toThrow(/spec\.podCIDR: "banana" is invalid/);
    expect(() => podCidrs(node('a', ['10.1.0.0/24', '10.2.0.0/24']))).toThrow(/two IPv4 prefixes/);
    expect(() => podCidrs(node('a', ['10.1.0.0/24', 'fd00::/64', '10.2.0.0/24']))).toThrow(/at most one IPv4 and one IPv6/);
  });

  it('decodes published annotations and ignores nodes without kube-subnet-manager=true', () => {
    expect(nodeLease(node('a', '10.244.1.0/24'), K)).toEqual({ kind: 'ignored' });
    const r = nodeLease(node('a', '10.244.1.0/24', published('192.0.2.1', '0A:58:0A:F4:01:01')), K);
    expect(r).toEqual({ kind: 'lease', lease: { key: 'a', subnet: '10.244.1.0/24', expiration: null, attrs: { publicIP: '192.0.2.1', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: '0a:58:0a:f4:01:01' }, backendV6Data: null } } });
  });

  it.each([
    ['no podCIDR', undefined, {}, /podCIDR is empty/],
    ['bad public-ip', '10.244.1.0/24', { 'twill.io/public-ip': '300.1.1.1' }, /twill\.io\/public-ip: "300\.1\.1\.1" is not an IPv4/],
    ['v6 public-ip for v4 subnet', '10.244.1.0/24', { 'twill.io/public-ip': '2001:db8::1' }, /is not an IPv4/],
    ['backend-data not JSON', '10.244.1.0/24', { 'twill.io/backend-data': '{' }, /backend-data: "\{" is not JSON/],
    ['VNI out of range', '10.244.1.0/24', { 'twill.io/backend-data': '{"VNI":16777216,"VtepMAC":"0a:00:00:00:00:01"}' }, /VNI 16777216/],
    ['bad MAC', '10.244.1.0/24', { 'twill.io/backend-data': '{"VNI":1,"VtepMAC":"0a:00"}' }, /VtepMAC "0a:00"/],
    ['no backend-type', '10.244.1.0/24', { 'twill.io/backend-type': '' }, /backend-type is missing/],
    ['bad podCIDR', 'x/24', {}, /spec\.podCIDR: "x\/24"/],
  ])('invalid: %s', (_name, cidr, override, reason) => {
    const r = nodeLease(node('a', cidr, { ...published('192.0.2.1', '0a:58:0a:f4:01:01'), ...override }), K);
    expect(r.kind).toBe('invalid');
    expect(r.kind === 'invalid' && r.reason).toMatch(reason);
  });

  it('dual-stack and IPv6-only nodes', () => {
    const v6 = { 'twill.io/public-ipv6': '2001:db8::1', 'twill.io/backend-v6-data': '{"VNI":1,"VtepMAC":"0a:00:00:00:00:06"}' };
    const dual = nodeLease(node('a', ['10.244.1.0/24', 'fd00:1::/64'], { ...published('192.0.2.1', '0a:00:00:00:00:04'), ...v6 }), K);
    expect(dual).toMatchObject({ kind: 'lease', lease: { subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:1::/64', attrs: { publicIPv6: '2001:db8::1', backendV6Data: { VtepMAC: '0a:00:00:00:00:06' } } } });
    const only6 = nodeLease(node('b', 'fd00:2::/64', { 'twill.io/kube-subnet-manager': 'true', 'twill.io/backend-type': 'vxlan', ...v6 }), K);
    expect(only6).toMatchObject({ kind: 'lease', lease: { subnet: '', ipv6Subnet: 'fd00:2::/64', attrs: { publicIP: '', backendData: { VtepMAC: '0a:00:00:00:00:06' } } } });
    // a v4-publishing node in a dual-stack cluster is still a v4 peer
    const v4only = nodeLease(node('c', ['10.244.3.0/24', 'fd00:3::/64'], published('192.0.2.3', '0a:00:00:00:00:03')), K);
    expect(v4only.kind).toBe('lease');
    expect(v4only.kind === 'lease' ? v4only.lease.ipv6Subnet : 'not a lease').toBeUndefined();
  });

  it('publishedVtepMac reads our own backend-data', () => {
    expect(publishedVtepMac(node('a', undefined, published('192.0.2.1', '0a:00:00:00:00:07')), K)).toBe('0a:00:00:00:00:07');
    expect(publishedVtepMac(node('a', undefined, {}), K)).toBeUndefined();
  });
});

describe('NodeLeaseTracker', () => {
  const a1 = node('a', '10.244.1.0/24', published('192.0.2.1', '0a:00:00:00:00:01'));
  it('snapshot on relist, deduplicated added, removed on delete and on losing the annotation', () => {
    const t = new NodeLeaseTracker(K);
    const bad = node('x', '10.244.9.0/24', { ...published('192.0.2.9', '0a:00:00:00:00:09'), 'twill.io/public-ip': 'nope' });
    const r = t.relist([a1, bad, node('plain', '10.244.5.0/24')]);
    expect(r.map((e) => e.type)).toEqual(['snapshot']);
    expect(r[0]).toMatchObject({ invalid: [{ key: 'x', reason: expect.stringContaining('twill.io/public-ip') }] });
    expect(t.upsert(a1)).toEqual([]);
    const moved = node('a', '10.244.1.0/24', published('192.0.2.100', '0a:00:00:00:00:01'));
    expect(t.upsert(moved).map((e) => e.type)).toEqual(['added']);
    expect(t.upsert(node('a', '10.244.1.0/24', {})).map((e) => e.type)).toEqual(['removed']);
    expect(t.remove(node('a', undefined))).toEqual([]);
    expect(t.upsert(a1).map((e) => e.type)).toEqual(['added']);
    expect(t.remove(a1)).toMatchObject([{ type: 'removed', lease: { key: 'a' } }]);
    expect(t.upsert(bad)).toEqual([]);   // same invalid reason as at relist: not repeated
    expect(t.size).toBe(0);
  });

  it("forgets an invalid node the moment it is deleted, fixed or stops being ours ('deleted' / 'added')", () => {
    const t = new NodeLeaseTracker(K);
    const bad = (name: string) => node(name, '10.244.9.0/24', { ...published('192.0.2.9', '0a:00:00:00:00:09'), 'twill.io/backend-data': 'not json' });
    t.relist([bad('x'), bad('y'), bad('z')]);
    expect(t.remove(bad('x'))).toEqual([{ type: 'deleted', key: 'x' }]);
    expect(t.upsert(node('y', '10.244.9.0/24', {}))).toEqual([{ type: 'deleted', key: 'y' }]);     // annotation gone: not ours
    expect(t.upsert(node('z', '10.244.9.0/24', published('192.0.2.9', '0a:00:00:00:00:09'))).map((e) => e.type)).toEqual(['added']);
    expect(t.remove(node('w', undefined))).toEqual([]);                                           // never seen: nothing
    expect(t.upsert(bad('y')).map((e) => e.type)).toEqual(['invalid']);                           // bad again: said again
  });

  it("orders Nodes by metadata.creationTimestamp (Lease.created, in ms), as a Date or as text", () => {
    const withTime = (t: Date | string) => { const n = node('a', '10.244.1.0/24', published('192.0.2.1', '0a:00:00:00:00:01')); n.metadata!.creationTimestamp = t; return n; };
    expect(nodeLease(withTime('2026-12-07T10:00:00Z'), K)).toMatchObject({ kind: 'lease', lease: { created: Date.parse('2026-12-07T10:00:00Z') } });
    expect(nodeLease(withTime(new Date(5000)), K)).toMatchObject({ kind: 'lease', lease: { created: 5000 } });
    const none = nodeLease(node('a', '10.244.1.0/24', published('192.0.2.1', '0a:00:00:00:00:01')), K);
    expect(none.kind === 'lease' && 'created' in none.lease).toBe(false);
  });
});

describe('connection set-up', () => {
  it('plain http URL, kubeconfig with URL override, in-cluster, and a clear error outside a pod', () => {
    const kc = buildKubeConfig({ kubeApiUrl: 'http://127.0.0.1:6443/', env: {} });
    expect(kc).toMatchObject({ server: 'http://127.0.0.1:6443', skipTLSVerify: true });
    const dir = mkdtempSync(join(tmpdir(), 'twill-kc-'));
    try {
      const file = join(dir, 'kubeconfig');
      writeFileSync(file, [
        'apiVersion: v1', 'kind: Config', 'current-context: c',
        'clusters: [{name: k, cluster: {server: "https://10.0.0.1:6443"}}]',
        'users: [{name: u, user: {token: abc}}]',
        'contexts: [{name: c, context: {cluster: k, user: u}}]',
      ].join('\n'));
      expect(buildKubeConfig({ kubeconfigFile: file, env: {} })).toMatchObject({ server: 'https://10.0.0.1:6443', token: 'abc', skipTLSVerify: false });
      expect(buildKubeConfig({ kubeconfigFile: file, kubeApiUrl: 'https://192.0.2.1:6443', env: {} }).server).toBe('https://192.0.2.1:6443');
      expect(() => buildKubeConfig({ kubeconfigFile: join(dir, 'missing'), env: {} })).toThrow(/--kubeconfig-file/);
      // in-cluster: service-account files under a test root
      const sa = join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
      mkdirSync(sa, { recursive: true });
      writeFileSync(join(sa, 'token'), 'tok');
      writeFileSync(join(sa, 'ca.crt'), '');
      const inCluster = buildKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, pathPrefix: dir });
      expect(inCluster).toMatchObject({ server: 'https://10.96.0.1:443', tokenFile: join(sa, 'token') });
      // --kube-api-url in a pod keeps the service-account credentials
      const direct = buildKubeConfig({ kubeApiUrl: 'https://192.0.2.1:6443', env: {}, pathPrefix: dir });
      expect(direct).toMatchObject({ server: 'https://192.0.2.1:6443', tokenFile: join(sa, 'token') });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(() => buildKubeConfig({ env: {}, pathPrefix: '/nonexistent' })).toThrow(/--kube-api-url or --kubeconfig-file/);
    expect(() => buildKubeConfig({ kubeApiUrl: 'ftp://x', env: {} })).toThrow(/must be an http\(s\) URL/);
  });

  it('kubeconfig: files relative to the kubeconfig, -data in base64, tokenFile, and unsupported credentials refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'twill-kc-'));
    try {
      const write = (name: string, lines: string[]) => { writeFileSync(join(dir, name), lines.join('\n')); return join(dir, name); };
      mkdirSync(join(dir, 'pki'));
      writeFileSync(join(dir, 'pki', 'ca.crt'), 'CA-PEM');
      writeFileSync(join(dir, 'pki', 'me.crt'), 'CERT-PEM');
      writeFileSync(join(dir, 'pki', 'me.key'), 'KEY-PEM');
      const base = ['apiVersion: v1', 'kind: Config', 'current-context: c', 'contexts:', '- name: c', '  context: {cluster: k, user: u}'];
      const certs = buildKubeConfig({ env: {}, kubeconfigFile: write('certs', [...base,
        'clusters:', '- name: k', '  cluster:', '    server: https://10.0.0.1:6443/', '    certificate-authority: pki/ca.crt', '    tls-server-name: api.example',
        'users:', '- name: u', '  user:', '    client-certificate: pki/me.crt', `    client-key: ${join(dir, 'pki', 'me.key')}`]) });
      expect(certs).toMatchObject({ server: 'https://10.0.0.1:6443', skipTLSVerify: false, tlsServerName: 'api.example' });
      expect([certs.ca?.toString(), certs.cert?.toString(), certs.key?.toString()]).toEqual(['CA-PEM', 'CERT-PEM', 'KEY-PEM']);
      const b64 = (s: string) => Buffer.from(s).toString('base64');
      const data = buildKubeConfig({ env: {}, kubeconfigFile: write('data', [...base,
        'clusters:', '- name: k', '  cluster: {server: "https://h:6443", certificate-authority-data: ' + b64('CA2') + ', insecure-skip-tls-verify: true}',
        'users:', '- name: u', '  user: {tokenFile: tok}']) });
      expect(data).toMatchObject({ skipTLSVerify: true, tokenFile: join(dir, 'tok') });
      expect(data.ca?.toString()).toBe('CA2');
      const refuse = (user: string) => () => buildKubeConfig({ env: {}, kubeconfigFile: write('x', [...base, 'clusters: [{name: k, cluster: {server: "https://h"}}]', 'users:', '- name: u', `  user: ${user}`]) });
      expect(refuse('{exec: {command: aws}}')).toThrow(/"exec" credentials are not supported/);
      expect(refuse('{auth-provider: {name: gcp}}')).toThrow(/"auth-provider" credentials are not supported/);
      expect(refuse('{client-certificate: pki/me.crt}')).toThrow(/client-certificate and client-key go together/);
      expect(refuse('{client-certificate: nope.crt, client-key: pki/me.key}')).toThrow(/client-certificate: cannot read/);
      expect(() => buildKubeConfig({ env: {}, kubeconfigFile: write('noctx', ['apiVersion: v1', 'clusters: []']) })).toThrow(/no current-context/);
      expect(() => buildKubeConfig({ env: {}, kubeconfigFile: write('nocluster', [...base, 'clusters: []', 'users: [{name: u, user: {}}]']) })).toThrow(/clusters: no entry named "k"/);
      expect(() => buildKubeConfig({ env: {}, kubeconfigFile: write('bad', ['{']) })).toThrow(/--kubeconfig-file: .* cannot be loaded/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('error messages are one readable line', () => {
    const e = Object.assign(new Error('HTTP-Code: 409\nMessage: x\nBody: {...}'), { code: 409, body: { reason: 'Conflict', message: 'the object has been modified' } });
    expect(kubeErrorMessage(e)).toBe('409 Conflict: the object has been modified');
    expect(kubeErrorMessage(new Error('ECONNREFUSED'))).toBe('ECONNREFUSED');
  });

  it('resolveNodeName: NODE_NAME, else the pod\'s spec.nodeName', async () => {
    const s = await FakeApiServer.start();
    try {
      s.createPod('kube-system', 'twill-abcde', 'worker-1');
      const ac = new AbortController();
      expect(await resolveNodeName({ nodeName: 'n' }, ac.signal)).toBe('n');
      expect(await resolveNodeName({ podName: 'twill-abcde', podNamespace: 'kube-system', kubeApiUrl: s.url }, ac.signal)).toBe('worker-1');
      await expect(resolveNodeName({ podName: 'gone', podNamespace: 'kube-system', kubeApiUrl: s.url }, ac.signal)).rejects.toThrow(/404 NotFound/);
      await expect(resolveNodeName({}, ac.signal)).rejects.toThrow(/NODE_NAME/);
    } finally {
      await s.close();
    }
  });
});
