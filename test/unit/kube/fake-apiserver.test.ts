// The fake API server's wire protocol, checked with plain HTTP (what kubectl or any client sees),
// plus the patch dialects and the standalone stdin-controlled entry point.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { FakeApiServer, type JsonObject } from '../../util/fake-apiserver.js';
import { jsonPatch, mergePatch, strategicMergePatch } from '../../util/fake-apiserver-patch.js';

let s: FakeApiServer;
beforeEach(async () => { s = await FakeApiServer.start({ historyLimit: 5 }); });
afterEach(async () => { await s.close(); });

async function http(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: JsonObject }> {
  const res = await fetch(s.url + path, {
    method, headers: body === undefined ? {} : { 'Content-Type': contentType },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: (text.startsWith('{') ? JSON.parse(text) : { text }) as JsonObject };
}

/** Opens a watch and collects its JSON lines until `n` arrived or the stream ends. */
function watchLines(path: string, n: number): Promise<{ status: number; lines: JsonObject[] }> {
  return new Promise((resolve, reject) => {
    const req = request(s.url + path, (res) => {
      const lines: JsonObject[] = [];
      const rl = createInterface({ input: res });
      const done = () => { rl.close(); req.destroy(); resolve({ status: res.statusCode ?? 0, lines }); };
      rl.on('line', (l) => { lines.push(JSON.parse(l) as JsonObject); if (lines.length >= n) done(); });
      res.on('end', done);
    });
    req.on('error', reject);
    req.end();
  });
}

const rv = (o: JsonObject) => (o['metadata'] as JsonObject)['resourceVersion'] as string;

describe('fake API server: list and watch', () => {
  it('lists nodes with a resourceVersion and filters by label and field selectors', async () => {
    s.createNode({ name: 'b', labels: { role: 'worker' } });
    s.createNode({ name: 'a', labels: { role: 'control-plane' } });
    const all = await http('GET', '/api/v1/nodes');
    expect(all.status).toBe(200);
    expect(all.body['kind']).toBe('NodeList');
    expect(rv(all.body)).toBe(String(s.resourceVersion));
    expect((all.body['items'] as JsonObject[]).map((n) => (n['metadata'] as JsonObject)['name'])).toEqual(['a', 'b']);
    const byLabel = await http('GET', '/api/v1/nodes?labelSelector=role%3Dworker');
    expect((byLabel.body['items'] as JsonObject[])).toHaveLength(1);
    const byField = await http('GET', '/api/v1/nodes?fieldSelector=metadata.name%3Da');
    expect(((byField.body['items'] as JsonObject[])[0]!['metadata'] as JsonObject)['name']).toBe('a');
    expect((await http('GET', '/api/v1/nodes?fieldSelector=spec.bogus%3D1')).status).toBe(400);
  });

  it('streams ADDED/MODIFIED/DELETED from a resourceVersion, with headers flushed before any event', async () => {
    s.createNode({ name: 'a' });
    const from = s.resourceVersion;
    const w = watchLines(`/api/v1/nodes?watch=true&resourceVersion=${from}`, 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(s.activeWatches).toBe(1);
    s.assignPodCIDR('a', '10.244.1.0/24');
    s.createNode({ name: 'b' });
    s.deleteNode('a');
    const { status, lines } = await w;
    expect(status).toBe(200);
    expect(lines.map((l) => l['type'])).toEqual(['MODIFIED', 'ADDED', 'DELETED']);
    expect(((lines[0]!['object'] as JsonObject)['spec'] as JsonObject)['podCIDR']).toBe('10.244.1.0/24');
  });

  it('replays history after an older resourceVersion and sends the current state for resourceVersion 0', async () => {
    s.createNode({ name: 'a' });
    const from = s.resourceVersion;
    s.createNode({ name: 'b' });
    s.createNode({ name: 'c' });
    const replay = await watchLines(`/api/v1/nodes?watch=1&resourceVersion=${from}`, 2);
    expect(replay.lines.map((l) => ((l['object'] as JsonObject)['metadata'] as JsonObject)['name'])).toEqual(['b', 'c']);
    const initial = await watchLines('/api/v1/nodes?watch=true&resourceVersion=0', 3);
    expect(initial.lines.map((l) => l['type'])).toEqual(['ADDED', 'ADDED', 'ADDED']);
  });

  it('answers a watch from a compacted resourceVersion with a 410 Expired ERROR event', async () => {
    s.createNode({ name: 'a' });
    const old = s.resourceVersion;
    s.createNode({ name: 'b' });
    s.compactHistory(0);
    const { status, lines } = await watchLines(`/api/v1/nodes?watch=true&resourceVersion=${old}`, 5);
    expect(status).toBe(200);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } });
    // the current version is still watchable
    const ok = watchLines(`/api/v1/nodes?watch=true&resourceVersion=${s.resourceVersion}`, 1);
    await new Promise((r) => setTimeout(r, 30));
    s.createNode({ name: 'c' });
    expect((await ok).lines[0]!['type']).toBe('ADDED');
  });

  it('trims history to its limit', async () => {
    const first = s.resourceVersion;
    for (let i = 0; i < 7; i++) s.createNode({ name: `n${i}` });
    expect(s.oldestWatchableVersion).toBeGreaterThan(first);
    const { lines } = await watchLines(`/api/v1/nodes?watch=true&resourceVersion=${first}`, 1);
    expect(lines[0]).toMatchObject({ type: 'ERROR', object: { code: 410 } });
  });

  it('turns a selector transition into ADDED/DELETED for a filtered watch and sends bookmarks on request', async () => {
    s.createNode({ name: 'a' });
    const w = watchLines(`/api/v1/nodes?watch=true&allowWatchBookmarks=true&labelSelector=ours&resourceVersion=${s.resourceVersion}`, 3);
    await new Promise((r) => setTimeout(r, 30));
    s.updateNode('a', (n) => { (n['metadata'] as JsonObject)['labels'] = { ours: '' }; });
    s.updateNode('a', (n) => { (n['metadata'] as JsonObject)['labels'] = {}; });
    expect(s.sendBookmarks()).toBe(1);
    expect((await w).lines.map((l) => l['type'])).toEqual(['ADDED', 'DELETED', 'BOOKMARK']);
  });

  it('ends a watch after timeoutSeconds and on dropAllWatches', async () => {
    const t0 = Date.now();
    await watchLines('/api/v1/nodes?watch=true&timeoutSeconds=1', 10);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    const w = watchLines('/api/v1/nodes?watch=true', 10);
    await new Promise((r) => setTimeout(r, 30));
    expect(s.dropAllWatches('close')).toBe(1);
    expect((await w).lines).toEqual([]);
  });
});

