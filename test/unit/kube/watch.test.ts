// KubeSubnetManager.watchLeases through twill's own kube client (lib/subnet/kube-client.ts) against the fake API server:
// snapshot, added/changed/removed, ignored nodes, invalid annotations, 410 → relist, dropped
// watches, outages.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { collect, kubeEnv, ofType, published, sleep, waitFor, type Collector, type KubeEnv } from './helpers.js';
import type { JsonObject } from '../../util/fake-apiserver.js';

let env: KubeEnv;
let c: Collector | undefined;
afterEach(async () => { c?.stop(); await c?.done; c = undefined; await env.close(); });

const macOf = (i: number) => `0a:58:0a:f4:0${i}:01`;

function addPeer(name: string, i: number, prefix = 'twill.io'): void {
  env.server.createNode({ name, podCIDR: `10.244.${i}.0/24`, annotations: published(`192.0.2.${i}`, macOf(i), prefix) });
}

function setAnnotation(name: string, key: string, value: string): void {
  env.server.updateNode(name, (n) => {
    const m = n['metadata'] as JsonObject;
    m['annotations'] = { ...(m['annotations'] as JsonObject), [key]: value };
  });
}

async function started(): Promise<Collector> {
  c = collect(env.manager());
  await waitFor(() => ofType(c!.events, 'snapshot').length === 1 && env.server.activeWatches === 1, 'first snapshot and an open watch');
  return c;
}

/** node-b known; then the API fails and the watch drops while node-c appears and node-b goes. */
async function outageWithChanges(): Promise<void> {
  addPeer('node-b', 2);
  await started();
  env.server.failRequests(503);
  env.server.dropAllWatches('reset');
  addPeer('node-c', 3);
  env.server.deleteNode('node-b');
}

