// KubeSubnetManager.acquireLease / renewLease / previousVtepMac through twill's own kube client (lib/subnet/kube-client.ts)
// against the fake API server.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { attrs, kubeEnv, sleep, waitFor, type KubeEnv } from './helpers.js';
import { isTwillError } from '../../../lib/errors.js';
import { PodCidrPendingError } from '../../../lib/subnet/kube.js';
import type { Json, JsonObject } from '../../util/fake-apiserver.js';

const MAC = '0a:58:0a:f4:01:01';
const A = attrs('192.0.2.10', MAC);

let env: KubeEnv;
let ac: AbortController;
beforeEach(async () => { env = await kubeEnv(); ac = new AbortController(); });
afterEach(async () => { ac.abort(); await env.close(); });

const annotations = (n: JsonObject | undefined) => ((n?.['metadata'] as JsonObject)['annotations'] ?? {}) as Record<string, string>;
const conditions = (n: JsonObject | undefined) => ((n?.['status'] as JsonObject)['conditions'] ?? []) as Json[] as JsonObject[];
const patches = () => env.server.count({ method: 'PATCH' });

describe('acquireLease', () => {
  it('returns the node podCIDR as the lease and publishes annotations and NetworkUnavailable=False on nodes/status', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    const m = env.manager();
    const lease = await m.acquireLease(A, { signal: ac.signal });
    expect(lease).toEqual({ subnet: '10.244.7.0/24', attrs: A, expiration: null, key: 'node-a' });
    const node = env.server.getNode('node-a');
    expect(annotations(node)).toEqual({
      'twill.io/kube-subnet-manager': 'true',
      'twill.io/backend-type': 'vxlan',
      'twill.io/public-ip': '192.0.2.10',
      'twill.io/backend-data': `{"VNI":1,"VtepMAC":"${MAC}"}`,
    });
    const cond = conditions(node).find((c) => c['type'] === 'NetworkUnavailable');
    expect(cond).toMatchObject({ status: 'False', reason: 'TwillIsUp' });
    expect(conditions(node).find((c) => c['type'] === 'Ready')).toMatchObject({ status: 'True' }); // merged by type, not replaced
    expect(env.server.count({ method: 'PATCH', path: '/api/v1/nodes/node-a/status', contentType: 'application/strategic-merge-patch+json' })).toBe(1);
    expect(env.server.count({ method: 'PATCH', path: '/api/v1/nodes/node-a' })).toBe(0);
  });

  it('reports "pod CIDR not assigned yet" once, then waits and proceeds when the CIDR is assigned', async () => {
    env.server.createNode({ name: 'node-a' });
    const m = env.manager();
    const err = await m.acquireLease(A, { signal: ac.signal }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PodCidrPendingError);
    expect(isTwillError(err, 'KUBE')).toBe(true);
    expect((err as Error).message).toMatch(/pod CIDR not assigned yet on node node-a \(IPv4\).*--allocate-node-cidrs/);
    let done = false;
    const p = m.acquireLease(A, { signal: ac.signal }).finally(() => { done = true; });
    await waitFor(() => env.server.count({ watch: true }) >= 1, 'a watch on our node');
    await sleep(200);
    expect(done).toBe(false);
    expect(patches()).toBe(0);
    const t0 = Date.now();
    env.server.assignPodCIDR('node-a', '10.244.9.0/24');
    const lease = await p;
    expect(Date.now() - t0).toBeLessThan(5000); // woken by the watch, not by the 30 s re-read
    expect(lease.subnet).toBe('10.244.9.0/24');
    expect(patches()).toBe(1);
    env.server.assignPodCIDR('node-a', []);   // a later wait reports again
    await expect(m.acquireLease(A, { signal: ac.signal })).rejects.toBeInstanceOf(PodCidrPendingError);
  });

  it('a wait for the pod CIDR ends when the signal aborts', async () => {
    env.server.createNode({ name: 'node-a' });
    const m = env.manager();
    await expect(m.acquireLease(A, { signal: ac.signal })).rejects.toBeInstanceOf(PodCidrPendingError);
    const p = m.acquireLease(A, { signal: ac.signal });
    await waitFor(() => env.server.count({ watch: true }) >= 1, 'waiting');
    ac.abort();
    await expect(p).rejects.toSatisfy((e: unknown) => isTwillError(e, 'ABORTED'));
  });

  it('rejects a podCIDR outside Network with an error naming field, value and rule', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.96.3.0/24' });
    const err = await env.manager().acquireLease(A, { signal: ac.signal }).catch((e: unknown) => e);
    expect(isTwillError(err, 'CONFIG_INVALID')).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toContain('spec.podCIDR');
    expect(msg).toContain('10.96.3.0/24');
    expect(msg).toContain('10.244.0.0/16');
    expect(msg).toContain('--pod-network-cidr');
    expect(patches()).toBe(0);
  });

  it('rejects a malformed podCIDR naming the field', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.3.7/24' });
    const err = await env.manager().acquireLease(A, { signal: ac.signal }).catch((e: unknown) => e);
    expect(isTwillError(err, 'CONFIG_INVALID')).toBe(true);
    expect((err as Error).message).toMatch(/spec\.podCIDR.*10\.244\.3\.7\/24.*host bits/);
  });

  it('patches only when something differs (one PATCH for two acquires; a new MAC patches again)', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    const m = env.manager();
    await m.acquireLease(A, { signal: ac.signal });
    await m.acquireLease(A, { signal: ac.signal });
    await env.manager().acquireLease(A, { signal: ac.signal }); // a restarted agent
    expect(patches()).toBe(1);
    const rv = env.server.getNode('node-a')!['metadata'] as JsonObject;
    await m.acquireLease(attrs('192.0.2.10', '0a:58:0a:f4:01:02'), { signal: ac.signal });
    expect(patches()).toBe(2);
    const node = env.server.getNode('node-a');
    expect(annotations(node)['twill.io/backend-data']).toBe('{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:02"}');
    expect((node!['metadata'] as JsonObject)['resourceVersion']).not.toBe(rv['resourceVersion']);
  });

  it('re-reads and retries after a 409 conflict without clobbering the concurrent change', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    let bumped = 0;
    env.server.beforeWrite = (name) => {
      if (bumped++ === 0) env.server.updateNode(name, (n) => { (n['metadata'] as JsonObject)['labels'] = { other: 'controller' }; });
    };
    const lease = await env.manager().acquireLease(A, { signal: ac.signal });
    expect(lease.subnet).toBe('10.244.7.0/24');
    expect(env.server.count({ method: 'PATCH', status: 409 })).toBe(1);
    expect(env.server.count({ method: 'PATCH', status: 200 })).toBe(1);
    expect(env.server.count({ method: 'GET', path: '/api/v1/nodes/node-a' })).toBe(2);
    const node = env.server.getNode('node-a')!;
    expect((node['metadata'] as JsonObject)['labels']).toEqual({ other: 'controller' });
    expect(annotations(node)['twill.io/kube-subnet-manager']).toBe('true');
  });

  it('retries transient API errors (503) and then succeeds', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    env.server.failRequests(503);
    const p = env.manager().acquireLease(A, { signal: ac.signal });
    await waitFor(() => env.server.count({ status: 503 }) >= 2, 'two failed attempts');
    env.server.failRequests(null);
    expect((await p).subnet).toBe('10.244.7.0/24');
    expect(env.logs.some((l) => l.msg.includes('acquire lease failed; retrying'))).toBe(true);
  });

  it('fails fast with an RBAC hint on 403', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    env.server.failRequests(403, (method) => method === 'PATCH');
    const err = await env.manager().acquireLease(A, { signal: ac.signal }).catch((e: unknown) => e);
    expect(isTwillError(err, 'KUBE')).toBe(true);
    expect((err as Error).message).toContain('nodes/status patch');
  });

  it('keeps an operator-set public-ip-overwrite', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24', annotations: { 'twill.io/public-ip-overwrite': '203.0.113.5' } });
    await env.manager().acquireLease(A, { signal: ac.signal });
    expect(annotations(env.server.getNode('node-a'))['twill.io/public-ip']).toBe('203.0.113.5');
  });

  it('works with the flannel annotation prefix', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    await env.manager({ annotationPrefix: 'flannel.alpha.coreos.com' }).acquireLease(A, { signal: ac.signal });
    const a = annotations(env.server.getNode('node-a'));
    expect(a['flannel.alpha.coreos.com/kube-subnet-manager']).toBe('true');
    expect(a['flannel.alpha.coreos.com/backend-data']).toBe(`{"VNI":1,"VtepMAC":"${MAC}"}`);
    expect(a['flannel.alpha.coreos.com/public-ip']).toBe('192.0.2.10');
    expect(Object.keys(a).some((k) => k.startsWith('twill.io/'))).toBe(false);
  });

  it('dual-stack: takes both podCIDRs and publishes the IPv6 annotations', async () => {
    writeFileSync(env.netConfigPath, JSON.stringify({ ...JSON.parse('{"Network":"10.244.0.0/16"}'), EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', Backend: { Type: 'vxlan' } }));
    env.server.createNode({ name: 'node-a', podCIDRs: ['10.244.7.0/24', 'fd00:10:244:7::/64'] });
    const lease = await env.manager().acquireLease({ ...A, publicIPv6: '2001:db8::10', backendV6Data: { VNI: 1, VtepMAC: '0a:58:0a:f4:01:09' } }, { signal: ac.signal });
    expect(lease.subnet).toBe('10.244.7.0/24');
    expect(lease.ipv6Subnet).toBe('fd00:10:244:7::/64');
    const a = annotations(env.server.getNode('node-a'));
    expect(a['twill.io/public-ipv6']).toBe('2001:db8::10');
    expect(a['twill.io/backend-v6-data']).toBe('{"VNI":1,"VtepMAC":"0a:58:0a:f4:01:09"}');
  });
});

describe('getNetworkConfig', () => {
  it('parses net-conf.json and reports a missing file as CONFIG_MISSING naming the path', async () => {
    const conf = await env.manager().getNetworkConfig(ac.signal);
    expect(conf.network).toBe('10.244.0.0/16');
    const err = await env.manager({ netConfigPath: `${env.dir}/nope.json` }).getNetworkConfig(ac.signal).catch((e: unknown) => e);
    expect(isTwillError(err, 'CONFIG_MISSING')).toBe(true);
    expect((err as Error).message).toContain('nope.json');
  });
});

describe('renewLease', () => {
  it('returns the lease unchanged and restores annotations someone removed', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    const m = env.manager();
    const lease = await m.acquireLease(A, { signal: ac.signal });
    expect(await m.renewLease(lease, ac.signal)).toBe(lease);
    expect(patches()).toBe(1);
    env.server.updateNode('node-a', (n) => { delete (n['metadata'] as JsonObject)['annotations']; });
    expect(await m.renewLease(lease, ac.signal)).toBe(lease);
    expect(patches()).toBe(2);
    expect(annotations(env.server.getNode('node-a'))['twill.io/backend-data']).toBe(`{"VNI":1,"VtepMAC":"${MAC}"}`);
  });
});