describe('fake API server: writes', () => {
  it('merge-patches annotations on nodes/status but ignores spec there (status strategy)', async () => {
    s.createNode({ name: 'a', podCIDR: '10.244.1.0/24' });
    const r = await http('PATCH', '/api/v1/nodes/a/status', { metadata: { annotations: { k: 'v' } }, spec: { podCIDR: '10.9.9.0/24' } }, 'application/merge-patch+json');
    expect(r.status).toBe(200);
    const n = s.getNode('a')!;
    expect((n['metadata'] as JsonObject)['annotations']).toEqual({ k: 'v' });
    expect((n['spec'] as JsonObject)['podCIDR']).toBe('10.244.1.0/24');
  });

  it('ignores status changes through the main resource (node strategy)', async () => {
    s.createNode({ name: 'a' });
    await http('PATCH', '/api/v1/nodes/a', { status: { conditions: [{ type: 'NetworkUnavailable', status: 'False' }] } }, 'application/strategic-merge-patch+json');
    const conds = (s.getNode('a')!['status'] as JsonObject)['conditions'] as JsonObject[];
    expect(conds.map((c) => c['type'])).toEqual(['Ready']);
  });

  it('merges conditions by type with a strategic merge patch', async () => {
    s.createNode({ name: 'a' });
    const cond = { type: 'NetworkUnavailable', status: 'False', reason: 'TwillIsUp' };
    await http('PATCH', '/api/v1/nodes/a/status', { status: { conditions: [cond] } }, 'application/strategic-merge-patch+json');
    await http('PATCH', '/api/v1/nodes/a/status', { status: { conditions: [{ ...cond, status: 'True' }] } }, 'application/strategic-merge-patch+json');
    const conds = (s.getNode('a')!['status'] as JsonObject)['conditions'] as JsonObject[];
    expect(conds.map((c) => `${String(c['type'])}=${String(c['status'])}`)).toEqual(['Ready=True', 'NetworkUnavailable=True']);
  });

  it('applies JSON patches and refuses unknown patch types with 415', async () => {
    s.createNode({ name: 'a' });
    const r = await http('PATCH', '/api/v1/nodes/a', [{ op: 'add', path: '/metadata/labels', value: { x: '1' } }], 'application/json-patch+json');
    expect(r.status).toBe(200);
    expect((s.getNode('a')!['metadata'] as JsonObject)['labels']).toEqual({ x: '1' });
    expect((await http('PATCH', '/api/v1/nodes/a', {}, 'application/apply-patch+yaml')).status).toBe(415);
  });

  it('returns 409 Conflict for a stale resourceVersion and does not bump the version on a no-op', async () => {
    s.createNode({ name: 'a' });
    const stale = rv(s.getNode('a')!);
    s.updateNode('a', (n) => { (n['metadata'] as JsonObject)['labels'] = { y: '1' }; });
    const r = await http('PATCH', '/api/v1/nodes/a/status', { metadata: { resourceVersion: stale, annotations: { k: 'v' } } }, 'application/merge-patch+json');
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ kind: 'Status', reason: 'Conflict', code: 409 });
    const before = s.resourceVersion;
    await http('PATCH', '/api/v1/nodes/a', { metadata: { labels: { y: '1' } } }, 'application/merge-patch+json');
    expect(s.resourceVersion).toBe(before);
  });

  it('creates (201, 409 AlreadyExists), replaces (PUT with 409 on stale) and deletes nodes', async () => {
    const c = await http('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'x' }, spec: { podCIDR: '10.244.5.0/24' } });
    expect(c.status).toBe(201);
    expect((await http('POST', '/api/v1/nodes', { metadata: { name: 'x' } })).status).toBe(409);
    const node = s.getNode('x')!;
    (node['metadata'] as JsonObject)['labels'] = { a: 'b' };
    expect((await http('PUT', '/api/v1/nodes/x', node)).status).toBe(200);
    expect((await http('PUT', '/api/v1/nodes/x', node)).status).toBe(409); // node still carries the old version
    expect((await http('DELETE', '/api/v1/nodes/x')).status).toBe(200);
    expect((await http('GET', '/api/v1/nodes/x')).status).toBe(404);
    expect((await http('GET', '/api/v1/nodes/x')).body).toMatchObject({ kind: 'Status', reason: 'NotFound' });
  });

  it('serves discovery, counts requests and injects failures', async () => {
    expect((await http('GET', '/version')).body['gitVersion']).toMatch(/^v1\./);
    expect((await http('GET', '/api')).body['versions']).toEqual(['v1']);
    expect(((await http('GET', '/api/v1')).body['resources'] as JsonObject[]).map((r) => r['name'])).toContain('nodes/status');
    s.failRequests(503, (m) => m === 'GET');
    expect((await http('GET', '/api/v1/nodes')).status).toBe(503);
    s.failRequests(null);
    expect(s.count({ method: 'GET', status: 503 })).toBe(1);
    expect(s.count({ path: /^\/api/ })).toBe(3);
  });
});