describe('watchLeases', () => {
  beforeEach(async () => { env = await kubeEnv(); });

  it('starts with a snapshot of every node carrying kube-subnet-manager=true, ignoring the others', async () => {
    addPeer('node-a', 1);
    addPeer('node-b', 2);
    env.server.createNode({ name: 'no-agent', podCIDR: '10.244.3.0/24' });
    env.server.createNode({ name: 'other-prefix', podCIDR: '10.244.4.0/24', annotations: published('192.0.2.4', macOf(4), 'flannel.alpha.coreos.com') });
    await started();
    const snap = ofType(c!.events, 'snapshot')[0]!;
    expect(snap.leases.map((l) => l.key).sort()).toEqual(['node-a', 'node-b']);
    expect(snap.leases.find((l) => l.key === 'node-b')).toEqual({
      key: 'node-b', subnet: '10.244.2.0/24', expiration: null, created: Date.parse((env.server.getNode('node-b')!['metadata'] as JsonObject)['creationTimestamp'] as string),
      attrs: { publicIP: '192.0.2.2', publicIPv6: null, backendType: 'vxlan', backendData: { VNI: 1, VtepMAC: macOf(2) }, backendV6Data: null },
    });
    expect(c!.events).toHaveLength(1);
  });

  it('emits added for a new node once it publishes, and ignores it before', async () => {
    await started();
    env.server.createNode({ name: 'node-c', podCIDR: '10.244.3.0/24' });
    env.server.updateNode('node-c', (n) => { (n['metadata'] as JsonObject)['labels'] = { x: 'y' }; });
    await sleep(100);
    expect(c!.events).toHaveLength(1);
    env.server.updateNode('node-c', (n) => { (n['metadata'] as JsonObject)['annotations'] = published('192.0.2.3', macOf(3)); });
    await waitFor(() => ofType(c!.events, 'added').length === 1, 'added');
    expect(ofType(c!.events, 'added')[0]!.lease).toMatchObject({ key: 'node-c', subnet: '10.244.3.0/24', attrs: { publicIP: '192.0.2.3' } });
  });

  it('emits added with the new lease when public IP, VTEP MAC or podCIDR change, and nothing for unrelated changes', async () => {
    addPeer('node-b', 2);
    await started();
    env.server.updateNode('node-b', (n) => { (n['metadata'] as JsonObject)['labels'] = { heartbeat: '1' }; });
    env.server.updateNode('node-b', (n) => { (n['status'] as JsonObject)['conditions'] = []; });
    setAnnotation('node-b', 'twill.io/public-ip', '192.0.2.22');
    await waitFor(() => ofType(c!.events, 'added').length === 1, 'public IP change');
    setAnnotation('node-b', 'twill.io/backend-data', JSON.stringify({ VNI: 1, VtepMAC: '0a:58:0a:f4:22:22' }));
    await waitFor(() => ofType(c!.events, 'added').length === 2, 'MAC change');
    env.server.assignPodCIDR('node-b', '10.244.22.0/24');
    await waitFor(() => ofType(c!.events, 'added').length === 3, 'podCIDR change');
    const added = ofType(c!.events, 'added').map((e) => e.lease);
    expect(added[0]).toMatchObject({ subnet: '10.244.2.0/24', attrs: { publicIP: '192.0.2.22', backendData: { VtepMAC: macOf(2) } } });
    expect(added[1]).toMatchObject({ subnet: '10.244.2.0/24', attrs: { publicIP: '192.0.2.22', backendData: { VtepMAC: '0a:58:0a:f4:22:22' } } });
    expect(added[2]).toMatchObject({ subnet: '10.244.22.0/24', attrs: { publicIP: '192.0.2.22' } });
    expect(c!.events.map((e) => e.type)).toEqual(['snapshot', 'added', 'added', 'added']);
  });

  it('emits removed when a node is deleted or drops the annotation', async () => {
    addPeer('node-b', 2);
    addPeer('node-c', 3);
    await started();
    env.server.deleteNode('node-b');
    await waitFor(() => ofType(c!.events, 'removed').length === 1, 'removed on delete');
    expect(ofType(c!.events, 'removed')[0]!.lease.key).toBe('node-b');
    setAnnotation('node-c', 'twill.io/kube-subnet-manager', 'false');
    await waitFor(() => ofType(c!.events, 'removed').length === 2, 'removed on annotation change');
    expect(ofType(c!.events, 'removed')[1]!.lease).toMatchObject({ key: 'node-c', subnet: '10.244.3.0/24' });
    env.server.deleteNode('node-c'); // already not ours: no second removal
    await sleep(100);
    expect(ofType(c!.events, 'removed')).toHaveLength(2);
  });

  it('reports undecodable annotations as invalid (once) and recovers when they are fixed', async () => {
    addPeer('node-b', 2);
    env.server.createNode({ name: 'node-x', podCIDR: '10.244.9.0/24', annotations: { ...published('192.0.2.9', macOf(9)), 'twill.io/backend-data': 'not json' } });
    await started();
    const snap = ofType(c!.events, 'snapshot')[0]!;
    expect(snap.leases.map((l) => l.key)).toEqual(['node-b']);
    expect(snap.invalid).toMatchObject([{ key: 'node-x' }]);
    expect(snap.invalid![0]!.reason).toContain('twill.io/backend-data');
    setAnnotation('node-b', 'twill.io/public-ip', 'not-an-ip');
    await waitFor(() => ofType(c!.events, 'invalid').length === 1, 'invalid on update');
    expect(c!.events.slice(-2).map((e) => e.type)).toEqual(['removed', 'invalid']);
    env.server.updateNode('node-b', (n) => { (n['metadata'] as JsonObject)['labels'] = { a: 'b' }; });
    await sleep(100);
    expect(ofType(c!.events, 'invalid')).toHaveLength(1); // the same reason is not repeated
    setAnnotation('node-b', 'twill.io/public-ip', '192.0.2.2');
    await waitFor(() => ofType(c!.events, 'added').length === 1, 'fixed → added');
    env.server.deleteNode('node-x');
    await waitFor(() => ofType(c!.events, 'deleted').length === 1, 'invalid node deleted → deleted');
    expect(ofType(c!.events, 'deleted')[0]).toEqual({ type: 'deleted', key: 'node-x' });
  });

  it('reads flannel-published annotations with the flannel prefix', async () => {
    addPeer('flannel-node', 5, 'flannel.alpha.coreos.com');
    c = collect(env.manager({ annotationPrefix: 'flannel.alpha.coreos.com' }));
    await waitFor(() => ofType(c!.events, 'snapshot').length === 1, 'snapshot');
    expect(ofType(c!.events, 'snapshot')[0]!.leases).toMatchObject([{ key: 'flannel-node', subnet: '10.244.5.0/24', attrs: { publicIP: '192.0.2.5' } }]);
  });

  it('resumes from the last resourceVersion when the server closes or resets the watch (no relist)', async () => {
    addPeer('node-b', 2);
    await started();
    for (const mode of ['close', 'reset'] as const) {
      const watches = env.server.count({ watch: true });
      expect(env.server.dropAllWatches(mode)).toBe(1);
      addPeer(`node-${mode}`, mode === 'close' ? 3 : 4);
      await waitFor(() => c!.events.some((e) => e.type === 'added' && e.lease.key === `node-${mode}`), `added after ${mode}`);
      expect(env.server.count({ watch: true })).toBeGreaterThan(watches);
    }
    expect(ofType(c!.events, 'snapshot')).toHaveLength(1);
    expect(env.server.count({ method: 'GET', path: '/api/v1/nodes', watch: false })).toBe(1);
  });

  it('restarts with backoff through an outage and catches up on what changed meanwhile', async () => {
    await outageWithChanges();
    await waitFor(() => env.server.count({ status: 503 }) >= 3, 'several failed reconnects');
    expect(env.logs.some((l) => l.msg.includes('node watch failed; restarting'))).toBe(true);
    env.server.failRequests(null);
    await waitFor(() => ofType(c!.events, 'added').length === 1 && ofType(c!.events, 'removed').length === 1, 'caught up');
    expect(ofType(c!.events, 'added')[0]!.lease.key).toBe('node-c');
    expect(ofType(c!.events, 'removed')[0]!.lease.key).toBe('node-b');
  });

  it('reports the API as unreachable through getNetworkConfig while the watch is lost (the agent\'s store probe)', async () => {
    await started();
    const m = env.manager();
    const probe = () => m.getNetworkConfig(new AbortController().signal);
    c!.stop();
    c = collect(m);
    await waitFor(() => m.watcherState === 'alive', 'watch alive');
    await expect(probe()).resolves.toMatchObject({ network: '10.244.0.0/16' });
    env.server.failRequests(503);
    env.server.dropAllWatches('reset');
    await waitFor(() => m.watcherState === 'lost', 'watch lost');
    await waitFor(() => env.server.count({ status: 503 }) >= 1, 'a refused reconnect');
    await expect(probe()).rejects.toThrow(/Kubernetes API http:\/\/127\.0\.0\.1:\d+ unreachable: node watch failing \(503/);
    env.server.failRequests(null);
    await waitFor(() => m.watcherState === 'alive', 'watch alive again');
    await expect(probe()).resolves.toMatchObject({ network: '10.244.0.0/16' });
  });

  it('relists and emits a fresh snapshot on 410 Gone (ERROR event in the stream)', async () => {
    await outageWithChanges();
    env.server.compactHistory(0);
    await waitFor(() => env.server.count({ status: 503 }) >= 1, 'a failed reconnect');
    env.server.failRequests(null);
    await waitFor(() => ofType(c!.events, 'snapshot').length === 2, 'second snapshot');
    expect(ofType(c!.events, 'snapshot')[1]!.leases.map((l) => l.key)).toEqual(['node-c']);
    expect(env.logs.some((l) => l.msg.includes('410 Gone'))).toBe(true);
    addPeer('node-d', 4); // and it keeps watching after the relist
    await waitFor(() => c!.events.some((e) => e.type === 'added' && e.lease.key === 'node-d'), 'added after relist');
  });

  it('stops when the signal aborts and closes its watch', async () => {
    await started();
    c!.stop();
    await c!.done;
    await waitFor(() => env.server.activeWatches === 0, 'watch closed on the server');
  });
});

describe('watchLeases with HTTP 410 and bookmarks', () => {
  beforeEach(async () => { env = await kubeEnv({ watchExpired: 'http', historyLimit: 2 }); });

  it('relists on an HTTP 410 after history was trimmed past our version', async () => {
    addPeer('node-b', 2);
    await started();
    env.server.failRequests(503);
    env.server.dropAllWatches('close');
    for (let i = 3; i < 7; i++) addPeer(`node-${i}`, i); // 4 events > history of 2
    await waitFor(() => env.server.count({ status: 503 }) >= 1, 'a failed reconnect');
    env.server.failRequests(null);
    await waitFor(() => ofType(c!.events, 'snapshot').length === 2, 'second snapshot');
    expect(env.server.count({ watch: true, status: 410 })).toBeGreaterThanOrEqual(1);
    expect(ofType(c!.events, 'snapshot')[1]!.leases).toHaveLength(5);
  });

  it('a bookmark advances the resume version so a watcher does not relist needlessly', async () => {
    await started();
    env.server.createPod('kube-system', 'p', 'node-a'); // moves the server's version without a node event
    expect(env.server.sendBookmarks()).toBe(1);
    await sleep(50);
    env.server.compactHistory(0);                     // only the bookmarked version is still watchable
    env.server.dropAllWatches('close');
    addPeer('node-b', 2);
    await waitFor(() => ofType(c!.events, 'added').length === 1, 'added');
    expect(ofType(c!.events, 'snapshot')).toHaveLength(1);
    expect(env.server.count({ watch: true, status: 410 })).toBe(0);
  });
});