describe('previousVtepMac', () => {
  it('is undefined on first start and returns our published MAC after a restart', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24' });
    expect(await env.manager().previousVtepMac()).toBeUndefined();
    await env.manager().acquireLease(A, { signal: ac.signal });
    const restarted = env.manager();
    expect(await restarted.previousVtepMac()).toBe(MAC);
  });

  it('ignores a malformed backend-data annotation', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24', annotations: { 'twill.io/backend-data': '{"VNI":1,"VtepMAC":"zz"}' } });
    expect(await env.manager().previousVtepMac()).toBeUndefined();
  });

  it('reads the MAC under the flannel prefix (migration from flanneld keeps the MAC)', async () => {
    env.server.createNode({ name: 'node-a', podCIDR: '10.244.7.0/24', annotations: { 'flannel.alpha.coreos.com/backend-data': '{"VNI":1,"VtepMAC":"0A:58:0A:F4:01:03"}' } });
    expect(await env.manager({ annotationPrefix: 'flannel.alpha.coreos.com' }).previousVtepMac()).toBe('0a:58:0a:f4:01:03');
  });
});

describe('construction', () => {
  it('requires a node name and a valid annotation prefix', () => {
    expect(() => env.manager({ nodeName: '' })).toThrow(/NODE_NAME/);
    expect(() => env.manager({ annotationPrefix: 'Not A Prefix/' })).toThrow(/--kube-annotation-prefix.*DNS subdomain/);
  });
});