describe('patch dialects', () => {
  it('merge patch: null deletes, objects merge, arrays replace', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { b: null, d: 3 }, l: [3] })).toEqual({ a: { c: 2, d: 3 }, l: [3] });
  });
  it('strategic merge patch: keyed lists merge, $patch: delete removes, directives are ignored', () => {
    const node = { status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'X', status: 'True' }] }, spec: { taints: [{ key: 'a' }] } };
    const out = strategicMergePatch(node, {
      status: { conditions: [{ type: 'X', $patch: 'delete' }, { type: 'NetworkUnavailable', status: 'False' }], '$setElementOrder/conditions': [] },
      spec: { taints: [{ key: 'b' }] },
    });
    expect(out).toEqual({ status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'NetworkUnavailable', status: 'False' }] }, spec: { taints: [{ key: 'b' }] } });
  });
  it('JSON patch: add/replace/remove/test/move/copy and a failing test', () => {
    const out = jsonPatch({ a: 1, l: [1] }, [
      { op: 'add', path: '/b', value: 2 }, { op: 'replace', path: '/a', value: 9 }, { op: 'add', path: '/l/-', value: 2 },
      { op: 'test', path: '/a', value: 9 }, { op: 'copy', from: '/b', path: '/c' }, { op: 'move', from: '/c', path: '/d' }, { op: 'remove', path: '/b' },
      { op: 'add', path: '/m~1n', value: true },
    ]);
    expect(out).toEqual({ a: 9, l: [1, 2], d: 2, 'm/n': true });
    expect(() => jsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).toThrow(/test failed/);
  });
});

describe('fake-apiserver-main (stdin protocol)', () => {
  let child: ChildProcessWithoutNullStreams | undefined;
  afterEach(() => { if (child && child.exitCode === null) child.kill('SIGKILL'); });

  it('listens where told and obeys newline-delimited JSON commands', async () => {
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const built = `${root}dist/test/util/fake-apiserver-main.js`;
    // The harness runs the compiled file; before a build, bun runs the TypeScript source directly.
    const [cmd, args] = existsSync(built) ? [process.execPath, [built]] : [`${root}node_modules/.bin/bun`, [`${root}test/util/fake-apiserver-main.ts`]];
    child = spawn(cmd, [...args, '--listen', '127.0.0.1:0'], { stdio: 'pipe' });
    const lines = createInterface({ input: child.stdout });
    const queue: JsonObject[] = [];
    let wake: (() => void) | undefined;
    lines.on('line', (l) => { queue.push(JSON.parse(l) as JsonObject); wake?.(); });
    const next = async (): Promise<JsonObject> => {
      while (queue.length === 0) await new Promise<void>((r) => { wake = r; setTimeout(r, 5000); });
      return queue.shift()!;
    };
    const cmdReply = async (id: number, c: string, a: object = {}) => { child!.stdin.write(JSON.stringify({ id, cmd: c, args: a }) + '\n'); return next(); };
    const ready = await next();
    expect(ready['event']).toBe('listening');
    const url = ready['url'] as string;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(await cmdReply(1, 'createNode', { name: 'n1' })).toMatchObject({ id: 1, ok: true, result: { metadata: { name: 'n1' } } });
    expect(await cmdReply(2, 'assignPodCIDR', { name: 'n1', podCIDRs: ['10.244.3.0/24'] })).toMatchObject({ id: 2, ok: true, result: { spec: { podCIDR: '10.244.3.0/24' } } });
    const list = await (await fetch(`${url}/api/v1/nodes`)).json() as JsonObject;
    expect((list['items'] as JsonObject[])).toHaveLength(1);
    expect(await cmdReply(3, 'patchNode', { name: 'n1', patch: { metadata: { labels: { a: 'b' } } } })).toMatchObject({ ok: true, result: { metadata: { labels: { a: 'b' } } } });
    expect(await cmdReply(4, 'stats')).toMatchObject({ id: 4, ok: true, result: { requests: 1, byMethod: { GET: 1 } } });
    expect(await cmdReply(5, 'nope')).toMatchObject({ id: 5, ok: false });
    expect((await cmdReply(6, 'deleteNode', { name: 'n1' }))['ok']).toBe(true);
    expect(await cmdReply(7, 'getNode', { name: 'n1' })).toMatchObject({ ok: true, result: null });
    const exited = new Promise<number | null>((r) => child!.on('exit', (code) => r(code)));
    expect(await cmdReply(8, 'shutdown')).toMatchObject({ id: 8, ok: true });
    expect(await exited).toBe(0);
  });
});
